// The registry's claim. It is owned by the Registry (and so deleted with it) only with
// `deletionPolicy: Delete`; with `Retain` (the default) it has no owner and outlives the Registry.
import type * as k8s from '@kubernetes/client-node';
import { names, registryLabels } from '../../model/names.ts';
import { type BuildContext } from './context.ts';
import { ownerReference } from '../../model/registry.ts';

export function registryPVC(ctx: BuildContext): k8s.V1PersistentVolumeClaim | undefined {
  const { registry, ref } = ctx;
  const claim = registry.spec.storage.persistentVolumeClaim;
  if (!claim) return undefined;
  const owned = registry.spec.deletionPolicy === 'Delete';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: names.pvc(ref),
      namespace: ref.namespace,
      labels: registryLabels(ref, 'storage'),
      annotations: { 'berth.dev/deletion-policy': owned ? 'Delete' : 'Retain' },
      ...(owned ? { ownerReferences: [ownerReference(registry)] } : {}),
    },
    spec: {
      accessModes: claim.accessModes ?? ['ReadWriteOnce'],
      ...(claim.storageClassName ? { storageClassName: claim.storageClassName } : {}),
      resources: { requests: { storage: claim.size } },
    },
  };
}
