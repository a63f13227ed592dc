// Executes a plan's deletions against the registry, safely:
// - per repository, at most `perRepository` deletions in flight (default 8), started in plan
//   order; a deletion that must follow others (an index before its children, a subject before its
//   signatures: `after`) starts only once they are done, and is skipped unless they were deleted;
// - before a repository's deletions, and again whenever that view is older than the refresh
//   interval, every tag of the repository is listed and resolved (the view is taken after the plan,
//   never the plan's own); a delete is skipped when, in that view, a tag other than the ones the
//   plan deletes with the digest points to it (a kept tag moved onto it, a rollback; or a tag
//   pushed since the plan), or when a tag the plan deletes with it has moved to another digest;
// - deletes are by digest only.
//
// Cost against safety: resolving every tag before every single delete would be quadratic (tags ×
// deletions HEAD requests), so the view is reused while it is fresh: at most `refreshMs` old, and
// never older than four times what the last resolution took (so a large repository is resolved
// again at most every few resolutions' time, bounding the extra requests to about a quarter of the
// run, and a small one every `refreshMs`). A view's age counts from when its resolution started.
// The workers of a repository share one view; once it is half-way through its life a new one is
// resolved in the background (one at a time), so deletes do not stall on a refresh, and no delete
// is ever checked against a view older than the bound. A tag moved onto a doomed digest within that
// window can still be lost: the registry offers no conditional delete, so some window always
// remains, and concurrency does not widen it (each delete is checked against a fresh view just
// before it is sent).
//
// Backing off when the registry is busy (429/503 with Retry-After) is the client's: it pauses
// every request, so the workers of every repository wait together (src/distribution/client.ts).
import { createLimit, mapLimit } from '../../util/limit.ts';
import type { Deletion } from './model.ts';
import type { RegistryClient } from '../../distribution/client.ts';
import { retryableStatus, retryDelay, type RetryDelayOptions } from '../../distribution/throttle.ts';

export type Outcome =
  { status: 'deleted' } | { status: 'skipped'; reason: string } | { status: 'failed'; reason: string };

export interface ExecutionResult {
  /** `<repository>@<digest>` → outcome */
  outcomes: Map<string, Outcome>;
}

