// Which resource a piece of the runtime talks to, and the API paths for it.
import type * as k8s from '@kubernetes/client-node';
import type { KubeObject } from './client.ts';

/** A resource; `T` is the type of its objects, carried by the type only (informers and caches return T). */
export interface ResourceType<T extends KubeObject = KubeObject> {
  /** API group; '' for the core group. */
  group: string;
  version: string;
  /** Lower-case plural, as in the URL (`secrets`, `registries`). */
  plural: string;
  kind: string;
  /** False for cluster-scoped resources (default true). */
  namespaced?: boolean;
  /** Never set: it only carries T. */
  readonly object?: T;
}

/** A ResourceType whose objects are `T`. */
export function resourceType<T extends KubeObject>(type: Omit<ResourceType, 'object'>): ResourceType<T> {
  return type;
}

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

export function resourceName(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

/** The collection path: /api/v1/namespaces/ns/secrets, or all namespaces without `namespace`. */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const namespaced = type.namespaced ?? true;
  return namespaced && namespace
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${type.plural}`
    : `${base}/${type.plural}`;
}

export function objectPath(
  type: ResourceType,
  name: string,
  namespace?: string,
  subresource?: string,
): string {
  const path = `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${path}/${subresource}` : path;
}

/** A work-queue key: "namespace/name", or "name" for cluster-scoped objects. */
export function keyOf(obj: { metadata?: { name?: string; namespace?: string } }): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export const core = {
  secrets: resourceType<k8s.V1Secret>({ group: '', version: 'v1', plural: 'secrets', kind: 'Secret' }),
  configMaps: resourceType<k8s.V1ConfigMap>({
    group: '',
    version: 'v1',
    plural: 'configmaps',
    kind: 'ConfigMap',
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
  services: resourceType<k8s.V1Service>({ group: '', version: 'v1', plural: 'services', kind: 'Service' }),
  pods: resourceType<k8s.V1Pod>({ group: '', version: 'v1', plural: 'pods', kind: 'Pod' }),
  leases: resourceType({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease' }),
  events: resourceType({ group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event' }),
};
