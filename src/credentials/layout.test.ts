import { describe, expect, it } from '@jest/globals';
import {
  layoutCredentialStore,
  shardBudget,
  shrinkBudget,
  singleBudget,
  StoreTooLargeError,
  type StoreLayout,
} from './layout.ts';
import { hashSecret } from './secret.ts';
import { parseShardText, storeShards } from './sharded.ts';
import { parseCredentialStoreText, serializeCredentialStore, type CredentialStore } from './store.ts';

function store(n: number): CredentialStore {
  return {
    version: 1,
    anonymousPull: false,
    credentials: Array.from({ length: n }, (_v, i) => ({
      username: `pull.team-${i}`,
      secretHash: hashSecret(`s-${i}`),
      grants: [{ repositories: [`team-${i}/app`], actions: ['pull' as const] }],
      description: `pull secret of namespace team-${i}`,
    })),
  };
}
const bytes = (s: CredentialStore) => Buffer.byteLength(serializeCredentialStore(s));
// The number of entries whose single document takes about `target` bytes.
const perEntry = bytes(store(1000)) / 1000;
const sized = (target: number) => store(Math.floor(target / perEntry));

describe('layoutCredentialStore', () => {
  it.each<[string, CredentialStore, StoreLayout | undefined, StoreLayout]>([
    ['a small store, first written', store(10), undefined, 'single'],
    ['a small store written by an older berth', store(10), 'single', 'single'],
    ['a store past the single budget', sized(singleBudget * 1.05), 'single', 'sharded'],
    ['a store just under the single budget stays single', sized(singleBudget * 0.95), 'single', 'single'],
    ['a sharded store between the budgets stays sharded', sized(singleBudget * 0.7), 'sharded', 'sharded'],
    ['a sharded store under the shrink budget returns', sized(shrinkBudget * 0.9), 'sharded', 'single'],
    ['an empty sharded store returns', store(0), 'sharded', 'single'],
  ])('%s', (_name, s, current, layout) => {
    const out = layoutCredentialStore(s, current);
    expect(out.layout).toBe(layout);
    if (layout === 'single') {
      expect(out.files).toHaveLength(1);
      const r = parseCredentialStoreText(out.files[0] ?? '');
      expect(r.success && r.data).toEqual(s);
    } else {
      expect(out.files).toHaveLength(storeShards);
      const n = out.files
        .map((t, shard) => parseShardText(t, { shard, shards: storeShards }))
        .reduce((sum, r) => sum + (r.success ? r.data.credentials.length : NaN), 0);
      expect(n).toBe(s.credentials.length);
    }
    expect(out.largestBytes).toBe(Math.max(...out.files.map((f) => Buffer.byteLength(f))));
    expect(out.largestBytes).toBeLessThanOrEqual(shardBudget);
  });

  it('refuses a store that even the shards cannot hold, saying how large', () => {
    expect(() => layoutCredentialStore(store(4000), 'sharded', 1)).not.toThrow();
    expect(() => layoutCredentialStore(sized(shardBudget * 12), 'sharded', 2)).toThrow(StoreTooLargeError);
    expect(() => layoutCredentialStore(sized(shardBudget * 12), 'sharded', 2)).toThrow(
      /largest shard takes \d+ bytes, more than/,
    );
  });
});
