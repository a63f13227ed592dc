// The resource types the Registry controller reads and writes, each with the type of its objects.
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import { resourceType } from '../runtime/kube/resource.ts';

export const resources = {
  registries: resourceType<Registry>({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'registries',
    kind: 'Registry',
  }),
  secrets: resourceType<k8s.V1Secret>({ group: '', version: 'v1', plural: 'secrets', kind: 'Secret' }),
  configMaps: resourceType<k8s.V1ConfigMap>({
    group: '',
    version: 'v1',
    plural: 'configmaps',
    kind: 'ConfigMap',
  }),
  services: resourceType<k8s.V1Service>({ group: '', version: 'v1', plural: 'services', kind: 'Service' }),
  pvcs: resourceType<k8s.V1PersistentVolumeClaim>({
    group: '',
    version: 'v1',
    plural: 'persistentvolumeclaims',
    kind: 'PersistentVolumeClaim',
  }),
  deployments: resourceType<k8s.V1Deployment>({
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    kind: 'Deployment',
  }),
  // untyped: the JSON's ingress[].from is `_from` in k8s.V1NetworkPolicy
  networkPolicies: resourceType({
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
  }),
  ingresses: resourceType<k8s.V1Ingress>({
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingresses',
    kind: 'Ingress',
  }),
  pdbs: resourceType<k8s.V1PodDisruptionBudget>({
    group: 'policy',
    version: 'v1',
    plural: 'poddisruptionbudgets',
    kind: 'PodDisruptionBudget',
  }),
  crds: resourceType<k8s.V1CustomResourceDefinition>({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
  }),
  repositories: resourceType<Repository>({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'repositories',
    kind: 'Repository',
  }),
  namespaces: resourceType<k8s.V1Namespace>({
    group: '',
    version: 'v1',
    plural: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
  }),
  serviceAccounts: resourceType<k8s.V1ServiceAccount>({
    group: '',
    version: 'v1',
    plural: 'serviceaccounts',
    kind: 'ServiceAccount',
  }),
  certificates: resourceType({
    group: 'cert-manager.io',
    version: 'v1',
    plural: 'certificates',
    kind: 'Certificate',
  }),
};

export const jobs = resourceType<k8s.V1Job>({ group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job' });
