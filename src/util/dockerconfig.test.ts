import { describe, expect, it } from '@jest/globals';
import { dockerConfigEntries, dockerConfigJson, parseDockerConfig } from './dockerconfig.ts';

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

describe('dockerConfigEntries', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('every entry in order, auth decoded where username and password are absent', () => {
    const text = JSON.stringify({
      auths: {
        'https://r1.example/v2/': { username: 'a', password: 'b' },
        r2: { auth: b64('c:d:e') },
        r3: { auth: b64('no-colon') },
        r4: {},
      },
    });
    expect(dockerConfigEntries(text)).toEqual([
      { host: 'https://r1.example/v2/', username: 'a', password: 'b' },
      { host: 'r2', username: 'c', password: 'd:e' },
      { host: 'r3' },
      { host: 'r4' },
    ]);
  });
  it.each([undefined, '', 'not json', 'null', '7'])('not a docker config: %j', (text) =>
    expect(dockerConfigEntries(text)).toBeUndefined(),
  );
  it('a config without auths has no entries', () => expect(dockerConfigEntries('{}')).toEqual([]));
});
