// Executes a plan's deletions against the registry, safely:
// - per repository, at most `perRepository` deletions in flight (default 8), started in plan
//   order; a deletion that must follow others (an index before its children, a subject before its
//   signatures: `after`) starts only once they are done, and is skipped unless they were deleted;
// - before a repository's deletions, and again whenever that view is older than the refresh
//   interval, every tag of the repository is listed and resolved (the view is taken after the plan,
//   never the plan's own); a delete is skipped when, in that view, a tag other than the ones the
//   plan deletes with the digest points to it (a kept tag moved onto it, a rollback; or a tag
//   pushed since the plan), or when a tag the plan deletes with it has moved to another digest;
// - with protect.inUse, what workloads use is listed again after the plan (the plan's own listing
//   is older than the snapshot: the run lists it first, so it can plan each repository as its
//   snapshot arrives), shared by every repository and at most `inUseRefreshMs` old (or four times
//   what listing took); a delete is skipped when its digest, a tag the plan deletes with it, or
//   another member of its unit (the deletions joined by `after`: an index and its children, a
//   subject and its signatures) is in use in that listing, so the unit is kept whole;
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
// before it is sent). The in-use listing is reused the same way (one view for the whole run, at
// most `inUseRefreshMs`, 10 s by default, or four times what listing took): a workload created
// within that window that names a doomed image can still lose it.
//
// Backing off when the registry is busy (429/503 with Retry-After) is the client's: it pauses
// every request, so the workers of every repository wait together (src/distribution/client.ts).
import { createLimit, mapLimit } from '../../util/limit.ts';
import { sleep, systemClock, type Clock } from '../../runtime/clock.ts';
import type { Deletion, InUse, PlanEntry } from './model.ts';
import type { RegistryClient } from '../../distribution/client.ts';
import { retryableStatus, retryDelay, type RetryDelayOptions } from '../../distribution/throttle.ts';

export type Outcome =
  { status: 'deleted' } | { status: 'skipped'; reason: string } | { status: 'failed'; reason: string };

/** One outcome object for every deletion done (there may be as many as there are tags). */
const deletedOutcome: Outcome = Object.freeze({ status: 'deleted' });

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
  /**
   * protect.inUse: lists what workloads use now (cluster-wide), for the checks before each delete.
   * Undefined: no in-use check (the policy does not protect what is in use).
   */
  inUse?: InUseResolver;
  /** Longest time that listing is trusted before a delete (default 10 s, or four times what it took). */
  inUseRefreshMs?: number;
  /** Retries of a delete the registry refused as busy (default 5 attempts, 200 ms doubled, at most 60 s). */
  retry?: Partial<RetryPolicy>;
  /** The time, and the waits between retries (default: the system's). */
  clock?: Clock;
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

/** Every tag the plan saw in a repository (for the reasons of skipped deletions). */
export type KnownTags =
  ReadonlyMap<string, ReadonlySet<string>> | ((repository: string) => ReadonlySet<string>);

/**
 * The tags the plan saw in each repository, from its entries (one per tag), made for one
 * repository at a time when its deletions start, so the run holds no second copy of every tag
 * name. Entries come in repository order (the plan's); a repository's tags are looked for between
 * its first and last entry.
 */
export function knownTagsOf(entries: readonly PlanEntry[]): (repository: string) => ReadonlySet<string> {
  let ranges: Map<string, { first: number; last: number }> | undefined;
  return (repository) => {
    if (!ranges) {
      ranges = new Map();
      entries.forEach((e, i) => {
        const range = ranges?.get(e.repository);
        if (range) range.last = i;
        else ranges?.set(e.repository, { first: i, last: i });
      });
    }
    const range = ranges.get(repository);
    const tags = new Set<string>();
    if (range)
      for (let i = range.first; i <= range.last; i++) {
        const e = entries[i];
        if (e?.repository === repository && e.tag !== undefined) tags.add(e.tag);
      }
    return tags;
  };
}

/** How what workloads use is listed again (normalised to this registry's repository paths). */
export type InUseResolver = () => Promise<InUse>;

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

interface View<T> {
  value: T;
  /** When its resolution started. */
  at: number;
  took: number;
}

