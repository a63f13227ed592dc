import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashSecret } from '../credentials/secret.ts';
import { authenticate } from '../credentials/authenticate.ts';
import { serializeShardedStore, shardFileName, shardOf, storeShards } from '../credentials/sharded.ts';
import { serializeCredentialStore, type CredentialStore } from '../credentials/store.ts';
import { createTokenMetrics } from './metrics.ts';
import { CredentialStoreError, CredentialStoreFile, maxSkippedEntriesLogged } from './store-file.ts';
import { nodeStoreFileSystem, racyMarginMs, type StoreFileSystem } from './store-stamps.ts';
import { capturingLogger } from '../runtime/logger.ts';

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

function make(file: string, files?: StoreFileSystem) {
  const metrics = createTokenMetrics();
  const { logger, lines } = capturingLogger();
  return {
    metrics,
    lines,
    storeFile: new CredentialStoreFile(file, {
      logger,
      metrics,
      clock: { now: () => 0 },
      ...(files ? { files } : {}),
    }),
  };
}

/** A store text with one entry per username, and `bad` spliced in raw at `at`. */
function storeWith(usernames: string[], bad: unknown[], at = 1): string {
  const s = JSON.parse(store(...usernames)) as { credentials: unknown[] };
  s.credentials.splice(at, 0, ...bad);
  return JSON.stringify(s);
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

  it('skips a bad entry, keeps the rest, logs the entry without its hash and counts it', async () => {
    const plainSecret = 'hunter2-plain-secret';
    const long = `push.${'n'.repeat(63)}.${'r'.repeat(63)}`; // 132 characters: over the limit
    const vol = secretVolume(
      storeWith(
        ['a', 'b'],
        [
          { username: long, secretHash: hashSecret('x'), grants: [] },
          { username: 'c', secretHash: plainSecret, grants: [] },
        ],
      ),
    );
    const { storeFile, metrics, lines } = make(vol.file);
    await storeFile.load(); // a new token pod starts
    expect([...storeFile.current().byUsername.keys()]).toEqual(['a', 'b']);
    expect((await metrics.storeEntriesSkipped.get()).values[0]?.value).toBe(2);
    const skipped = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.event === 'store.entry-skipped');
    expect(skipped).toEqual([
      expect.objectContaining({ index: 1, error: expect.stringMatching(/credentials\[1\]\.username/) }),
      expect.objectContaining({ index: 2, username: 'c', error: expect.stringMatching(/secretHash/) }),
    ]);
    expect(lines.join('')).not.toContain(plainSecret);
    expect(lines.join('')).not.toContain(hashSecret('x').slice(7));
    // The same content again is not logged or counted again; a reload with a bad entry keeps the rest.
    expect(await storeFile.check()).toBe(false);
    vol.update(storeWith(['a', 'd'], [{ username: 'e' }], 0));
    expect(await storeFile.check()).toBe(true);
    expect([...storeFile.current().byUsername.keys()]).toEqual(['a', 'd']);
    expect((await metrics.storeEntriesSkipped.get()).values[0]?.value).toBe(3);
  });

  it('logs at most a bounded number of skipped entries, and a summary', async () => {
    const bad = Array.from({ length: 50 }, (_v, i) => ({ username: `x${i}`, secretHash: 'no' }));
    const vol = secretVolume(storeWith(['a'], bad));
    const { storeFile, metrics, lines } = make(vol.file);
    await storeFile.load();
    expect((await metrics.storeEntriesSkipped.get()).values[0]?.value).toBe(50);
    const events = lines.map((l) => (JSON.parse(l) as { event?: string }).event);
    expect(events.filter((e) => e === 'store.entry-skipped')).toHaveLength(maxSkippedEntriesLogged);
    expect(events.filter((e) => e === 'store.entries-skipped')).toHaveLength(1);
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

/** A folder laid out as the kubelet lays out a projected volume: every file → ..data/<file>. */
function projectedVolume(files: Record<string, string>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
  dirs.push(dir);
  let generation = 0;
  const linked = new Set<string>();
  const update = (next: Record<string, string>) => {
    const ts = path.join(dir, `..2026_${generation++}`);
    mkdirSync(ts);
    for (const [name, text] of Object.entries(next)) writeFileSync(path.join(ts, name), text);
    symlinkSync(path.basename(ts), path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    for (const name of Object.keys(next))
      if (!linked.has(name)) {
        symlinkSync(`..data/${name}`, path.join(dir, name));
        linked.add(name);
      }
  };
  update(files);
  return { dir, update };
}

function shardedFiles(usernames: string[], anonymousPull = false): Record<string, string> {
  const s: CredentialStore = {
    version: 1,
    anonymousPull,
    credentials: usernames.map((username) => ({
      username,
      secretHash: hashSecret(username),
      grants: [{ repositories: [`${username}/app`], actions: ['pull'] }],
    })),
  };
  return Object.fromEntries(serializeShardedStore(s).map((t, i) => [shardFileName(i), t]));
}

describe('CredentialStoreFile with a sharded store', () => {
  const users = Array.from({ length: 100 }, (_v, i) => `pull.team-${i}`);

  it('reads the head and its shards from the folder, and authenticates from every shard', async () => {
    const vol = projectedVolume(shardedFiles(users, true));
    const { storeFile, metrics, lines } = make(vol.dir); // --store may name the folder
    await storeFile.load();
    const current = storeFile.current();
    expect(current.size).toBe(100);
    expect(current.anonymousPull).toBe(true);
    expect([...current.byUsername.keys()].sort()).toEqual([...users].sort());
    for (const u of users) expect(authenticate(current, u, u, new Date(0))).toMatchObject({ ok: true });
    expect(current.byUsername.get('pull.team-3')?.[0]?.grants[0]?.match('pull.team-3/app')).toBe(true);
    expect((await metrics.storeCredentials.get()).values[0]?.value).toBe(100);
    const loaded = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'store.loaded');
    expect(loaded).toMatchObject({ credentials: 100, shards: storeShards });
  });

  it('merges the ServiceAccounts of every shard, and follows their change', async () => {
    const accounts = Array.from({ length: 40 }, (_v, i) => ({
      namespace: `team-${i}`,
      name: 'ci',
      grants: [{ repositories: [`team-${i}/web`], actions: ['pull' as const, 'push' as const] }],
    }));
    const files = (list: typeof accounts) =>
      Object.fromEntries(
        serializeShardedStore({
          version: 1,
          anonymousPull: false,
          credentials: [],
          serviceAccounts: list,
        }).map((t, i) => [shardFileName(i), t]),
      );
    const vol = projectedVolume(files(accounts));
    const { storeFile } = make(vol.dir);
    await storeFile.load();
    const merged = storeFile.current().serviceAccounts;
    expect([...(merged?.keys() ?? [])].sort()).toEqual(accounts.map((a) => `${a.namespace}/ci`).sort());
    expect(merged?.get('team-7/ci')?.[0]?.match('team-7/web')).toBe(true);
    vol.update(files(accounts.slice(1)));
    await storeFile.check();
    expect(storeFile.current().serviceAccounts?.has('team-0/ci')).toBe(false);
    expect(storeFile.current().serviceAccounts?.size).toBe(39);
  });

  it('follows a change of one shard, and nothing else', async () => {
    const vol = projectedVolume(shardedFiles(users));
    const { storeFile } = make(path.join(vol.dir, 'store.json'));
    await storeFile.load();
    const before = storeFile.current();
    expect(await storeFile.check()).toBe(false);
    const next = [...users.filter((u) => u !== 'pull.team-5'), 'pull.team-x'];
    vol.update(shardedFiles(next));
    expect(await storeFile.check()).toBe(true);
    const after = storeFile.current();
    expect(after.byUsername.has('pull.team-5')).toBe(false);
    expect(after.byUsername.has('pull.team-x')).toBe(true);
    // an untouched shard's entries are the very objects compiled before
    const untouched = users.find(
      (u) => ![shardOf('pull.team-5'), shardOf('pull.team-x')].includes(shardOf(u)),
    );
    expect(after.byUsername.get(untouched ?? '')).toBe(before.byUsername.get(untouched ?? ''));
  });

  it('refuses a bad shard alone and keeps its previous content; skips a bad entry in a shard', async () => {
    const vol = projectedVolume(shardedFiles(users));
    const { storeFile, lines } = make(vol.dir);
    await storeFile.load();
    const victim = shardOf('pull.team-1');
    const files = shardedFiles(users.filter((u) => u !== 'pull.team-2'));
    files[shardFileName(victim)] =
      '{"version": 2, "shards": 16, "shard": 99, "grants": [], "credentials": []}';
    const other = shardOf('pull.team-2') === victim ? undefined : shardOf('pull.team-2');
    vol.update(files);
    expect(await storeFile.check()).toBe(true);
    const current = storeFile.current();
    expect(current.byUsername.has('pull.team-1')).toBe(true); // kept from before
    if (other !== undefined) expect(current.byUsername.has('pull.team-2')).toBe(false);
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.find((e) => e.event === 'store.shard-invalid')).toMatchObject({
      shard: victim,
      error: expect.stringMatching(/holds shard 99/),
    });
    // an entry with a plain secret in another shard: skipped, logged without it
    const again = shardedFiles(users);
    const name = shardFileName(shardOf('pull.team-3'));
    again[name] = (again[name] ?? '').replace(
      '"credentials":[\n',
      '"credentials":[\n{"u":"evil","h":"hunter2-plain","g":0},\n',
    );
    vol.update(again);
    expect(await storeFile.check()).toBe(true);
    expect(storeFile.current().size).toBe(100);
    const skipped = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === 'store.entry-skipped');
    expect(skipped).toEqual([
      expect.objectContaining({ shard: shardOf('pull.team-3'), index: 0, username: 'evil' }),
    ]);
    expect(lines.join('')).not.toContain('hunter2-plain');
  });

  it('serves on when a shard is missing, and picks it up when it appears', async () => {
    const all = shardedFiles(users);
    const missing = shardFileName(shardOf('pull.team-9'));
    const { [missing]: _gone, ...rest } = all;
    const vol = projectedVolume(rest);
    const { storeFile, lines } = make(vol.dir);
    await storeFile.load();
    expect(storeFile.current().byUsername.has('pull.team-9')).toBe(false);
    expect(
      storeFile.current().byUsername.has('pull.team-0') || shardOf('pull.team-0') === shardOf('pull.team-9'),
    ).toBe(true);
    expect(lines.some((l) => l.includes('is missing'))).toBe(true);
    vol.update(all);
    expect(await storeFile.check()).toBe(true);
    expect(storeFile.current().byUsername.has('pull.team-9')).toBe(true);
  });

  it('goes from a version-1 store to a sharded one and back (an upgrade, a shrink)', async () => {
    const vol = projectedVolume({ 'store.json': store('a', 'b') });
    const { storeFile } = make(vol.dir);
    await storeFile.load();
    expect([...storeFile.current().byUsername.keys()]).toEqual(['a', 'b']);
    vol.update(shardedFiles(users));
    expect(await storeFile.check()).toBe(true);
    expect(storeFile.current().size).toBe(100);
    vol.update({ ...shardedFiles(users), 'store.json': store('c') }); // stale shards beside a v1 head
    expect(await storeFile.check()).toBe(true);
    expect([...storeFile.current().byUsername.keys()]).toEqual(['c']);
  });

  it('refuses a head that is not one and keeps the store in force', async () => {
    const vol = projectedVolume(shardedFiles(users));
    const { storeFile } = make(vol.dir);
    await storeFile.load();
    vol.update({ ...shardedFiles(users), 'store.json': '{"version": 2, "shards": 0}' });
    expect(await storeFile.check()).toBe(false);
    expect(storeFile.current().size).toBe(100);
  });
});

