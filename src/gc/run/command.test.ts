import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { UsageError } from '../../util/flags.ts';
import { parseGcRunArgs } from './command.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-gc-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dockerConfig = path.join(dir, 'config.json');
writeFileSync(
  dockerConfig,
  JSON.stringify({ auths: { 'r:443': { auth: Buffer.from('admin:s3cret').toString('base64') } } }),
);
const ca = path.join(dir, 'ca.crt');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');

describe('parseGcRunArgs', () => {
  test('the flags the Jobs pass', () => {
    const c = parseGcRunArgs(
      ['--registry-url=https://main.ns.svc', `--docker-config=${dockerConfig}`, `--ca-file=${ca}`],
      {},
    );
    expect(c.access).toEqual({
      url: 'https://main.ns.svc',
      credential: { username: 'admin', password: 's3cret' },
      caPem: '-----BEGIN CERTIFICATE-----\n',
    });
  });
  test('the environment stands in for a flag; --attempts', () => {
    const c = parseGcRunArgs(['--attempts=2'], { BERTH_GC_REGISTRY_URL: 'http://r:5000' });
    expect(c.access).toEqual({ url: 'http://r:5000', attempts: 2 });
  });
  test.each([
    [[], /--registry-url \(or BERTH_GC_REGISTRY_URL\) is required/],
    [['--registry-url=ftp://x'], /must be https/],
    [['--registry-url=https://x', '--attempts=0'], /whole number/],
    [['--registry-url=https://x', '--nope=1'], /nope/],
    [['--registry-url=https://x', `--docker-config=${ca}`], /holds no credentials|JSON/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parseGcRunArgs(argv, {})).toThrow(UsageError);
    expect(() => parseGcRunArgs(argv, {})).toThrow(message);
  });
});
