// Pure: which repository paths a namespace's pull credential may pull. A Repository in that
// namespace, or one whose `spec.pull` names the namespace or selects it by label. A Repository
// whose path is outside its own namespace grants nothing, whatever it was passed as.
import type { Repository } from '../api/index.ts';
import { pathInNamespace, repositoryPath } from './claims.ts';
import { matchesSelector } from './selector.ts';

export function pullablePaths(
  namespace: string,
  labels: Record<string, string>,
  owners: Iterable<Repository>,
): string[] {
  const paths: string[] = [];
  for (const repo of owners) {
    if (!pathInNamespace(repo)) continue;
    const pull = repo.spec.pull;
    const granted =
      repo.metadata?.namespace === namespace ||
      (pull?.namespaces ?? []).includes(namespace) ||
      (pull?.namespaceSelector !== undefined && matchesSelector(pull.namespaceSelector, labels));
    if (granted) paths.push(repositoryPath(repo));
  }
  return paths.sort();
}
