// The resource types berth's controllers read and write, each with the type of its objects (the
// core ones are the runtime's, src/runtime/kube/resource.ts).
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import { core, resourceType } from '../runtime/kube/resource.ts';

export const resources = {
  registries: resourceType<Registry>({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'registries',
    kind: 'Registry',
  }),
  secrets: core.secrets,
  configMaps: core.configMaps,
  services: core.services,
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
  namespaces: core.namespaces,
  serviceAccounts: core.serviceAccounts,
  certificates: resourceType({
    group: 'cert-manager.io',
    version: 'v1',
    plural: 'certificates',
    kind: 'Certificate',
  }),
  clusterRoleBindings: resourceType<k8s.V1ClusterRoleBinding>({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    plural: 'clusterrolebindings',
    kind: 'ClusterRoleBinding',
    namespaced: false,
  }),
  roleBindings: resourceType<k8s.V1RoleBinding>({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    plural: 'rolebindings',
    kind: 'RoleBinding',
  }),
};

export const jobs = resourceType<k8s.V1Job>({ group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job' });
