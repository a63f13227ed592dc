// The credential store as the token service sees it: a file (a mounted Secret) that is reloaded
// when its content changes, without a restart.
//
// The file is either a whole store (version 1) or the head of a sharded store (version 2,
// src/credentials/sharded.ts): then the other shards are its siblings (`store-<i>.json` beside
// `store.json`, one folder from a projected volume). `--store` may also name the folder.
//
// Kubernetes updates a mounted Secret by writing a new timestamped folder and swapping the
// `..data` symlink, so an inotify watch on the file itself sees nothing. Instead this watches the
// folder (any event triggers a check) and also polls, and compares the SHA-256 of the content: a
// change of content is a reload, anything else is ignored. Of a sharded store only the shards
// whose content changed are parsed again. A check first compares the files' stamps with those of
// the last read (store-stamps.ts): files unchanged since are not read again. A store that is not a store at all (not JSON, another
// version, a head that is not one) is refused and the previous one stays in force; a shard that
// is unreadable or not a shard of this store is refused alone (its previous content stays in
// force, if any); a store with some invalid entries is loaded without them, and each one left out
// is logged (shard, index, username when valid, reason; never a secret or a hash) and counted
// (berth_token_store_entries_skipped_total).
import { createHash } from 'node:crypto';
import { statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'winston';
import {
  parseShard,
  parseShardText,
  shardFileName,
  shardedStoreVersion,
  type ParsedShard,
} from '../credentials/sharded.ts';
import {
  compileCredentialStore,
  compileEntries,
  compileServiceAccounts,
  parseCredentialStore,
  type CompiledEntry,
  type CompiledStore,
  type SkippedEntry,
} from '../credentials/store.ts';
import type { TokenMetrics } from './metrics.ts';
import {
  nodeStoreFileSystem,
  stampsNow,
  unchangedSince,
  type StampRecord,
  type StoreFileSystem,
} from './store-stamps.ts';
import type { Clock } from '../runtime/clock.ts';
import { serialWithRerun } from '../util/serial.ts';

/** At most this many skipped entries are logged one by one per load; a summary counts them all. */
export const maxSkippedEntriesLogged = 20;

/** The head's file name when `--store` names a folder. */
export const storeFileName = 'store.json';

export class CredentialStoreError extends Error {
  override name = 'CredentialStoreError';
}

export interface StoreFileDeps {
  logger: Logger;
  metrics: TokenMetrics;
  clock: Pick<Clock, 'now'>;
  /** The files' reading and stamps; default node:fs (tests count the reads). */
  files?: StoreFileSystem;
}

/** One shard in force: the hash of its text, and its entries compiled. */
interface LoadedShard {
  shards: number;
  textHash: string;
  parsed: ParsedShard;
  byUsername: Map<string, CompiledEntry[]>;
  serviceAccounts: Map<string, CompiledEntry['grants']>;
}

/** A store to install. */
interface StoreRead {
  kind: 'store';
  contentHash: string;
  compiled: CompiledStore;
  skipped: SkippedEntry[];
  shards?: LoadedShard[];
}

/** The outcome of reading the files: a store to install, or why not (secret-free). */
type Read = { kind: 'same' } | { kind: 'refused'; error: string; contentHash: string } | StoreRead;

/** The head of a sharded store, parsed (the other shards are still to be read). */
interface ShardedHead {
  kind: 'head';
  parsed: ParsedShard;
}

export class CredentialStoreFile {
  /** The store's file (the head of a sharded store). */
  readonly path: string;
  private readonly deps: StoreFileDeps;
  private readonly files: StoreFileSystem;
  private compiled: CompiledStore | undefined;
  private contentHash = '';
  private shards: LoadedShard[] = [];
  /** The files behind `contentHash`, with their stamps when they were read. */
  private stampRecord: StampRecord | undefined;
  private loadedAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  /**
   * Reads the files again and applies them if their content changed. Returns whether a new store
   * came into force. Concurrent calls are coalesced.
   */
  readonly check: () => Promise<boolean> = serialWithRerun(() => this.checkOnce());

  constructor(filePath: string, deps: StoreFileDeps) {
    this.path = isDirectory(filePath) ? path.join(filePath, storeFileName) : filePath;
    this.deps = deps;
    this.files = deps.files ?? nodeStoreFileSystem;
  }

  /** The store in force. Throws before the first successful load. */
  current(): CompiledStore {
    if (!this.compiled) throw new CredentialStoreError('the credential store has not been loaded');
    return this.compiled;
  }

  get lastLoaded(): Date | undefined {
    return this.loadedAt;
  }

  /** First load: an unreadable or invalid store is fatal. */
  async load(): Promise<void> {
    const pass = this.newPass();
    let text: string;
    try {
      text = await this.readTracked(this.path, pass);
    } catch (err) {
      throw new CredentialStoreError(
        `cannot read the credential store ${this.path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    const error = await this.apply(text, true, pass);
    if (error) throw new CredentialStoreError(`invalid credential store ${this.path}: ${error}`);
  }

  /** One check: nothing is read when the stamps say the files are those read last time. */
  private async checkOnce(): Promise<boolean> {
    const record = this.stampRecord;
    if (record && unchangedSince(record, await stampsNow(record, this.files))) return false;
    const pass = this.newPass();
    let text: string;
    try {
      text = await this.readTracked(this.path, pass);
    } catch (err) {
      // In the middle of a symlink swap the file can be briefly missing; the next poll retries.
      this.deps.logger.warn('credential store unreadable, keeping the current one', {
        event: 'store.unreadable',
        path: this.path,
        code: (err as NodeJS.ErrnoException).code,
      });
      return false;
    }
    const before = this.contentHash;
    const error = await this.apply(text, false, pass);
    if (error) {
      this.deps.logger.error('credential store refused, keeping the current one', {
        event: 'store.invalid',
        path: this.path,
        error,
      });
      return false;
    }
    return this.contentHash !== before;
  }

  private newPass(): StampRecord {
    return { readAtMs: this.files.now(), stamps: new Map() };
  }

  /** Stamps `file`, then reads it (a write in between changes the stamp: read again next time). */
  private async readTracked(file: string, pass: StampRecord): Promise<string> {
    pass.stamps.set(file, await this.files.stamp(file));
    return this.files.readFile(file);
  }

  /**
   * Reads, parses and installs the store whose head is `headText`; an error (secret-free) or
   * undefined. Records `pass` as the files behind the content hash now in force.
   */
  private async apply(headText: string, first: boolean, pass: StampRecord): Promise<string | undefined> {
    let read: Read;
    try {
      read = await this.read(headText, first, pass);
    } catch {
      // Not expected (every entry was validated), but a poll must never take the process down.
      read = { kind: 'refused', error: 'the credential store could not be compiled', contentHash: '' };
    }
    if (read.kind === 'same') {
      this.stampRecord = pass;
      return undefined;
    }
    if (read.kind === 'refused') {
      this.deps.metrics.storeReloads.inc({ result: 'error' });
      if (read.contentHash) {
        this.contentHash = read.contentHash; // do not re-log the same bad content
        this.stampRecord = pass;
      }
      return read.error;
    }
    this.install(read);
    this.stampRecord = pass;
    return undefined;
  }

  /** Puts `read` in force: the store, its figures, the skipped entries' report, the log line. */
  private install(read: StoreRead): void {
    this.compiled = read.compiled;
    this.contentHash = read.contentHash;
    this.shards = read.shards ?? [];
    this.loadedAt = new Date(this.deps.clock.now());
    this.deps.metrics.storeReloads.inc({ result: 'ok' });
    this.deps.metrics.storeCredentials.set(this.compiled.size);
    this.reportSkipped(read.skipped);
    this.deps.logger.info('credential store loaded', {
      event: 'store.loaded',
      path: this.path,
      credentials: this.compiled.size,
      shards: read.shards?.length,
      skipped: read.skipped.length || undefined,
      anonymousPull: this.compiled.anonymousPull,
      contentSha256: read.contentHash.slice(0, 12),
    });
  }

  /** The store whose head is `headText`: the same as in force, a new one, or refused. */
  private async read(headText: string, first: boolean, pass: StampRecord): Promise<Read> {
    const headHash = sha256(headText);
    if (!first && headHash === this.contentHash) return { kind: 'same' }; // a whole store, or refused
    const head = parseHead(headText, headHash, this.shards[0]);
    if (head.kind !== 'head') return head;
    const count = head.parsed.shards;
    const texts = await this.readShards(headText, count, pass);
    const hashes = texts.map((t, i) => (i === 0 ? headHash : t === undefined ? 'missing' : sha256(t)));
    const contentHash = sha256(hashes.join('\n'));
    if (!first && contentHash === this.contentHash) return { kind: 'same' };
    const shards: LoadedShard[] = [];
    const skipped: SkippedEntry[] = [];
    for (const [i, text] of texts.entries()) {
      const loaded = this.loadShard(i, text, hashes[i] as string, head.parsed);
      shards.push(loaded.shard);
      skipped.push(...loaded.skipped);
    }
    return {
      kind: 'store',
      contentHash,
      compiled: merge(shards, head.parsed.anonymousPull ?? false),
      skipped,
      shards,
    };
  }

  /** The texts of every shard, the head's first; undefined for a shard that cannot be read. */
  private async readShards(
    headText: string,
    count: number,
    pass: StampRecord,
  ): Promise<(string | undefined)[]> {
    const texts: (string | undefined)[] = [headText];
    const dir = path.dirname(this.path);
    const base = path.basename(this.path);
    for (let i = 1; i < count; i++) {
      const file = path.join(dir, shardFileName(i, base));
      texts.push(await this.readTracked(file, pass).catch(() => undefined));
    }
    return texts;
  }

  /**
   * Shard `i` as it will be in force: the previous one when its text is unchanged (neither parsed
   * nor reported again), else parsed and compiled; a shard refused keeps its previous content.
   */
  private loadShard(
    i: number,
    text: string | undefined,
    textHash: string,
    head: ParsedShard,
  ): { shard: LoadedShard; skipped: SkippedEntry[] } {
    const count = head.shards;
    const previous = this.shards[i]?.shards === count ? this.shards[i] : undefined;
    if (previous && previous.textHash === textHash) return { shard: previous, skipped: [] };
    const base = path.basename(this.path);
    const parsed =
      i === 0
        ? ({ success: true, data: head } as const)
        : text === undefined
          ? ({ success: false, error: `${shardFileName(i, base)} is missing` } as const)
          : parseShardText(text, { shard: i, shards: count });
    if (!parsed.success) {
      this.deps.logger.error('credential store shard refused, keeping its previous content', {
        event: 'store.shard-invalid',
        path: this.path,
        shard: i,
        error: parsed.error,
        kept: previous ? previous.byUsername.size : 0,
      });
      const empty = {
        shards: count,
        shard: i,
        credentials: [],
        prepared: [],
        serviceAccounts: [],
        skipped: [],
      };
      return {
        shard: previous ?? {
          shards: count,
          textHash,
          parsed: empty,
          byUsername: new Map(),
          serviceAccounts: new Map(),
        },
        skipped: [],
      };
    }
    return {
      shard: {
        shards: count,
        textHash,
        parsed: parsed.data,
        byUsername: compileEntries(parsed.data.credentials, undefined, parsed.data.prepared),
        serviceAccounts: compileServiceAccounts(parsed.data.serviceAccounts),
      },
      skipped: parsed.data.skipped,
    };
  }

  private reportSkipped(skipped: SkippedEntry[]): void {
    if (skipped.length === 0) return;
    this.deps.metrics.storeEntriesSkipped.inc(skipped.length);
    for (const s of skipped.slice(0, maxSkippedEntriesLogged))
      this.deps.logger.error('credential store entry skipped', {
        event: 'store.entry-skipped',
        path: this.path,
        shard: s.shard,
        index: s.index,
        username: s.username,
        error: s.error,
      });
    if (skipped.length > maxSkippedEntriesLogged)
      this.deps.logger.error('more credential store entries skipped', {
        event: 'store.entries-skipped',
        path: this.path,
        logged: maxSkippedEntriesLogged,
        skipped: skipped.length,
      });
  }

  /** Watches the file's folder and polls every `intervalMs`. */
  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
    try {
      this.watcher = watch(path.dirname(this.path), { persistent: false }, () => void this.check());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined; // polling goes on
      });
    } catch {
      this.watcher = undefined;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }
}

/**
 * The head's text judged alone: a whole store (version 1) or its refusal, or the head of a sharded
 * store (version 2). The head in force (`previous`, shard 0) is reused when its text is the same.
 */
function parseHead(
  headText: string,
  headHash: string,
  previous: LoadedShard | undefined,
): Read | ShardedHead {
  if (previous && previous.textHash === headHash) return { kind: 'head', parsed: previous.parsed };
  let json: unknown;
  try {
    json = JSON.parse(headText);
  } catch (err) {
    return {
      kind: 'refused',
      error: `the credential store is not valid JSON: ${(err as Error).message}`,
      contentHash: headHash,
    };
  }
  const version = (json as { version?: unknown } | null)?.version;
  if (version !== shardedStoreVersion) {
    // A whole store (version 1), or not a store at all.
    const parsed = parseCredentialStore(json);
    if (!parsed.success) return { kind: 'refused', error: parsed.error, contentHash: headHash };
    return {
      kind: 'store',
      contentHash: headHash,
      compiled: compileCredentialStore(parsed.data),
      skipped: parsed.skipped,
    };
  }
  const head = parseShard(json, { shard: 0 });
  if (!head.success)
    return { kind: 'refused', error: `the head of the store: ${head.error}`, contentHash: headHash };
  return { kind: 'head', parsed: head.data };
}

/** One lookup map over every shard (a username's entries are all in one shard). */
function merge(shards: LoadedShard[], anonymousPull: boolean): CompiledStore {
  if (shards.length === 1) {
    const only = shards[0] as LoadedShard;
    return {
      anonymousPull,
      byUsername: only.byUsername,
      size: only.parsed.credentials.length,
      serviceAccounts: only.serviceAccounts,
    };
  }
  const byUsername = new Map<string, CompiledEntry[]>();
  const serviceAccounts = new Map<string, CompiledEntry['grants']>();
  let size = 0;
  for (const shard of shards) {
    size += shard.parsed.credentials.length;
    for (const [username, entries] of shard.byUsername) {
      const list = byUsername.get(username);
      byUsername.set(username, list ? [...list, ...entries] : entries);
    }
    for (const [key, grants] of shard.serviceAccounts)
      serviceAccounts.set(key, [...(serviceAccounts.get(key) ?? []), ...grants]);
  }
  return { anonymousPull, byUsername, size, serviceAccounts };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
