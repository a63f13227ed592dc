// What every controller derives from a Registry object alone: its reference, the owner reference
// of its children, whether its storage is shared, its Service port and in-cluster endpoint.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { names, type RegistryRef } from './names.ts';
export function refOf(registry: Registry): RegistryRef {
  return { name: registry.metadata?.name ?? '', namespace: registry.metadata?.namespace ?? '' };
}

/** The owner reference that makes an object go when its Registry goes. */
export function ownerReference(registry: Registry): k8s.V1OwnerReference {
  return {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    name: registry.metadata?.name ?? '',
    uid: registry.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Shared storage lets several replicas write: s3, or a ReadWriteMany claim. */
export function hasSharedStorage(registry: Registry): boolean {
  const storage = registry.spec.storage;
  if (storage.s3) return true;
  return storage.persistentVolumeClaim?.accessModes?.includes('ReadWriteMany') ?? false;
}

export function servicePort(registry: Registry): number {
  return registry.spec.expose?.service?.port ?? 443;
}

/** What pods and pull secrets use: `<service>.<namespace>.svc:<port>`. */
export function endpoint(ref: RegistryRef, registry: Registry): string {
  return `${names.service(ref)}.${ref.namespace}.svc:${servicePort(registry)}`;
}
