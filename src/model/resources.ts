// The resource types the Registry controller reads and writes.
import type { ResourceType } from '../runtime/kube/resource.ts';

export const resources = {
  registries: { group: 'berth.dev', version: 'v1alpha1', plural: 'registries', kind: 'Registry' },
  secrets: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
  services: { group: '', version: 'v1', plural: 'services', kind: 'Service' },
  pvcs: { group: '', version: 'v1', plural: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim' },
  deployments: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  networkPolicies: {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
  },
  ingresses: { group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', kind: 'Ingress' },
  pdbs: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget' },
  crds: {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
  },
  repositories: { group: 'berth.dev', version: 'v1alpha1', plural: 'repositories', kind: 'Repository' },
  namespaces: { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  serviceAccounts: { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount' },
  certificates: { group: 'cert-manager.io', version: 'v1', plural: 'certificates', kind: 'Certificate' },
} as const satisfies Record<string, ResourceType>;

export const jobs: ResourceType = { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job' };
