// Executes a plan's deletions against the registry, safely:
// - in plan order per repository (an index before its children, a subject before its signatures),
//   and a deletion whose index or subject was not deleted is skipped;
// - before each delete every tag the plan saw on the digest is resolved again, and the delete is
//   skipped if one of them moved to another digest;
// - tags pushed since the plan was made are resolved too, and a digest one of them points to is
//   kept;
// - deletes are by digest only.
import { mapLimit } from '../util/limit.ts';
import type { Deletion } from './model.ts';
import type { RegistryClient } from './registry-client.ts';

export type Outcome =
  { status: 'deleted' } | { status: 'skipped'; reason: string } | { status: 'failed'; reason: string };

export interface ExecutionResult {
  /** `<repository>@<digest>` → outcome */
  outcomes: Map<string, Outcome>;
}

export const deletionKey = (repository: string, digest: string) => `${repository}@${digest}`;

async function executeRepository(
  repository: string,
  deletions: Deletion[],
  knownTags: Set<string>,
  client: RegistryClient,
  outcomes: Map<string, Outcome>,
): Promise<void> {
  // Tags pushed since the plan: any that points to a digest to delete keeps it.
  const newTagDigests = new Map<string, string>();
  try {
    const current = await client.tags(repository);
    for (const tag of current.filter((t) => !knownTags.has(t))) {
      const head = await client.head(repository, tag);
      if (head) newTagDigests.set(head.digest, tag);
    }
  } catch (err) {
    for (const d of deletions)
      outcomes.set(deletionKey(repository, d.digest), {
        status: 'failed',
        reason: `could not list the tags again: ${(err as Error).message}`,
      });
    return;
  }
  for (const d of deletions) {
    const key = deletionKey(repository, d.digest);
    const blocked = d.after.find((a) => outcomes.get(deletionKey(repository, a))?.status !== 'deleted');
    if (blocked) {
      outcomes.set(key, { status: 'skipped', reason: `${blocked}, which it belongs to, was not deleted` });
      continue;
    }
    const newTag = newTagDigests.get(d.digest);
    if (newTag) {
      outcomes.set(key, { status: 'skipped', reason: `tag ${newTag} was pushed to it after the plan` });
      continue;
    }
    try {
      let moved: string | undefined;
      for (const tag of d.tags) {
        const head = await client.head(repository, tag);
        if (head && head.digest !== d.digest) {
          moved = `tag ${tag} moved to ${head.digest}`;
          break;
        }
      }
      if (moved) {
        outcomes.set(key, { status: 'skipped', reason: moved });
        continue;
      }
      await client.deleteManifest(repository, d.digest);
      outcomes.set(key, { status: 'deleted' });
    } catch (err) {
      outcomes.set(key, { status: 'failed', reason: (err as Error).message });
    }
  }
}

/** Runs the deletions, repositories in parallel (at most `concurrency`), each in plan order. */
export async function executeDeletions(
  deletions: Deletion[],
  knownTags: Map<string, Set<string>>,
  client: RegistryClient,
  concurrency = 4,
): Promise<ExecutionResult> {
  const byRepo = new Map<string, Deletion[]>();
  for (const d of deletions) {
    const list = byRepo.get(d.repository) ?? [];
    list.push(d);
    byRepo.set(d.repository, list);
  }
  const outcomes = new Map<string, Outcome>();
  await mapLimit([...byRepo], concurrency, ([repo, list]) =>
    executeRepository(repo, list, knownTags.get(repo) ?? new Set(), client, outcomes),
  );
  return { outcomes };
}
