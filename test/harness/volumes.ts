// Storage for claims on the real node: a default StorageClass with no provisioner and a pool of
// pre-made local PersistentVolumes, each a folder of the node's. kube-controller-manager's volume
// binder matches claims to them (size, access modes), as it does for any static volume, and the
// scheduler puts the pod on the volume's node. The folders belong to uid/gid 65532, the user
// berth's pods run as (a hostPath or local volume gets no fsGroup ownership change).
import { chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';

export const localStorageClass = 'berth-local';

export interface LocalVolumeOptions {
  /** Folder that holds the volumes' folders (visible to the node at the same path). */
  dir: string;
  nodeName: string;
  count: number;
  /** Capacity of each volume, e.g. "50Gi" (claims of up to this size bind). */
  size?: string;
}

export async function createLocalVolumes(kc: k8s.KubeConfig, options: LocalVolumeOptions): Promise<string[]> {
  const storage = kc.makeApiClient(k8s.StorageV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await storage.createStorageClass({
      body: {
        metadata: {
          name: localStorageClass,
          annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
        },
        provisioner: 'kubernetes.io/no-provisioner',
        volumeBindingMode: 'Immediate',
        reclaimPolicy: 'Retain',
      },
    });
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
  }
  const names: string[] = [];
  for (let i = 0; i < options.count; i++) {
    const name = `${localStorageClass}-${options.nodeName}-${i}`;
    const folder = path.join(options.dir, name);
    mkdirSync(folder, { recursive: true });
    chownSync(folder, 65532, 65532);
    await core.createPersistentVolume({
      body: {
        metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'berth-test-ground' } },
        spec: {
          capacity: { storage: options.size ?? '50Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: localStorageClass,
          local: { path: folder },
          nodeAffinity: {
            required: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'kubernetes.io/hostname', operator: 'In', values: [options.nodeName] },
                  ],
                },
              ],
            },
          },
        },
      },
    });
    names.push(name);
  }
  return names;
}
