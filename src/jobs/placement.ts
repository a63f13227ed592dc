// Where the Jobs that mount the registry's storage may run, and which storage can be collected.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { selectorLabels, type RegistryRef } from '../model/names.ts';
import type { KubeClient } from '../runtime/kube/client.ts';
import { collectionPath, core } from '../runtime/kube/resource.ts';

/** A claim that only one node may mount: a Job that mounts it must run beside the registry pod. */
export function needsSameNode(registry: Registry): boolean {
  const pvc = registry.spec.storage.persistentVolumeClaim;
  if (!pvc) return false;
  const modes = pvc.accessModes ?? ['ReadWriteOnce'];
  return !modes.includes('ReadWriteMany');
}

/** Why this Registry cannot be collected, if it cannot. */
export function unsupported(registry: Registry): string | undefined {
  const storage = registry.spec.storage;
  if (storage.emptyDir) {
    return "spec.storage.emptyDir: the garbage-collect Job cannot reach the registry pod's emptyDir; garbage collection needs a PersistentVolumeClaim or S3";
  }
  const modes = storage.persistentVolumeClaim?.accessModes ?? [];
  if (modes.length === 1 && modes[0] === 'ReadWriteOncePod') {
    return 'spec.storage.persistentVolumeClaim.accessModes: a ReadWriteOncePod claim cannot be mounted by the garbage-collect Job while the registry runs';
  }
  return undefined;
}

/** The node of a running registry pod, from the API server. */
export async function registryNode(client: KubeClient, ref: RegistryRef): Promise<string | undefined> {
  const selector = Object.entries(selectorLabels(ref, 'registry'))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const list = await client.list<k8s.V1Pod>(collectionPath(core.pods, ref.namespace), {
    labelSelector: selector,
  });
  const running = list.items.find(
    (p) => p.status?.phase === 'Running' && p.spec?.nodeName && !p.metadata?.deletionTimestamp,
  );
  return running?.spec?.nodeName;
}
