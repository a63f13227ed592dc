// What a Repository's Ready condition says, decided from what the reconciler read: whether its
// path may be claimed at all, and whether a Secret of its push secret's name is berth's. Pure.
import type * as k8s from '@kubernetes/client-node';
import type { Repository } from '../api/index.ts';
import {
  isOwnCredential,
  labels,
  repositoryLabelValue,
  type RegistryKey,
} from '../model/credential-secret.ts';

/** The Ready condition of a Repository, as a reconcile decides it. */
export interface Outcome {
  ready: boolean;
  reason: string;
  message: string;
}

/**
 * A claim refused: why, whether the Repository's push Secrets go (they grant nothing any more),
 * and whether it waits for something outside the Repository (its Registry) rather than for the
 * user to change it.
 */
export interface Refusal extends Outcome {
  ready: false;
  dropPushSecrets: boolean;
  waiting?: true;
}

/** What the claim decision reads; `holder` (the older Repository holding the path) is only asked last. */
export interface ClaimFacts {
  namespace: string;
  path: string;
  registryKey: string;
  inNamespace: boolean;
  validPath: boolean;
  registryFound: boolean;
  holder: () => Repository | undefined;
  keyOf: (repo: Repository) => string;
}

/**
 * Why the Repository cannot claim its path, checked in this order: a path outside its namespace,
 * a path that is not a repository name, a Registry that does not exist, an older Repository
 * holding the path; undefined when the claim is its own. Pure.
 */
export function refuseClaim(f: ClaimFacts): Refusal | undefined {
  const { path } = f;
  if (!f.inNamespace)
    return {
      ready: false,
      dropPushSecrets: true,
      reason: 'PathOutsideNamespace',
      message: `spec.path "${path}" must start with "${f.namespace}/": a Repository claims paths under its own namespace only`,
    };
  if (!f.validPath)
    return {
      ready: false,
      dropPushSecrets: true,
      reason: 'InvalidPath',
      message: `the path ${path.length > 80 ? `${path.slice(0, 80)}…` : path} (${path.length} characters) is not a registry repository name (at most 255 characters of lowercase components); set a shorter spec.path`,
    };
  if (!f.registryFound)
    return {
      ready: false,
      dropPushSecrets: false,
      waiting: true,
      reason: 'RegistryNotFound',
      message: `Registry ${f.registryKey} does not exist (spec.registryRef)`,
    };
  const holder = f.holder();
  if (holder)
    return {
      ready: false,
      dropPushSecrets: true,
      reason: 'PathConflict',
      message: `path ${path} in Registry ${f.registryKey} is claimed by the older Repository ${f.keyOf(holder)}`,
    };
  return undefined;
}

/** Whether `secret` is berth's push Secret of Repository `name` for this Registry. Pure. */
export function isOwnPushSecret(secret: k8s.V1Secret, registry: RegistryKey, name: string): boolean {
  return (
    isOwnCredential(secret, 'push', registry) &&
    secret.metadata?.labels?.[labels.repository] === repositoryLabelValue(name)
  );
}
