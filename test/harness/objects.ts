// Objects many suites need: a statically provisioned volume bound to a Registry's claim, and a
// Registry object.
import * as k8s from '@kubernetes/client-node';
import { undoAfterFile } from './kube.ts';

/** A claim spec of the class `manual`, which volumes from createBoundVolume serve. */
export const manualClaim = (size = '1Gi') => ({
  persistentVolumeClaim: { size, storageClassName: 'manual', accessModes: ['ReadWriteOnce'] },
});

/**
 * A hostPath PersistentVolume reserved for the claim `<claim>` in `namespace` (the test ground has
 * no provisioner). Returns a function that deletes it; it is deleted after the test file anyway.
 */
export async function createBoundVolume(
  kc: k8s.KubeConfig,
  namespace: string,
  claim = 'main-data',
  size = '10Gi',
): Promise<() => Promise<void>> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `pv-${namespace}-${claim}`;
  await core.createPersistentVolume({
    body: {
      metadata: { name },
      spec: {
        capacity: { storage: size },
        accessModes: ['ReadWriteOnce', 'ReadWriteMany'],
        storageClassName: 'manual',
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: `/tmp/${name}` },
        claimRef: { namespace, name: claim },
      },
    },
  });
  const drop = async () => {
    await core.deletePersistentVolume({ name }).catch(() => undefined);
  };
  undoAfterFile(drop);
  return drop;
}

/** Creates a Registry and returns it as the API server stored it. */
export async function createRegistry<T = Record<string, unknown>>(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<T> {
  return (await kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'registries',
    namespace,
    body: { apiVersion: 'berth.dev/v1alpha1', kind: 'Registry', metadata: { name }, spec },
  })) as T;
}
