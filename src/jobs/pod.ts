// The parts every Job of a Registry (garbage collection's and retention's) is built from, pure:
// the Job owned by its Registry, where its pod runs (as the Registry asks of its own pods), the
// S3 credentials from the Registry's Secret, and the admin credential and CA bundle a pod needs to
// speak to the registry as a client.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { names, type RegistryRef } from '../model/names.ts';
import { ownerReference } from '../model/registry.ts';
import { registryPlacement } from '../model/workload.ts';

/**
 * Where a Job's pod runs: the Registry's tolerations and priority class, and either beside the
 * registry pod (`nodeName`: a node affinity on the node's name, as DaemonSets do, so the scheduler
 * still checks resources; the registry pod's node already satisfied the nodeSelector) or on the
 * nodes of the Registry's nodeSelector.
 */
export function podPlacement(registry: Registry, nodeName?: string): Partial<k8s.V1PodSpec> {
  const { nodeSelector, ...rest } = registryPlacement(registry);
  if (!nodeName) return { ...rest, ...(nodeSelector ? { nodeSelector } : {}) };
  return {
    ...rest,
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchFields: [{ key: 'metadata.name', operator: 'In', values: [nodeName] }] },
          ],
        },
      },
    },
  };
}

/**
 * The Registry's S3 credentials (keys accessKeyID and secretAccessKey of spec.storage.s3.secretRef)
 * as environment variables of the names the container reads; none without S3 storage.
 */
export function s3CredentialEnv(
  registry: Registry,
  vars: { accessKey: string; secretKey: string },
): k8s.V1EnvVar[] {
  const s3 = registry.spec.storage.s3;
  if (!s3) return [];
  const from = (key: string) => ({ secretKeyRef: { name: s3.secretRef.name, key } });
  return [
    { name: vars.accessKey, valueFrom: from('accessKeyID') },
    { name: vars.secretKey, valueFrom: from('secretAccessKey') },
  ];
}

export interface PodParts {
  volumes: k8s.V1Volume[];
  mounts: k8s.V1VolumeMount[];
  args: string[];
}

/** The admin credential, mounted read-only as a Docker config file, and the flag that reads it. */
export function adminCredential(ref: RegistryRef): PodParts {
  return {
    volumes: [
      {
        name: 'admin',
        secret: {
          secretName: names.adminSecret(ref),
          items: [{ key: '.dockerconfigjson', path: 'config.json' }],
        },
      },
    ],
    mounts: [{ name: 'admin', mountPath: '/etc/berth/admin', readOnly: true }],
    args: ['--docker-config=/etc/berth/admin/config.json'],
  };
}

/** The CA bundle to trust, mounted read-only, and the flag that reads it; nothing without TLS. */
export function caBundle(registry: Registry, ref: RegistryRef): PodParts {
  if (registry.spec.tls?.mode === 'Disabled') return { volumes: [], mounts: [], args: [] };
  return {
    volumes: [{ name: 'ca', configMap: { name: names.caConfigMap(ref) } }],
    mounts: [{ name: 'ca', mountPath: '/etc/berth/ca', readOnly: true }],
    args: ['--ca-file=/etc/berth/ca/ca.crt'],
  };
}

export interface RegistryJobInput {
  registry: Registry;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** The Job's spec but its template. */
  spec: Omit<k8s.V1JobSpec, 'template'>;
  pod: k8s.V1PodSpec;
}

/** A Job in the Registry's namespace, owned by the Registry (it goes when the Registry goes). */
export function registryJob(input: RegistryJobInput): k8s.V1Job {
  const { registry, labels } = input;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels,
      ...(input.annotations ? { annotations: input.annotations } : {}),
      ownerReferences: [ownerReference(registry)],
    },
    spec: { ...input.spec, template: { metadata: { labels }, spec: input.pod } },
  };
}
