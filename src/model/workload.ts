// What every pod berth creates shares: the registry's paths inside its image, and the restricted
// Pod Security Standard's security contexts (the registry, the token service and every Job).
import type * as k8s from '@kubernetes/client-node';
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