/** node:fs, counting the reads and stamps, with the wall clock `skewMs` ahead of the real one. */
function countingFiles(skewMs: number) {
  const counts = { reads: 0, stamps: 0 };
  const files: StoreFileSystem = {
    readFile: (file) => {
      counts.reads++;
      return nodeStoreFileSystem.readFile(file);
    },
    stamp: (file) => {
      counts.stamps++;
      return nodeStoreFileSystem.stamp(file);
    },
    now: () => Date.now() + skewMs,
  };
  return { files, counts, reset: () => Object.assign(counts, { reads: 0, stamps: 0 }) };
}

describe('CredentialStoreFile polling by stamps', () => {
  const users = Array.from({ length: 100 }, (_v, i) => `pull.team-${i}`);

  it('reads no file of an unchanged sharded store, only stamps them; reads them all after a change', async () => {
    const vol = projectedVolume(shardedFiles(users));
    // the files were last changed long before they were read: their stamps are trusted
    const { files, counts, reset } = countingFiles(racyMarginMs + 60_000);
    const { storeFile } = make(vol.dir, files);
    await storeFile.load();
    expect(counts.reads).toBe(storeShards);
    reset();
    expect(await storeFile.check()).toBe(false);
    expect(await storeFile.check()).toBe(false);
    expect(counts).toEqual({ reads: 0, stamps: 2 * storeShards });
    reset();
    vol.update(shardedFiles([...users, 'pull.team-x']));
    expect(await storeFile.check()).toBe(true);
    expect(storeFile.current().byUsername.has('pull.team-x')).toBe(true);
    expect(counts.reads).toBe(storeShards);
  });

  it('stamps a whole store and reads nothing while it is unchanged', async () => {
    const vol = secretVolume(store('a'));
    const { files, counts, reset } = countingFiles(racyMarginMs + 60_000);
    const { storeFile } = make(vol.file, files);
    await storeFile.load();
    reset();
    expect(await storeFile.check()).toBe(false);
    expect(counts).toEqual({ reads: 0, stamps: 1 });
  });

  it('reads again the files that changed too close to their read (their stamp may hide a second write)', async () => {
    const vol = projectedVolume(shardedFiles(users));
    const { files, counts, reset } = countingFiles(0); // the files changed just now
    const { storeFile } = make(vol.dir, files);
    await storeFile.load();
    reset();
    expect(await storeFile.check()).toBe(false);
    expect(counts.reads).toBe(storeShards);
  });

  it('reads again after a refused store only when its files change', async () => {
    const vol = secretVolume(store('a'));
    const { files, counts, reset } = countingFiles(racyMarginMs + 60_000);
    const { storeFile, lines } = make(vol.file, files);
    await storeFile.load();
    vol.update('not json');
    expect(await storeFile.check()).toBe(false);
    reset();
    expect(await storeFile.check()).toBe(false);
    expect(counts.reads).toBe(0);
    expect(lines.filter((l) => l.includes('"store.invalid"'))).toHaveLength(1);
    vol.update(store('b'));
    expect(await storeFile.check()).toBe(true);
    expect([...storeFile.current().byUsername.keys()]).toEqual(['b']);
  });
});
