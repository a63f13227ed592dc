import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import { hashSecret } from '../credentials/secret.ts';
import { serializeCredentialStore, type CredentialStore } from '../credentials/store.ts';
import { createTokenMetrics } from './metrics.ts';
import { CredentialStoreError, CredentialStoreFile } from './store-file.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function store(...usernames: string[]): string {
  const s: CredentialStore = {
    version: 1,
    anonymousPull: false,
    credentials: usernames.map((username) => ({ username, secretHash: hashSecret(username), grants: [] })),
  };
  return serializeCredentialStore(s);
}

/** A folder laid out as the kubelet lays out a mounted Secret: store.json → ..data/store.json. */
function secretVolume(text: string): { file: string; update: (text: string) => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
  dirs.push(dir);
  let generation = 0;
  const writeGeneration = (content: string) => {
    const ts = path.join(dir, `..2026_${generation++}`);
    mkdirSync(ts);
    writeFileSync(path.join(ts, 'store.json'), content);
    symlinkSync(path.basename(ts), path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data')); // the atomic swap
  };
  writeGeneration(text);
  symlinkSync('..data/store.json', path.join(dir, 'store.json'));
  return { file: path.join(dir, 'store.json'), update: writeGeneration };
}

function make(file: string) {
  const metrics = createTokenMetrics();
  const logger = winston.createLogger({ silent: true });
  return { metrics, storeFile: new CredentialStoreFile(file, { logger, metrics, clock: () => new Date(0) }) };
}

describe('CredentialStoreFile', () => {
  it('loads, then follows a ..data symlink swap by content', async () => {
    const vol = secretVolume(store('a'));
    const { storeFile, metrics } = make(vol.file);
    await storeFile.load();
    expect([...storeFile.current().byUsername.keys()]).toEqual(['a']);
    expect(await storeFile.check()).toBe(false); // same content: nothing to do
    vol.update(store('a', 'b'));
    expect(await storeFile.check()).toBe(true);
    expect([...storeFile.current().byUsername.keys()]).toEqual(['a', 'b']);
    expect((await metrics.storeCredentials.get()).values[0]?.value).toBe(2);
  });

  it('keeps the current store when the new one is invalid', async () => {
    const vol = secretVolume(store('a'));
    const { storeFile, metrics } = make(vol.file);
    await storeFile.load();
    vol.update('{"version": 2}');
    expect(await storeFile.check()).toBe(false);
    expect([...storeFile.current().byUsername.keys()]).toEqual(['a']);
    const reloads = (await metrics.storeReloads.get()).values.map((v) => [v.labels.result, v.value]);
    expect(reloads).toEqual([
      ['ok', 1],
      ['error', 1],
    ]);
  });

  it('notices a change by itself when started', async () => {
    const vol = secretVolume(store('a'));
    const { storeFile } = make(vol.file);
    await storeFile.load();
    storeFile.start(100);
    try {
      vol.update(store('c'));
      const deadline = Date.now() + 5000;
      while (!storeFile.current().byUsername.has('c') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect([...storeFile.current().byUsername.keys()]).toEqual(['c']);
    } finally {
      storeFile.stop();
    }
  });

  it.each([
    [
      'a missing file',
      (dir: string) => path.join(dir, 'absent.json'),
      /cannot read the credential store .*ENOENT/,
    ],
    [
      'an invalid file',
      (dir: string) => {
        writeFileSync(path.join(dir, 'bad.json'), '[]');
        return path.join(dir, 'bad.json');
      },
      /invalid credential store .*must be a JSON object/,
    ],
  ])('refuses to start from %s', async (_name, file, error) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
    dirs.push(dir);
    const { storeFile } = make(file(dir));
    await expect(storeFile.load()).rejects.toThrow(CredentialStoreError);
    await expect(storeFile.load()).rejects.toThrow(error);
    expect(() => storeFile.current()).toThrow(/not been loaded/);
  });
});