export interface ExecuteOptions {
  /** Repositories in parallel (default 4). */
  concurrency?: number;
  /** Deletions in flight per repository (default 8). */
  perRepository?: number;
  /** Longest time a repository's resolved tags are trusted before a delete (default 2 s). */
  refreshMs?: number;
  /**
   * How tags are resolved again (default: list them, then HEAD each through the registry). The run
   * reads each tag's link in the registry's storage instead (storageTagResolver in snapshot.ts):
   * what the registry itself resolves a tag to, without loading the registry with a HEAD per tag
   * while it deletes.
   */
  resolveTags?: TagResolver;
  /** Retries of a delete the registry refused as busy (default 5 attempts, 200 ms doubled, at most 60 s). */
  retry?: Partial<RetryPolicy>;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export const deletionKey = (repository: string, digest: string) => `${repository}@${digest}`;

type TagClient = Pick<RegistryClient, 'tags' | 'head' | 'deleteManifest'> & {
  /** Resolves once the registry's Retry-After pause (if any) is over. */
  ready?: () => Promise<void>;
};

/**
 * Whether a digest may be deleted, given every tag of its repository as just resolved (tag →
 * digest). Pure. `plannedTags` are the tags the plan deletes with it; `knownTags` every tag the plan
 * saw in the repository (for the reason only). Returns the reason to skip, or undefined.
 */
export function deleteBlocker(
  deletion: Pick<Deletion, 'digest' | 'tags'>,
  current: ReadonlyMap<string, string>,
  knownTags: ReadonlySet<string>,
): string | undefined {
  for (const tag of deletion.tags) {
    const now = current.get(tag);
    if (now !== undefined && now !== deletion.digest) return `tag ${tag} moved to ${now}`;
  }
  const planned = new Set(deletion.tags);
  for (const [tag, digest] of [...current].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (digest !== deletion.digest || planned.has(tag)) continue;
    return knownTags.has(tag)
      ? `tag ${tag}, which the plan kept, now points to it`
      : `tag ${tag} was pushed to it after the plan`;
  }
  return undefined;
}

/** Whether a view of the tags resolved `ageMs` ago, which took `tookMs` to resolve, is still used. */
export function viewIsFresh(ageMs: number, tookMs: number, refreshMs: number): boolean {
  return ageMs <= Math.max(refreshMs, 4 * tookMs);
}

/** Whether a view still fresh should be replaced in the background: past half its life. */
export function viewNeedsRefresh(ageMs: number, tookMs: number, refreshMs: number): boolean {
  return ageMs * 2 > Math.max(refreshMs, 4 * tookMs);
}

/** How a repository's tags are resolved again: every tag and the digest it points to now. */
export type TagResolver = (repository: string) => Promise<Map<string, string>>;

/** Every tag of the repository and the digest it points to now, through the registry (HEAD each). */
export async function resolveTagsByHead(repository: string, client: TagClient): Promise<Map<string, string>> {
  const tags = await client.tags(repository);
  const heads = await Promise.all(
    tags.map(async (tag) => [tag, await client.head(repository, tag)] as const),
  );
  const out = new Map<string, string>();
  for (const [tag, head] of heads) if (head) out.set(tag, head.digest);
  return out;
}

interface View {
  tags: Map<string, string>;
  /** When its resolution started. */
  at: number;
  took: number;
}

/**
 * A repository's resolved tags, shared by its workers: `current()` returns a view within the
 * freshness bound (waiting for a resolution when there is none), and starts one in the background
 * when the view is past half its life. One resolution at a time. Deletions done are remembered and
 * applied to every later view too, since a view resolved while a delete was in flight may still
 * show the deleted digest's tags.
 */
class TagView {
  private view: View | undefined;
  private pending: Promise<View> | undefined;
  private readonly deleted = new Set<string>();
  private readonly repository: string;
  private readonly resolveTags: TagResolver;
  private readonly refreshMs: number;
  private readonly clock: () => number;
  constructor(repository: string, resolveTags: TagResolver, refreshMs: number, clock: () => number) {
    this.repository = repository;
    this.resolveTags = resolveTags;
    this.refreshMs = refreshMs;
    this.clock = clock;
  }

