import { describe, expect, it } from '@jest/globals';
import { hashSecret } from './secret.ts';
import {
  describeUsername,
  parseShard,
  parseShardText,
  serializeShardedStore,
  shardFileName,
  shardOf,
  storeShards,
} from './sharded.ts';
import type { CredentialEntry, CredentialStore } from './store.ts';

const pullGrants = (ns: string) => [{ repositories: [`${ns}/app`], actions: ['pull' as const] }];
const shared = [{ repositories: ['base/image'], actions: ['pull' as const] }];

function store(n: number): CredentialStore {
  const credentials: CredentialEntry[] = [
    {
      username: 'admin',
      secretHash: hashSecret('admin'),
      grants: [{ repositories: ['**'], actions: ['*'] }],
      catalog: true,
      description: describeUsername('admin'),
    },
  ];
  for (let i = 0; i < n; i++) {
    const ns = `team-${i}`;
    const grants = i % 2 ? shared : pullGrants(ns);
    credentials.push(
      {
        username: `pull.${ns}`,
        secretHash: hashSecret(`new-${i}`),
        grants,
        description: describeUsername(`pull.${ns}`),
      },
      {
        username: `pull.${ns}`,
        secretHash: hashSecret(`old-${i}`),
        grants,
        notAfter: '2026-12-02T05:00:00.123Z',
        description: describeUsername(`pull.${ns}`),
      },
    );
  }
  return { version: 1, anonymousPull: true, credentials };
}

function parseAll(texts: string[]) {
  return texts.map((t, shard) => {
    const r = parseShardText(t, { shard, shards: texts.length });
    if (!r.success) throw new Error(r.error);
    return r.data;
  });
}

describe('serializeShardedStore / parseShard', () => {
  it('round-trips every entry into the shard of its username; descriptions follow from usernames', () => {
    const s = store(200);
    const texts = serializeShardedStore(s);
    expect(texts).toHaveLength(storeShards);
    const shards = parseAll(texts);
    expect(shards[0]?.anonymousPull).toBe(true);
    expect(shards.slice(1).every((sh) => sh.anonymousPull === undefined)).toBe(true);
    expect(shards.flatMap((sh) => sh.skipped)).toEqual([]);
    const read = shards.flatMap((sh) => sh.credentials);
    const key = (e: CredentialEntry) => `${e.username} ${e.secretHash}`;
    expect(read.map(key).sort()).toEqual(s.credentials.map(key).sort());
    const byKey = new Map(read.map((e) => [key(e), e]));
    for (const { description, ...e } of s.credentials) {
      expect(byKey.get(key(e))).toEqual(e); // descriptions are not stored
      expect(describeUsername(e.username)).toBe(description);
    }
    for (const sh of shards) for (const e of sh.credentials) expect(shardOf(e.username)).toBe(sh.shard);
  });

  it('stores each grant set once per shard, and spreads usernames over the shards', () => {
    const texts = serializeShardedStore(store(2000));
    const docs = texts.map((t) => JSON.parse(t) as { grants: unknown[]; credentials: unknown[] });
    for (const d of docs) {
      const sets = d.grants.map((g) => JSON.stringify(g));
      expect(new Set(sets).size).toBe(sets.length);
      expect(d.credentials.length).toBeGreaterThan(4001 / storeShards / 2);
      expect(d.credentials.length).toBeLessThan((4001 / storeShards) * 1.5);
    }
    expect(texts.join('').split('base/image').length - 1).toBe(storeShards); // once in every shard
  });

  it('is stable: same store, same text; one changed namespace, one changed shard', () => {
    const a = serializeShardedStore(store(100));
    expect(serializeShardedStore(store(100))).toEqual(a);
    const s = store(100);
    const i = s.credentials.findIndex((e) => e.username === 'pull.team-7');
    (s.credentials[i] as CredentialEntry).secretHash = hashSecret('rotated');
    const b = serializeShardedStore(s);
    const changed = b.map((t, k) => (t === a[k] ? -1 : k)).filter((k) => k >= 0);
    expect(changed).toEqual([shardOf('pull.team-7')]);
  });

  it('names the files of the shards beside the head', () => {
    expect([0, 1, 15].map((i) => shardFileName(i))).toEqual(['store.json', 'store-1.json', 'store-15.json']);
    expect(shardFileName(3, 'creds.json')).toBe('creds-3.json');
  });

  it('describes berth’s usernames', () => {
    expect(describeUsername('pull.team-a')).toBe('pull secret of namespace team-a');
    expect(describeUsername('push.team-a.web.v2')).toBe('push secret of Repository team-a/web.v2');
    expect(describeUsername('someone')).toBeUndefined();
  });
});

