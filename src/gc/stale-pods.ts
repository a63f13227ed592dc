// Which registry pods may still serve with another configuration than the one in the config
// Secret. The Deployment's rollout counts leave out terminating pods, but a terminating pod keeps
// serving (and, with the writable configuration, accepting pushes) until it is gone: during a
// RollingUpdate on shared storage that would let a push land while the garbage collection runs.
import type * as k8s from '@kubernetes/client-node';

export const configChecksumAnnotation = 'berth.dev/config-checksum';

/** Pods (terminating ones included) not running `checksum`, except pods that have finished. Pure. */
export function stalePods(pods: k8s.V1Pod[], checksum: string): string[] {
  return pods
    .filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
    .filter((p) => p.metadata?.annotations?.[configChecksumAnnotation] !== checksum)
    .map((p) => `${p.metadata?.name ?? ''}${p.metadata?.deletionTimestamp ? ' (terminating)' : ''}`)
    .sort();
}
