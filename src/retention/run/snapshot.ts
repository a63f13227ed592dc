// Gathers what the planner needs from the registry: for each repository in scope, its tags (the
// API's tag list), each tag's digest and push time (its link in the registry's storage), every
// stored manifest (revision links) and what each manifest points to (GET with every media type).
import { mapLimit } from '../../util/limit.ts';
import type { ManifestState, RepositoryState, TagState } from './model.ts';
import type { RegistryClient } from '../../distribution/client.ts';
import { StorageError, type PushTimeSource } from './storage.ts';

export async function snapshotRepository(
  repository: string,
  client: RegistryClient,
  storage: PushTimeSource,
): Promise<RepositoryState> {
  const [tagNames, revisions] = await Promise.all([client.tags(repository), storage.revisions(repository)]);
  const tags: TagState[] = await Promise.all(
    tagNames.map(async (tag) => {
      const link = await storage.tag(repository, tag);
      if (!link)
        throw new StorageError(
          `the registry lists ${repository}:${tag} but the storage root has no link for it: is --storage-root the registry's storage?`,
        );
      return { tag, digest: link.digest, pushedAt: link.pushedAt };
    }),
  );
  const pushedAt = new Map(revisions.map((r) => [r.digest, r.pushedAt]));
  for (const t of tags) if (!pushedAt.has(t.digest)) pushedAt.set(t.digest, t.pushedAt);
  const manifests: ManifestState[] = [];
  await Promise.all(
    [...pushedAt].map(async ([digest, at]) => {
      const m = await client.manifest(repository, digest);
      if (!m) return; // deleted meanwhile
      const state: ManifestState = { digest, mediaType: m.mediaType, children: m.children, pushedAt: at };
      if (m.subject) state.subject = m.subject;
      manifests.push(state);
    }),
  );
  manifests.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  return { name: repository, tags, manifests };
}

/**
 * Reads the repositories' snapshots, `concurrency` at a time, and hands each to `each` as soon as
 * it is read, in the order they complete; nothing here holds on to one after `each` returns, so a
 * run that plans in `each` holds only the snapshots being read.
 */
export async function snapshotEach(
  repositories: string[],
  client: RegistryClient,
  storage: PushTimeSource,
  each: (repository: RepositoryState) => void,
  concurrency = 4,
): Promise<void> {
  await mapLimit(repositories, concurrency, async (r) => each(await snapshotRepository(r, client, storage)));
}

/**
 * Resolves a repository's tags for the checks before each delete: the tag list from the registry
 * API, and each tag's digest from its link in the registry's storage (the file the registry itself
 * reads to resolve the tag), `concurrency` reads at a time. A tag listed but without a link was
 * deleted meanwhile, and is left out.
 */
export function storageTagResolver(
  client: Pick<RegistryClient, 'tags'>,
  storage: PushTimeSource,
  concurrency = 16,
): (repository: string) => Promise<Map<string, string>> {
  return async (repository) => {
    const names = await client.tags(repository);
    const links = await mapLimit(names, concurrency, (tag) => storage.tag(repository, tag));
    const out = new Map<string, string>();
    names.forEach((tag, i) => {
      const link = links[i];
      if (link) out.set(tag, link.digest);
    });
    return out;
  };
}
