import { describe, expect, it } from '@jest/globals';
import { dockerConfigJson, parseDockerConfig } from './dockerconfig.ts';

describe('docker config', () => {
  it('round-trips hosts and credentials', () => {
    const text = dockerConfigJson(['b.example:443', 'a.example', 'a.example'], 'admin', 's3cr:et');
    expect(JSON.parse(text).auths['a.example'].auth).toBe(Buffer.from('admin:s3cr:et').toString('base64'));
    expect(parseDockerConfig(text)).toEqual({
      hosts: ['a.example', 'b.example:443'],
      username: 'admin',
      password: 's3cr:et',
    });
  });

  it('reads credentials from auth alone', () => {
    const text = JSON.stringify({ auths: { h: { auth: Buffer.from('u:p:q').toString('base64') } } });
    expect(parseDockerConfig(text)).toEqual({ hosts: ['h'], username: 'u', password: 'p:q' });
  });

  it.each([undefined, '', 'not json', '{}', '{"auths":{}}', '{"auths":{"h":{}}}'])('gives up on %j', (text) =>
    expect(parseDockerConfig(text)).toBeUndefined(),
  );
});
