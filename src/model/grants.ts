// Pure: which repository paths a namespace's pull credential may pull, and what ServiceAccounts
// may do with their own tokens.
//
// Pull: which repository paths a namespace's pull credential may pull. A Repository in that
// namespace, or one whose `spec.pull` names the namespace or selects it by label. A Repository
// whose path is outside its own namespace grants nothing, whatever it was passed as.
import type { Registry, Repository } from '../api/index.ts';
import { isServiceAccountName, type Grant, type ServiceAccountGrant } from '../credentials/store.ts';
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

/** A ServiceAccount a Repository names, as it names it (namespace empty: the Repository's own). */
interface NamedServiceAccount {
  namespace?: string;
  name: string;
}

/**
 * Pure: what each ServiceAccount that Repositories name may do with its own token (the store's
 * `serviceAccounts`, docs/identity.md). `spec.push.serviceAccounts` gives push and pull on the
 * Repository's path, only to ServiceAccounts of the Repository's own namespace (another namespace
 * is refused at admission; here it is granted nothing); `spec.pull.serviceAccounts` gives pull, to
 * a ServiceAccount of any namespace (as `spec.pull.namespaces` does). A Repository whose path is
 * outside its namespace grants nothing. Sorted by namespace and name; paths sorted.
 */
export function serviceAccountGrants(
  registry: Registry,
  owners: Iterable<Repository>,
): ServiceAccountGrant[] {
  if (registry.spec.auth?.serviceAccountTokens?.enabled === false) return [];
  const push = new Map<string, Set<string>>();
  const pull = new Map<string, Set<string>>();
  const add = (to: Map<string, Set<string>>, key: string, path: string) => {
    const set = to.get(key);
    if (set) set.add(path);
    else to.set(key, new Set([path]));
  };
  for (const repo of owners) {
    if (!pathInNamespace(repo)) continue;
    const own = repo.metadata?.namespace ?? '';
    const path = repositoryPath(repo);
    const key = (sa: NamedServiceAccount) => `${sa.namespace || own}/${sa.name}`;
    for (const sa of repo.spec.push?.serviceAccounts ?? [])
      if (!sa.namespace || sa.namespace === own) add(push, key(sa), path);
    for (const sa of repo.spec.pull?.serviceAccounts ?? []) add(pull, key(sa), path);
  }
  const keys = [...new Set([...push.keys(), ...pull.keys()])].sort();
  return keys.flatMap((key) => {
    const [namespace = '', name = ''] = key.split('/');
    if (!isServiceAccountName(namespace, name)) return [];
    const pushPaths = [...(push.get(key) ?? [])].sort();
    const pullPaths = [...(pull.get(key) ?? [])].filter((p) => !push.get(key)?.has(p)).sort();
    const grants: Grant[] = [];
    if (pushPaths.length) grants.push({ repositories: pushPaths, actions: ['pull', 'push'] });
    if (pullPaths.length) grants.push({ repositories: pullPaths, actions: ['pull'] });
    return [{ namespace, name, grants }];
  });
}

/** The audience a Registry's ServiceAccount tokens must carry when the Registry sets none. */
export function defaultServiceAccountAudience(registry: { namespace: string; name: string }): string {
  return `berth.dev/${registry.namespace}/${registry.name}`;
}