/**
 * A value resolved again when it is too old, shared by its users: `current()` returns a view
 * within the freshness bound (viewIsFresh; waiting for a resolution when there is none), and starts
 * one in the background when the view is past half its life. One resolution at a time; a view's
 * age counts from when its resolution started.
 */
class FreshView<T> {
  private view: View<T> | undefined;
  private pending: Promise<View<T>> | undefined;
  private readonly resolveValue: () => Promise<T>;
  private readonly refreshMs: number;
  private readonly clock: Clock;
  constructor(resolveValue: () => Promise<T>, refreshMs: number, clock: Clock) {
    this.resolveValue = resolveValue;
    this.refreshMs = refreshMs;
    this.clock = clock;
  }

  private resolve(): Promise<View<T>> {
    this.pending ??= (async () => {
      const at = this.clock.now();
      try {
        const value = await this.resolveValue();
        const view = { value, at, took: this.clock.now() - at };
        if (!this.view || this.view.at <= at) this.view = view;
        return view;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  async current(): Promise<T> {
    const view = this.view;
    if (view) {
      const age = this.clock.now() - view.at;
      if (viewIsFresh(age, view.took, this.refreshMs)) {
        if (viewNeedsRefresh(age, view.took, this.refreshMs) && !this.pending)
          this.resolve().catch(() => undefined); // a failure surfaces when the view is needed
        return view.value;
      }
    }
    return (await this.resolve()).value;
  }

  /** The latest view's value, if any (fresh or not). */
  latest(): T | undefined {
    return this.view?.value;
  }
}

/**
 * A repository's resolved tags (a FreshView), shared by its workers. Deletions done are remembered
 * and applied to every later view too, since a view resolved while a delete was in flight may still
 * show the deleted digest's tags.
 */
class TagView {
  private readonly deleted = new Set<string>();
  private readonly fresh: FreshView<Map<string, string>>;
  constructor(repository: string, resolveTags: TagResolver, refreshMs: number, clock: Clock) {
    const resolve = async () => {
      const tags = await resolveTags(repository);
      for (const [tag, digest] of [...tags]) if (this.deleted.has(digest)) tags.delete(tag);
      return tags;
    };
    this.fresh = new FreshView(resolve, refreshMs, clock);
  }

  current(): Promise<Map<string, string>> {
    return this.fresh.current();
  }

  /** A digest was deleted: its tags went with it. */
  deletedDigest(digest: string): void {
    this.deleted.add(digest);
    const tags = this.fresh.latest();
    if (tags) for (const [tag, d] of [...tags]) if (d === digest) tags.delete(tag);
  }
}

/**
 * The units of one repository's deletions: digest → every deletion joined to it through `after`
 * (an index and its children, a subject and its signatures), itself included. The planner deletes a
 * unit whole or not at all, so a member found in use keeps all of it.
 */
export function deletionUnits(deletions: readonly Deletion[]): Map<string, Deletion[]> {
  const byDigest = new Map(deletions.map((d) => [d.digest, d]));
  const links = new Map<string, string[]>();
  const link = (a: string, b: string) => links.set(a, [...(links.get(a) ?? []), b]);
  for (const d of deletions)
    for (const a of d.after)
      if (byDigest.has(a)) {
        link(d.digest, a);
        link(a, d.digest);
      }
  const units = new Map<string, Deletion[]>();
  for (const d of deletions) {
    if (units.has(d.digest)) continue;
    const unit: Deletion[] = [];
    const queue = [d.digest];
    const seen = new Set(queue);
    for (let i = 0; i < queue.length; i++) {
      const x = queue[i] as string;
      const member = byDigest.get(x);
      if (member) unit.push(member);
      for (const y of links.get(x) ?? [])
        if (!seen.has(y)) {
          seen.add(y);
          queue.push(y);
        }
    }
    for (const m of unit) units.set(m.digest, unit);
  }
  return units;
}

/**
 * Why a deletion is kept because of what workloads use now (listed again after the plan), or
 * undefined. Pure. Any member of its unit in use by digest, or by a tag the plan deletes with it,
 * keeps the deletion (and so the whole unit).
 */
export function inUseBlocker(
  repository: string,
  deletion: Pick<Deletion, 'digest'>,
  unit: readonly Pick<Deletion, 'digest' | 'tags'>[],
  inUse: InUse,
): string | undefined {
  for (const member of unit) {
    const which = member.digest === deletion.digest ? 'it' : `${member.digest}, of its unit,`;
    const by = inUse.digests.get(`${repository}@${member.digest}`);
    if (by) return `${which} is in use by ${by} (listed again before the delete)`;
    for (const tag of member.tags) {
      const byTag = inUse.tags.get(`${repository}:${tag}`);
      if (byTag) return `tag ${tag} of ${which} is in use by ${byTag} (listed again before the delete)`;
    }
  }
  return undefined;
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
  /** What workloads use, listed again after the plan and shared by every repository (protect.inUse). */
  inUse: FreshView<InUse> | undefined;
  clock: Clock;
  perRepository: number;
  retry: RetryPolicy;
  random: () => number;
}

/** What the deletions of one repository share. */
interface RepositoryRun {
  repository: string;
  view: TagView;
  units: Map<string, Deletion[]>;
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
  const units = deletionUnits(deletions);
  const run: RepositoryRun = { repository, view, units, knownTags, client, options };
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
 * Why a deletion may not go ahead now, from fresh views (skipped), or a failure to get them
 * (failed); undefined when it may. The in-use listing first, the tags last: the tags' view is the
 * tighter bound, so it is taken closest to the delete.
 */
async function checkNow(run: RepositoryRun, d: Deletion): Promise<Outcome | undefined> {
  const { repository, view, options } = run;
  if (options.inUse) {
    let inUse: InUse;
    try {
      inUse = await options.inUse.current();
    } catch (err) {
      return {
        status: 'failed',
        reason: `could not list the images in use again: ${(err as Error).message}`,
      };
    }
    const blocker = inUseBlocker(repository, d, run.units.get(d.digest) ?? [d], inUse);
    if (blocker) return { status: 'skipped', reason: blocker };
  }
  let tags: Map<string, string>;
  try {
    tags = await view.current();
  } catch (err) {
    return { status: 'failed', reason: `could not resolve the tags again: ${(err as Error).message}` };
  }
  const blocker = deleteBlocker(d, tags, run.knownTags);
  return blocker ? { status: 'skipped', reason: blocker } : undefined;
}

/**
 * Deletes one manifest: each attempt, after the registry's pause if any, checks the deletion
 * against fresh views (checkNow: skipped when it or its unit is in use, or a tag moved or points to
 * it), then deletes; a failed delete is retried as deleteRetry says. Records the outcome as soon as
 * it is known.
 */
async function deleteOne(run: RepositoryRun, d: Deletion, record: (outcome: Outcome) => void): Promise<void> {
  const { repository, view, client, options } = run;
  for (let attempt = 1; ; attempt++) {
    // Each attempt is checked against fresh views after any pause, never the ones before it.
    await client.ready?.();
    const stop = await checkNow(run, d);
    if (stop) return record(stop);
    try {
      await client.deleteManifest(repository, d.digest);
      record(deletedOutcome);
      view.deletedDigest(d.digest);
      return;
    } catch (err) {
      const retry = deleteRetry(err, attempt, options.retry, options.random());
      if (retry === undefined) return record({ status: 'failed', reason: (err as Error).message });
      if (retry > 0) await sleep(options.clock, retry);
    }
  }
}

/**
 * Runs the deletions: repositories in parallel (at most `concurrency`), in each at most
 * `perRepository` at once, started in plan order.
 */
export async function executeDeletions(
  deletions: Deletion[],
  knownTags: KnownTags,
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
  const clock = options.clock ?? systemClock;
  const settings: Settings = {
    resolveTags: options.resolveTags ?? ((repo) => resolveTagsByHead(repo, client)),
    refreshMs: options.refreshMs ?? 2_000,
    inUse: options.inUse ? new FreshView(options.inUse, options.inUseRefreshMs ?? 10_000, clock) : undefined,
    clock,
    perRepository: options.perRepository ?? 8,
    retry: { attempts: 5, baseMs: 200, maxMs: 60_000, ...options.retry },
    random: options.random ?? Math.random,
  };
  await mapLimit([...byRepo], options.concurrency ?? 4, ([repo, list]) =>
    executeRepository(
      repo,
      list,
      typeof knownTags === 'function' ? knownTags(repo) : (knownTags.get(repo) ?? new Set()),
      client,
      outcomes,
      settings,
    ),
  );
  return { outcomes };
}
