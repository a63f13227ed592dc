// The two Jobs of a garbage collection, built by pure functions:
// - collect: the registry image itself runs `registry garbage-collect` with the registry's own
//   configuration Secret and storage (the claim, or the S3 settings and credentials), on the node of
//   the registry pod when the claim is ReadWriteOnce. It measures the storage's disk usage before and
//   after and writes `{"blobsDeleted":N,"bytesFreed":N}` as its termination message, which the
//   controller reads from the Job's pod. It needs no Kubernetes API access (no token mounted).
// - verify: berth's image runs `berth gc-run verify` against the registry's Service with the admin
//   credential and the CA bundle: every tag of every repository must resolve and its blobs exist.
// - probe: the same, running `berth gc-run probe`: before collecting, a push must be refused.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { restrictedContainerSecurity, restrictedPodSecurity, registryPaths } from '../model/workload.ts';
import { names, registryLabels, type RegistryRef } from '../model/names.ts';
import { registryURL } from '../model/hosts.ts';
import { adminCredential, caBundle, podPlacement, registryJob, s3CredentialEnv } from '../jobs/pod.ts';

export const gcLabels = {
  step: 'berth.dev/gc-step',
} as const;

export interface JobPlacement {
  /** Run on this node (the registry pod's, for a ReadWriteOnce claim). */
  nodeName?: string;
}

/** The shell script of the collect Job; parameters let the real-registry test run it as is. */
export function collectScript(opts: {
  registryBinary: string;
  configPath: string;
  /** The storage folder to measure; absent for S3 (no disk figures). */
  storageRoot?: string;
  deleteUntagged: boolean;
  terminationLog: string;
}): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const usage = opts.storageRoot ? `du -sk ${q(opts.storageRoot)} | cut -f1` : 'echo 0';
  return [
    'set -u',
    `before=$(${usage})`,
    `${q(opts.registryBinary)} garbage-collect${opts.deleteUntagged ? ' --delete-untagged' : ''} ${q(opts.configPath)} > /tmp/gc.log 2>&1`,
    'rc=$?',
    'tail -n 50 /tmp/gc.log',
    `after=$(${usage})`,
    `blobs=$(grep -c 'blob eligible for deletion' /tmp/gc.log)`,
    'if [ "$rc" -ne 0 ]; then',
    `  tail -n 20 /tmp/gc.log > ${q(opts.terminationLog)}`,
    '  exit "$rc"',
    'fi',
    opts.storageRoot
      ? `printf '{"blobsDeleted":%d,"bytesFreed":%d}\\n' "$blobs" "$(( (before - after) * 1024 ))" > ${q(opts.terminationLog)}`
      : `printf '{"blobsDeleted":%d}\\n' "$blobs" > ${q(opts.terminationLog)}`,
    `cat ${q(opts.terminationLog)}`,
  ].join('\n');
}

function baseJob(
  registry: Registry,
  ref: RegistryRef,
  name: string,
  step: 'collect' | 'verify' | 'probe',
  podSpec: k8s.V1PodSpec,
): k8s.V1Job {
  return registryJob({
    registry,
    name,
    namespace: ref.namespace,
    labels: { ...registryLabels(ref, 'garbage-collection'), [gcLabels.step]: step },
    spec: {
      backoffLimit: 0, // a failed collection is reported, and retried only on demand
      ttlSecondsAfterFinished: 7 * 24 * 3600,
    },
    pod: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...podSpec,
    },
  });
}

/** The collect Job's volumes and mounts: the configuration Secret, /tmp, and the claim if any. */
function collectStorage(
  registry: Registry,
  ref: RegistryRef,
): { volumes: k8s.V1Volume[]; mounts: k8s.V1VolumeMount[] } {
  const volumes: k8s.V1Volume[] = [
    { name: 'config', secret: { secretName: names.configSecret(ref), defaultMode: 0o440 } },
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: k8s.V1VolumeMount[] = [
    { name: 'config', mountPath: registryPaths.configDir, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  if (registry.spec.storage.persistentVolumeClaim) {
    volumes.push({ name: 'data', persistentVolumeClaim: { claimName: names.pvc(ref) } });
    mounts.push({ name: 'data', mountPath: registryPaths.storage });
  }
  return { volumes, mounts };
}

export function collectJob(
  registry: Registry,
  ref: RegistryRef,
  name: string,
  where: JobPlacement,
): k8s.V1Job {
  const storage = registry.spec.storage;
  const { volumes, mounts } = collectStorage(registry, ref);
  const env: k8s.V1EnvVar[] = [
    { name: 'OTEL_TRACES_EXPORTER', value: 'none' },
    ...s3CredentialEnv(registry, {
      accessKey: 'REGISTRY_STORAGE_S3_ACCESSKEY',
      secretKey: 'REGISTRY_STORAGE_S3_SECRETKEY',
    }),
  ];
  const script = collectScript({
    registryBinary: 'registry',
    configPath: `${registryPaths.configDir}/config.yml`,
    ...(storage.persistentVolumeClaim ? { storageRoot: registryPaths.storage } : {}),
    deleteUntagged: registry.spec.garbageCollection?.deleteUntagged ?? true,
    terminationLog: '/dev/termination-log',
  });
  return baseJob(registry, ref, name, 'collect', {
    securityContext: restrictedPodSecurity,
    ...podPlacement(registry, where.nodeName),
    containers: [
      {
        name: 'garbage-collect',
        image: registry.spec.image ?? 'registry:3.1.1',
        command: ['/bin/sh', '-c', script],
        env,
        volumeMounts: mounts,
        terminationMessagePolicy: 'FallbackToLogsOnError', // the script's file; its logs if it died first
        securityContext: restrictedContainerSecurity,
        ...(registry.spec.resources
          ? { resources: registry.spec.resources as k8s.V1ResourceRequirements }
          : {}),
      },
    ],
    volumes,
  });
}

export function verifyJob(
  registry: Registry,
  ref: RegistryRef,
  name: string,
  operatorImage: string,
): k8s.V1Job {
  return clientJob(registry, ref, name, operatorImage, 'verify');
}

/** The read-only check: `berth gc-run probe` with the admin credential, through the Service. */
export function probeJob(
  registry: Registry,
  ref: RegistryRef,
  name: string,
  operatorImage: string,
): k8s.V1Job {
  return clientJob(registry, ref, name, operatorImage, 'probe');
}

/** A Job of berth's image speaking to the registry as a client, with the admin credential. */
function clientJob(
  registry: Registry,
  ref: RegistryRef,
  name: string,
  operatorImage: string,
  step: 'verify' | 'probe',
): k8s.V1Job {
  const admin = adminCredential(ref);
  const ca = caBundle(registry, ref);
  const volumes = [...admin.volumes, ...ca.volumes];
  const mounts = [...admin.mounts, ...ca.mounts];
  const args = ['gc-run', step, `--registry-url=${registryURL(ref, registry)}`, ...admin.args, ...ca.args];
  return baseJob(registry, ref, name, step, {
    // Only the network ties these to the registry: the Registry's own nodes (its tolerations,
    // nodeSelector and priority class), as its other pods, so they schedule where they may.
    ...podPlacement(registry),
    securityContext: restrictedPodSecurity,
    containers: [
      {
        name: step,
        image: operatorImage,
        args,
        volumeMounts: mounts,
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: restrictedContainerSecurity,
      },
    ],
    volumes,
  });
}
