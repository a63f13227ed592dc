// The credential store as the token service sees it: a file (a mounted Secret) that is reloaded
// when its content changes, without a restart.
//
// Kubernetes updates a mounted Secret by writing a new timestamped folder and swapping the
// `..data` symlink, so an inotify watch on the file itself sees nothing. Instead this watches the
// folder (any event triggers a check) and also polls, and compares the SHA-256 of the content: a
// change of content is a reload, anything else is ignored. A store that is not a store at all
// (not JSON, another version) is refused and the previous one stays in force; a store with some
// invalid entries is loaded without them, and each one left out is logged (index, username when
// valid, reason; never a secret or a hash) and counted (berth_token_store_entries_skipped_total).
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'winston';
import {
  compileCredentialStore,
  parseCredentialStoreText,
  type CompiledStore,
  type SkippedEntry,
} from '../credentials/store.ts';
import type { TokenMetrics } from './metrics.ts';

/** At most this many skipped entries are logged one by one per load; a summary counts them all. */
export const maxSkippedEntriesLogged = 20;

export class CredentialStoreError extends Error {
  override name = 'CredentialStoreError';
}

export interface StoreFileDeps {
  logger: Logger;
  metrics: TokenMetrics;
  clock: () => Date;
}

export class CredentialStoreFile {
  readonly path: string;
  private readonly deps: StoreFileDeps;
  private compiled: CompiledStore | undefined;
  private contentHash = '';
  private loadedAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private checking: Promise<boolean> | undefined;
  private pending = false;

  constructor(filePath: string, deps: StoreFileDeps) {
    this.path = filePath;
    this.deps = deps;
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
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new CredentialStoreError(
        `cannot read the credential store ${this.path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    const error = this.apply(text);
    if (error) throw new CredentialStoreError(`invalid credential store ${this.path}: ${error}`);
  }

  /**
   * Reads the file again and applies it if its content changed. Returns whether a new store came
   * into force. Concurrent calls are coalesced.
   */
  check(): Promise<boolean> {
    if (this.checking) {
      this.pending = true;
      return this.checking;
    }
    this.checking = this.checkOnce().finally(() => {
      this.checking = undefined;
      if (this.pending) {
        this.pending = false;
        void this.check();
      }
    });
    return this.checking;
  }

  private async checkOnce(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      // In the middle of a symlink swap the file can be briefly missing; the next poll retries.
      this.deps.logger.warn('credential store unreadable, keeping the current one', {
        event: 'store.unreadable',
        path: this.path,
        code: (err as NodeJS.ErrnoException).code,
      });
      return false;
    }
    if (sha256(text) === this.contentHash) return false;
    const error = this.apply(text);
    if (error) {
      this.deps.logger.error('credential store refused, keeping the current one', {
        event: 'store.invalid',
        path: this.path,
        error,
      });
      return false;
    }
    return true;
  }

  /** Parses and installs `text`; returns an error message (secret-free) or undefined. */
  private apply(text: string): string | undefined {
    const hash = sha256(text);
    let parsed: ReturnType<typeof parseCredentialStoreText>;
    let compiled: CompiledStore | undefined;
    try {
      parsed = parseCredentialStoreText(text);
      if (parsed.success) compiled = compileCredentialStore(parsed.data);
    } catch {
      // Not expected (every entry was validated), but a poll must never take the process down.
      parsed = { success: false, error: 'the credential store could not be compiled' };
    }
    if (!parsed.success || !compiled) {
      this.deps.metrics.storeReloads.inc({ result: 'error' });
      this.contentHash = hash; // do not re-log the same bad content on every poll
      return parsed.success ? 'the credential store could not be compiled' : parsed.error;
    }
    this.compiled = compiled;
    this.contentHash = hash;
    this.loadedAt = this.deps.clock();
    this.deps.metrics.storeReloads.inc({ result: 'ok' });
    this.deps.metrics.storeCredentials.set(this.compiled.size);
    this.reportSkipped(parsed.skipped);
    this.deps.logger.info('credential store loaded', {
      event: 'store.loaded',
      path: this.path,
      credentials: this.compiled.size,
      skipped: parsed.skipped.length || undefined,
      anonymousPull: this.compiled.anonymousPull,
      contentSha256: hash.slice(0, 12),
    });
    return undefined;
  }

  private reportSkipped(skipped: SkippedEntry[]): void {
    if (skipped.length === 0) return;
    this.deps.metrics.storeEntriesSkipped.inc(skipped.length);
    for (const s of skipped.slice(0, maxSkippedEntriesLogged))
      this.deps.logger.error('credential store entry skipped', {
        event: 'store.entry-skipped',
        path: this.path,
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

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
