// Pure: the credential store of a Registry, assembled from what berth has handed out: the admin
// credential, every namespace's pull secret (pull on the paths the namespace may pull), every
// Repository's push secret (push and pull on its path), and the grants of the ServiceAccounts that
// Repositories name (no secret: the token service validates their tokens, docs/identity.md). Only hashes go in. Every entry is checked
// with the token service's own reader before it goes in, so nothing found in a user's namespace
// (a long name, an edited annotation) can make the token service refuse an entry, let alone the
// store; usernames are derived to fit (src/credentials/usernames.ts).
//
// Labels are no boundary inside a namespace: whoever may create Secrets there can label one as
// berth's. So a credential counts only where berth would have issued it: a pull Secret only in a
// namespace the Registry's `pullSecrets` selects now, under `pullSecrets.secretName` (one per
// namespace); a push Secret only under the `push.secretName` of the Repository that owns the path
// (one per Repository). Forged Secrets under other names, or in namespaces not selected, add
// nothing: no credential, and no growth of the store.
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import { hashSecret } from '../credentials/secret.ts';
import { parseCredentialEntry, type CredentialEntry, type CredentialStore } from '../credentials/store.ts';
import { credentialHashes, labels, readCredentialState, repositoryLabelValue } from './credential-secret.ts';
import { pullablePaths, serviceAccountGrants } from './grants.ts';
import { matchesSelector } from './selector.ts';
import { pullUsername, pushUsername } from '../credentials/usernames.ts';
import { repositoryPath } from './claims.ts';

export { pullUsername, pushUsername } from '../credentials/usernames.ts';

export interface StoreInput {
  registry: Registry;
  adminPassword: string;
  /** berth's pull secrets for this Registry, one per namespace. */
  pullSecrets: k8s.V1Secret[];
  /** berth's push secrets for this Registry. */
  pushSecrets: k8s.V1Secret[];
  /** The Repositories that own their path in this Registry (claims resolved). */
  owners: Repository[];
  namespaceLabels: (namespace: string) => Record<string, string>;
  now: Date;
  /** Hashes already read from a Secret object (the caller keeps it between calls; optional). */
  hashCache?: CredentialHashCache;
}

/**
 * What a credential Secret holds, by object: an informer cache hands out the same object until
 * the Secret changes, so at 10,000 namespaces a reconcile decodes and hashes only what changed.
 * Objects are never mutated in place (the cache's contract), so identity is enough.
 */
export type CredentialHashCache = WeakMap<
  k8s.V1Secret,
  { username: string; hashes: ReturnType<typeof credentialHashes> }
>;

export function buildCredentialStore(input: StoreInput): CredentialStore {
  const credentials: CredentialEntry[] = [
    {
      username: 'admin',
      secretHash: hashSecret(input.adminPassword),
      grants: [{ repositories: ['**'], actions: ['*'] }],
      catalog: true,
      description: 'the Registry admin credential (status.adminSecret)',
    },
  ];
  const entries = (
    username: string,
    secret: k8s.V1Secret,
    grants: CredentialEntry['grants'],
    description: string,
  ) => {
    for (const h of hashesOf(secret, username, input.hashCache)) {
      if (h.notAfter && Date.parse(h.notAfter) <= input.now.getTime()) continue; // revoked
      const entry: CredentialEntry = {
        username,
        secretHash: h.hash,
        grants,
        ...(h.notAfter ? { notAfter: h.notAfter } : {}),
        description,
      };
      // e.g. a previous-credential annotation edited into something that is not a hash
      if (parseCredentialEntry(entry, username).success) credentials.push(entry);
    }
  };
  const candidates = pullCandidates(input.owners);
  for (const secret of sortByKey(input.pullSecrets)) {
    const ns = secret.metadata?.namespace ?? '';
    if (!issuesPullSecret(input.registry, ns, secret.metadata?.name, input.namespaceLabels(ns))) continue;
    const paths = pullablePaths(ns, input.namespaceLabels(ns), candidates(ns));
    entries(
      pullUsername(ns),
      secret,
      paths.length ? [{ repositories: paths, actions: ['pull'] }] : [],
      `pull secret of namespace ${ns}`,
    );
  }
  // A push Secret names its Repository by label (a shortened name past 63 characters).
  const byKey = new Map(
    input.owners.map((r) => [`${r.metadata?.namespace}/${repositoryLabelValue(r.metadata?.name ?? '')}`, r]),
  );
  for (const secret of sortByKey(input.pushSecrets)) {
    const ns = secret.metadata?.namespace ?? '';
    const label = secret.metadata?.labels?.[labels.repository] ?? '';
    const owner = byKey.get(`${ns}/${label}`);
    if (!owner || owner.spec.push?.secretName !== secret.metadata?.name) continue;
    const repoName = owner.metadata?.name ?? '';
    const grants: CredentialEntry['grants'] = [
      { repositories: [repositoryPath(owner)], actions: ['pull', 'push'] },
    ];
    entries(pushUsername(ns, repoName), secret, grants, `push secret of Repository ${ns}/${repoName}`);
  }
  return withServiceAccounts(input, credentials);
}

