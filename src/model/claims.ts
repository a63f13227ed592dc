// Pure: which Repository owns a path in a Registry. Two Repository objects claiming the same
// path: the older wins (creation time, then namespace/name for a tie), the other is in conflict.
// A Repository whose path is not under its own namespace claims nothing (the admission policy in
// crds/admission/ refuses it, but that policy may be missing): it is never a winner, so it gets no
// grant and cannot hold a path against the rightful Repository.
import type { Repository } from '../api/index.ts';
import { isRepositoryName } from '../credentials/repository-name.ts';

export function repositoryPath(repo: Repository): string {
  return repo.spec.path ?? `${repo.metadata?.namespace ?? ''}/${repo.metadata?.name ?? ''}`;
}

/** Whether the path is one a registry can hold (a long default `<namespace>/<name>` may not be). */
export function validPath(repo: Repository): boolean {
  return isRepositoryName(repositoryPath(repo));
}

/** Whether the Repository's path lies under `<its namespace>/`, the only paths it may claim. */
export function pathInNamespace(repo: Repository): boolean {
  const ns = repo.metadata?.namespace ?? '';
  return ns !== '' && repositoryPath(repo).startsWith(`${ns}/`);
}

/** The `namespace/name` key of the Registry a Repository refers to. */
export function registryKeyOf(repo: Repository): string {
  return `${repo.spec.registryRef.namespace ?? repo.metadata?.namespace ?? ''}/${repo.spec.registryRef.name}`;
}

export function repositoryKey(repo: Repository): string {
  return `${repo.metadata?.namespace ?? ''}/${repo.metadata?.name ?? ''}`;
}

function olderFirst(a: Repository, b: Repository): number {
  const ta = Date.parse(String(a.metadata?.creationTimestamp ?? '')) || 0;
  const tb = Date.parse(String(b.metadata?.creationTimestamp ?? '')) || 0;
  return ta - tb || repositoryKey(a).localeCompare(repositoryKey(b));
}

export interface Claims {
  /** path → the Repository that owns it */
  winners: Map<string, Repository>;
  /** repository key → the Repository that holds its path */
  conflicts: Map<string, Repository>;
}

/**
 * Resolves the claims of the Repositories of one Registry. Those being deleted, those whose path
 * is outside their namespace (they report PathOutsideNamespace) and those whose path is no valid
 * repository name (InvalidPath) claim nothing.
 */
export function resolveClaims(repositories: Repository[]): Claims {
  const winners = new Map<string, Repository>();
  const conflicts = new Map<string, Repository>();
  const claiming = repositories.filter(
    (r) => !r.metadata?.deletionTimestamp && pathInNamespace(r) && validPath(r),
  );
  for (const repo of claiming.sort(olderFirst)) {
    const path = repositoryPath(repo);
    const holder = winners.get(path);
    if (holder) conflicts.set(repositoryKey(repo), holder);
    else winners.set(path, repo);
  }
  return { winners, conflicts };
}
