// Pure: how a credential store is laid out in Secrets. A store that fits one Secret comfortably is
// written as one version-1 document, the format every token service reads (so a token pod still
// running an older berth keeps following the store during an upgrade); a larger one is written as
// a sharded store (version 2, src/credentials/sharded.ts) in a fixed number of shards, each within
// the Secret size limit. The switch has hysteresis (grow past `singleBudget`, return below
// `shrinkBudget`), so a store near the threshold does not flap between layouts.
import { serializeShardedStore, storeShards } from './sharded.ts';
import { serializeCredentialStore, type CredentialStore } from './store.ts';

export type StoreLayout = 'single' | 'sharded';

/** A Secret's data may total at most this many bytes (Kubernetes, decoded). */
export const secretDataLimit = 1024 * 1024;
/** A single document grows into shards past this size. */
export const singleBudget = 768 * 1024;
/** A sharded store returns to a single document only below this size. */
export const shrinkBudget = 384 * 1024;
/** No shard may be larger (room under the limit for the Secret's other fields' growth). */
export const shardBudget = 960 * 1024;

// Each version-1 entry takes at least this many bytes (a username, a hash, empty grants, indent):
// a bound that spares serialising a large store as one document only to measure it.
const minSingleEntryBytes = 100;

export class StoreTooLargeError extends Error {
  override name = 'StoreTooLargeError';
}

export interface LaidOutStore {
  layout: StoreLayout;
  /** One text per Secret: index 0 is the head (`store.json`), i the shard `store-<i>.json`. */
  files: string[];
  /** The largest file, in bytes. */
  largestBytes: number;
}

/**
 * Lays `store` out, given the layout now in force (undefined: none yet). Throws
 * StoreTooLargeError when even a shard would pass `shardBudget` (the message gives the sizes).
 */
export function layoutCredentialStore(
  store: CredentialStore,
  current: StoreLayout | undefined,
  shards = storeShards,
): LaidOutStore {
  const budget = current === 'sharded' ? shrinkBudget : singleBudget;
  if (store.credentials.length * minSingleEntryBytes <= budget) {
    const text = serializeCredentialStore(store);
    const bytes = Buffer.byteLength(text);
    if (bytes <= budget) return { layout: 'single', files: [text], largestBytes: bytes };
  }
  const files = serializeShardedStore(store, shards);
  const largestBytes = Math.max(...files.map((f) => Buffer.byteLength(f)));
  if (largestBytes > shardBudget)
    throw new StoreTooLargeError(
      `the credential store of ${store.credentials.length} credentials does not fit ${shards} Secrets: ` +
        `its largest shard takes ${largestBytes} bytes, more than ${shardBudget}`,
    );
  return { layout: 'sharded', files, largestBytes };
}
