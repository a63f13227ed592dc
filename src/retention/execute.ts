// Executes a plan's deletions against the registry, safely:
// - in plan order per repository (an index before its children, a subject before its signatures),
//   and a deletion whose index or subject was not deleted is skipped;
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
// run, and a small one every `refreshMs`). A tag moved onto a doomed digest within that window can
// still be lost: the registry offers no conditional delete, so some window always remains.
import { mapLimit } from '../util/limit.ts';
import type { Deletion } from './model.ts';
import type { RegistryClient } from './registry-client.ts';

export type Outcome =
  { status: 'deleted' } | { status: 'skipped'; reason: string } | { status: 'failed'; reason: string };

export interface ExecutionResult {
  /** `<repository>@<digest>` → outcome */
  outcomes: Map<string, Outcome>;
}

export interface ExecuteOptions {
  /** Repositories in parallel (default 4). */
  concurrency?: number;
  /** Longest time a repository's resolved tags are trusted before a delete (default 2 s). */
  refreshMs?: number;
  clock?: () => number;
}

export const deletionKey = (repository: string, digest: string) => `${repository}@${digest}`;

type TagClient = Pick<RegistryClient, 'tags' | 'head' | 'deleteManifest'>;

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

/** Every tag of the repository and the digest it points to now. */
async function resolveTags(repository: string, client: TagClient): Promise<Map<string, string>> {
  const tags = await client.tags(repository);
  const heads = await Promise.all(
    tags.map(async (tag) => [tag, await client.head(repository, tag)] as const),
  );
  const out = new Map<string, string>();
  for (const [tag, head] of heads) if (head) out.set(tag, head.digest);
  return out;
}

async function executeRepository(
  repository: string,
  deletions: Deletion[],
  knownTags: ReadonlySet<string>,
  client: TagClient,
  outcomes: Map<string, Outcome>,
  refreshMs: number,
  clock: () => number,
): Promise<void> {
  let view: { tags: Map<string, string>; at: number; took: number } | undefined;
  const current = async (): Promise<Map<string, string>> => {
    if (view && viewIsFresh(clock() - view.at, view.took, refreshMs)) return view.tags;
    const start = clock();
    const tags = await resolveTags(repository, client);
    const at = clock();
    view = { tags, at, took: at - start };
    return tags;
  };
  for (const d of deletions) {
    const key = deletionKey(repository, d.digest);
    const blocked = d.after.find((a) => outcomes.get(deletionKey(repository, a))?.status !== 'deleted');
    if (blocked) {
      outcomes.set(key, { status: 'skipped', reason: `${blocked}, which it belongs to, was not deleted` });
      continue;
    }
    let tags: Map<string, string>;
    try {
      tags = await current();
    } catch (err) {
      outcomes.set(key, {
        status: 'failed',
        reason: `could not resolve the tags again: ${(err as Error).message}`,
      });
      continue;
    }
    const blocker = deleteBlocker(d, tags, knownTags);
    if (blocker) {
      outcomes.set(key, { status: 'skipped', reason: blocker });
      continue;
    }
    try {
      await client.deleteManifest(repository, d.digest);
      outcomes.set(key, { status: 'deleted' });
      // Its tags went with it.
      for (const [tag, digest] of [...tags]) if (digest === d.digest) tags.delete(tag);
    } catch (err) {
      outcomes.set(key, { status: 'failed', reason: (err as Error).message });
    }
  }
}

/** Runs the deletions, repositories in parallel (at most `concurrency`), each in plan order. */
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
  const refreshMs = options.refreshMs ?? 2_000;
  const clock = options.clock ?? Date.now;
  await mapLimit([...byRepo], options.concurrency ?? 4, ([repo, list]) =>
    executeRepository(repo, list, knownTags.get(repo) ?? new Set(), client, outcomes, refreshMs, clock),
  );
  return { outcomes };
}