  private resolve(): Promise<View> {
    this.pending ??= (async () => {
      const at = this.clock();
      try {
        const tags = await this.resolveTags(this.repository);
        for (const [tag, digest] of [...tags]) if (this.deleted.has(digest)) tags.delete(tag);
        const view = { tags, at, took: this.clock() - at };
        if (!this.view || this.view.at <= at) this.view = view;
        return view;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  async current(): Promise<Map<string, string>> {
    const view = this.view;
    if (view) {
      const age = this.clock() - view.at;
      if (viewIsFresh(age, view.took, this.refreshMs)) {
        if (viewNeedsRefresh(age, view.took, this.refreshMs) && !this.pending)
          this.resolve().catch(() => undefined); // a failure surfaces when the view is needed
        return view.tags;
      }
    }
    return (await this.resolve()).tags;
  }

  /** A digest was deleted: its tags went with it. */
  deletedDigest(digest: string): void {
    this.deleted.add(digest);
    const tags = this.view?.tags;
    if (tags) for (const [tag, d] of [...tags]) if (d === digest) tags.delete(tag);
  }
}

/**
 * After a failed delete attempt (1-based), the wait before the next (0: at once, the client's pause
 * does the waiting when the registry sent Retry-After), or undefined to give up. Pure: only a busy
 * or unreachable registry is retried (a RegistryError with 429/5xx, or an error without a status,
 * such as a refused connection); a 4xx is final.
 */
export function deleteRetry(
  err: unknown,
  attempt: number,
  policy: RetryPolicy,
  random: number,
): number | undefined {
  if (attempt >= policy.attempts) return undefined;
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && !retryableStatus(status)) return undefined;
  const retryAfter = (err as { retryAfterMs?: unknown }).retryAfterMs;
  if (typeof retryAfter === 'number') return 0;
  return retryDelay(attempt, undefined, policy, random).ms;
}

export interface RetryPolicy extends RetryDelayOptions {
  /** Attempts per deletion (default 5). */
  attempts: number;
}

interface Settings {
  resolveTags: TagResolver;
  refreshMs: number;
  clock: () => number;
  perRepository: number;
  retry: RetryPolicy;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

/** What the deletions of one repository share. */
interface RepositoryRun {
  repository: string;
  view: TagView;
  knownTags: ReadonlySet<string>;
  client: TagClient;
  options: Settings;
}

/**
 * One repository's deletions, started in plan order: each waits for the deletions it belongs to
 * (`after`, outside the pool) and is skipped unless they were deleted; then at most
 * `perRepository` at once attempt theirs (deleteOne). Writes each outcome into `outcomes`.
 */
async function executeRepository(
  repository: string,
  deletions: Deletion[],
  knownTags: ReadonlySet<string>,
  client: TagClient,
  outcomes: Map<string, Outcome>,
  options: Settings,
): Promise<void> {
  const view = new TagView(repository, options.resolveTags, options.refreshMs, options.clock);
  const run: RepositoryRun = { repository, view, knownTags, client, options };
  const limit = createLimit(options.perRepository);
  const done = new Map<string, Promise<void>>();
  const one = async (d: Deletion): Promise<void> => {
    const key = deletionKey(repository, d.digest);
    // What it belongs to comes earlier in the plan: wait for those, outside the pool.
    await Promise.all(d.after.map((a) => done.get(a)));
    const blocked = d.after.find((a) => outcomes.get(deletionKey(repository, a))?.status !== 'deleted');
    if (blocked) {
      outcomes.set(key, { status: 'skipped', reason: `${blocked}, which it belongs to, was not deleted` });
      return;
    }
    await limit(() => deleteOne(run, d, (outcome) => outcomes.set(key, outcome)));
  };
  for (const d of deletions) done.set(d.digest, one(d));
  await Promise.all(done.values());
}

/**
 * Deletes one manifest: each attempt, after the registry's pause if any, checks the deletion
 * against a fresh view of the tags (skipped when a tag moved or points to it), then deletes; a
 * failed delete is retried as deleteRetry says. Records the outcome as soon as it is known.
 */
async function deleteOne(run: RepositoryRun, d: Deletion, record: (outcome: Outcome) => void): Promise<void> {
  const { repository, view, client, options } = run;
  for (let attempt = 1; ; attempt++) {
    // Each attempt is checked against a fresh view after any pause, never the one before it.
    await client.ready?.();
    let tags: Map<string, string>;
    try {
      tags = await view.current();
    } catch (err) {
      return record({
        status: 'failed',
        reason: `could not resolve the tags again: ${(err as Error).message}`,
      });
    }
    const blocker = deleteBlocker(d, tags, run.knownTags);
    if (blocker) return record({ status: 'skipped', reason: blocker });
    try {
      await client.deleteManifest(repository, d.digest);
      record({ status: 'deleted' });
      view.deletedDigest(d.digest);
      return;
    } catch (err) {
      const retry = deleteRetry(err, attempt, options.retry, options.random());
      if (retry === undefined) return record({ status: 'failed', reason: (err as Error).message });
      if (retry > 0) await options.sleep(retry);
    }
  }
}

/**
 * Runs the deletions: repositories in parallel (at most `concurrency`), in each at most
 * `perRepository` at once, started in plan order.
 */
export async function executeDeletions(
  deletions: Deletion[],
  knownTags: Map<string, Set<string>>,
  client: TagClient,
  options: ExecuteOptions = {},
): Promise<ExecutionResult> {
  const byRepo = new Map<string, Deletion[]>();
  for (const d of deletions) {
    const list = byRepo.get(d.repository) ?? [];
    list.push(d);
    byRepo.set(d.repository, list);
  }
  const outcomes = new Map<string, Outcome>();
  const settings: Settings = {
    resolveTags: options.resolveTags ?? ((repo) => resolveTagsByHead(repo, client)),
    refreshMs: options.refreshMs ?? 2_000,
    clock: options.clock ?? Date.now,
    perRepository: options.perRepository ?? 8,
    retry: { attempts: 5, baseMs: 200, maxMs: 60_000, ...options.retry },
    sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    random: options.random ?? Math.random,
  };
  await mapLimit([...byRepo], options.concurrency ?? 4, ([repo, list]) =>
    executeRepository(repo, list, knownTags.get(repo) ?? new Set(), client, outcomes, settings),
  );
  return { outcomes };
}