/** The store of `credentials`, with the ServiceAccounts' grants when Repositories name any. */
function withServiceAccounts(input: StoreInput, credentials: CredentialEntry[]): CredentialStore {
  const store: CredentialStore = {
    version: 1,
    anonymousPull: input.registry.spec.auth?.anonymousPull ?? false,
    credentials,
  };
  const serviceAccounts = serviceAccountGrants(input.registry, input.owners);
  if (serviceAccounts.length > 0) store.serviceAccounts = serviceAccounts;
  return store;
}

function hashesOf(
  secret: k8s.V1Secret,
  username: string,
  cache: CredentialHashCache | undefined,
): ReturnType<typeof credentialHashes> {
  const cached = cache?.get(secret);
  if (cached?.username === username) return cached.hashes;
  const hashes = credentialHashes(readCredentialState(secret, username));
  cache?.set(secret, { username, hashes });
  return hashes;
}

/** Whether berth issues the pull Secret `name` in `namespace` for this Registry now. */
function issuesPullSecret(
  registry: Registry,
  namespace: string,
  name: string | undefined,
  namespaceLabels: Record<string, string>,
): boolean {
  const spec = registry.spec.pullSecrets;
  if (!spec || name !== spec.secretName || (spec.excludeNamespaces ?? []).includes(namespace)) return false;
  try {
    return matchesSelector(spec.namespaceSelector, namespaceLabels);
  } catch {
    return false; // an invalid selector selects nothing (the pull-secret controller reports it)
  }
}

/**
 * The Repositories that may grant a namespace pull access: those in it, those that name it, and
 * those with a namespace selector (which only pullablePaths can decide). Indexed once, so a store
 * of n namespaces and n Repositories is assembled in O(n · selecting Repositories), not O(n²).
 */
function pullCandidates(owners: Repository[]): (namespace: string) => Repository[] {
  const named = new Map<string, Repository[]>();
  const add = (ns: string, repo: Repository) => {
    const list = named.get(ns);
    if (list) {
      if (list[list.length - 1] !== repo) list.push(repo); // a namespace named twice, or its own
    } else named.set(ns, [repo]);
  };
  const selecting: Repository[] = [];
  for (const repo of owners) {
    add(repo.metadata?.namespace ?? '', repo);
    for (const ns of repo.spec.pull?.namespaces ?? []) add(ns, repo);
    if (repo.spec.pull?.namespaceSelector !== undefined) selecting.push(repo);
  }
  return (ns) => {
    const list = named.get(ns) ?? [];
    if (selecting.length === 0) return list;
    const seen = new Set(list);
    return [...list, ...selecting.filter((r) => !seen.has(r))];
  };
}

/** By namespace, then name; code-point order (stable whatever the locale, and fast). */
function sortByKey(secrets: k8s.V1Secret[]): k8s.V1Secret[] {
  const keyed = secrets.map((s) => ({ s, key: `${s.metadata?.namespace}/${s.metadata?.name}` }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.s);
}
