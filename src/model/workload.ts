// What every pod berth creates shares: the registry's paths inside its image, the restricted
// Pod Security Standard's security contexts (the registry, the token service and every Job), and
// where a Registry's pods may run.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';

export const registryPaths = {
  configDir: '/etc/distribution',
  tlsDir: '/etc/distribution/tls',
  tokenDir: '/etc/distribution/token',
  storage: '/var/lib/registry',
} as const;

export const restrictedPodSecurity: k8s.V1PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
};

export const restrictedContainerSecurity: k8s.V1SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};

/** Where a Registry's pods may run: its nodeSelector, tolerations and priority class (and, for
 * the registry pods only, its affinity). */
export function registryPlacement(
  registry: Registry,
  options: { affinity?: boolean } = {},
): Pick<k8s.V1PodSpec, 'nodeSelector' | 'tolerations' | 'affinity' | 'priorityClassName'> {
  const spec = registry.spec;
  return {
    ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
    ...(spec.tolerations ? { tolerations: spec.tolerations as k8s.V1Toleration[] } : {}),
    ...(options.affinity && spec.affinity ? { affinity: spec.affinity as k8s.V1Affinity } : {}),
    ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
  };
}

/** The start of a Registry's long-running pod spec: no API token, no service links, restricted. */
export const restrictedPodHeader = {
  automountServiceAccountToken: false,
  enableServiceLinks: false,
  securityContext: restrictedPodSecurity,
} as const satisfies Partial<k8s.V1PodSpec>;