describe('parseShard robustness', () => {
  const h = Buffer.alloc(32, 7).toString('base64url');
  const doc = (
    credentials: unknown[],
    grants: unknown[] = [[{ repositories: ['a/b'], actions: ['pull'] }]],
  ) => ({
    version: 2,
    shards: 2,
    shard: 1,
    grants,
    credentials,
  });

  it.each<[string, unknown, RegExp, boolean]>([
    ['a bad username', { u: 'a:b', h, g: 0 }, /\.u \(username\)/, false],
    ['a hex hash', { u: 'x', h: 'a'.repeat(64), g: 0 }, /\.h must be a SHA-256/, true],
    ['a hash of 31 bytes', { u: 'x', h: Buffer.alloc(31).toString('base64url'), g: 0 }, /\.h/, true],
    ['a grant index out of range', { u: 'x', h, g: 5 }, /\.g must be the index/, true],
    ['a negative grant index', { u: 'x', h, g: -1 }, /\.g must be the index/, true],
    ['catalog not boolean', { u: 'x', h, g: 0, c: 'yes' }, /\.c \(catalog\)/, true],
    ['a notAfter that is a string', { u: 'x', h, g: 0, e: '2026-01-01' }, /\.e \(notAfter\)/, true],
    ['a notBefore out of range', { u: 'x', h, g: 0, b: 1e20 }, /\.b \(notBefore\)/, true],
  ])('skips an entry with %s and keeps the others', (_name, bad, error, namesUser) => {
    const good = { u: 'good', h, g: 0, e: 1796189400123 };
    const r = parseShard(doc([good, bad, good]), { shard: 1, shards: 2 });
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data.credentials).toHaveLength(2);
    expect(r.data.credentials[0]).toEqual({
      username: 'good',
      secretHash: `sha256:${'07'.repeat(32)}`,
      grants: [{ repositories: ['a/b'], actions: ['pull'] }],
      notAfter: new Date(1796189400123).toISOString(),
    });
    expect(r.data.skipped).toEqual([
      { shard: 1, index: 1, error: expect.stringMatching(error), ...(namesUser ? { username: 'x' } : {}) },
    ]);
    expect(JSON.stringify(r.data.skipped)).not.toContain(h);
  });

  it('an invalid grant set skips only the entries that use it', () => {
    const r = parseShard(
      doc(
        [
          { u: 'a', h, g: 0 },
          { u: 'b', h, g: 1 },
        ],
        [[{ repositories: ['a/b'], actions: ['read'] }], [{ repositories: ['c/d'], actions: ['pull'] }]],
      ),
      { shard: 1 },
    );
    expect(r.success && r.data.credentials.map((c) => c.username)).toEqual(['b']);
    expect(r.success && r.data.skipped).toEqual([
      { shard: 1, index: 0, username: 'a', error: expect.stringMatching(/grants\[0\]\[0\]\.actions/) },
    ]);
  });

  it.each<[string, unknown, { shard: number; shards?: number }, RegExp]>([
    ['not an object', [], { shard: 1 }, /must be a JSON object/],
    ['version 1', { version: 1, credentials: [] }, { shard: 0 }, /unsupported shard version 1/],
    ['no shard count', { version: 2, shard: 0, grants: [], credentials: [] }, { shard: 0 }, /shards must be/],
    ['another shard', doc([]), { shard: 2, shards: 2 }, /holds shard 1/],
    ['another layout', doc([]), { shard: 1, shards: 16 }, /one of 2, the head says 16/],
    ['no grants list', { ...doc([]), grants: {} }, { shard: 1 }, /grants must be a list/],
    ['no credentials list', { ...doc([]), credentials: 3 }, { shard: 1 }, /credentials must be a list/],
    [
      'a head with a bad anonymousPull',
      { ...doc([]), shard: 0, anonymousPull: 1 },
      { shard: 0 },
      /anonymousPull/,
    ],
  ])('refuses a shard that is not one: %s', (_name, value, expect_, error) => {
    const r = parseShard(value, expect_);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error).toMatch(error);
  });

  it('reports JSON syntax errors', () => {
    const r = parseShardText('{"version": 2,', { shard: 0 });
    expect(!r.success && r.error).toMatch(/not valid JSON/);
  });
});

describe('ServiceAccounts in a sharded store', () => {
  const accounts = [
    {
      namespace: 'team-a',
      name: 'ci',
      grants: [{ repositories: ['team-a/web'], actions: ['pull' as const, 'push' as const] }],
    },
    { namespace: 'team-b', name: 'deploy', grants: shared },
  ];

  it('places each in the shard of its username, shares grant sets, and reads them back', () => {
    const texts = serializeShardedStore({ ...store(4), serviceAccounts: accounts });
    const read = texts.flatMap((t, i) => {
      const r = parseShardText(t, { shard: i, shards: storeShards });
      if (!r.success) throw new Error(r.error);
      expect(r.data.skipped).toEqual([]);
      return r.data.serviceAccounts.map((sa) => ({ ...sa, shard: i }));
    });
    expect(read).toEqual(
      expect.arrayContaining(
        accounts.map((sa) => ({ ...sa, shard: shardOf(`system:serviceaccount:${sa.namespace}:${sa.name}`) })),
      ),
    );
    expect(read).toHaveLength(2);
  });

  it('writes no serviceAccounts key when there are none (shards stay as they were)', () => {
    for (const t of serializeShardedStore(store(4))) expect(t).not.toContain('serviceAccounts');
  });

  it('skips an entry that is not one, and one whose grant set is missing', () => {
    const r = parseShard(
      {
        version: 2,
        shards: 16,
        shard: 3,
        grants: [shared],
        credentials: [],
        serviceAccounts: [
          { s: 'team-a/ci', g: 0 },
          { s: 'team-a', g: 0 },
          { s: 'team-a/ci', g: 5 },
        ],
      },
      { shard: 3, shards: 16 },
    );
    if (!r.success) throw new Error(r.error);
    expect(r.data.serviceAccounts).toEqual([{ namespace: 'team-a', name: 'ci', grants: shared }]);
    expect(r.data.skipped.map((s) => [s.shard, s.index, s.error])).toEqual([
      [3, 1, 'serviceAccounts[1].s must be <namespace>/<name> of a ServiceAccount'],
      [3, 2, "serviceAccounts[2].g must be the index of one of the shard's grant sets"],
    ]);
  });
});
