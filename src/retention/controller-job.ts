// The objects a retention run needs, built by pure functions: the Job (berth's image running
// `berth retention-run`, in the Registry's namespace, with the admin credential, the CA bundle and
// the storage mounted read-only, placed as the Registry's own pods are (tolerations, nodeSelector,
// priority class) and beside the registry pod when the claim is ReadWriteOnce), its
// ServiceAccount, and the bindings to the ClusterRoles the installation ships (berth-retention
// cluster-wide, berth-retention-report in the policy's namespace only).
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { registryURL } from '../model/hosts.ts';
import { retentionLabels } from '../jobs/lock.ts';
import { needsSameNode } from '../jobs/placement.ts';
import {
  adminCredential,
  caBundle,
  podPlacement,
  registryJob,
  s3CredentialEnv,
  type PodParts,
} from '../jobs/pod.ts';
import { restrictedContainerSecurity, restrictedPodSecurity, registryPaths } from '../model/workload.ts';
import { managedByLabels, names, type RegistryRef } from '../model/names.ts';

export const retentionServiceAccount = 'berth-retention';
export const retentionNodeOptions = '--max-semi-space-size=2';
export const reportAnnotation = 'berth.dev/report-configmap';
/** The ClusterRoles a default install ships (the chart prefixes them with its release name). */
export const clusterRoles = { cluster: 'berth-retention', report: 'berth-retention-report' } as const;
export type RetentionClusterRoles = { cluster: string; report: string };

export interface PolicyRef {
  name: string;
  namespace: string;
}

export function runLabels(policy: PolicyRef, registry: RegistryRef): Record<string, string> {
  return {
    ...managedByLabels,
    'app.kubernetes.io/name': 'berth-retention',
    'app.kubernetes.io/component': 'retention',
    [retentionLabels.policy]: policy.name,
    [retentionLabels.policyNamespace]: policy.namespace,
    [retentionLabels.registry]: registry.name,
  };
}

export interface RunJobInput {
  policy: PolicyRef;
  registry: Registry;
  ref: RegistryRef;
  job: string;
  report: string;
  mode: string;
  image: string;
  /** The registry pod's node, for a ReadWriteOnce claim. */
  nodeName?: string;
}

/**
 * Why a retention run cannot read this Registry's storage, if it cannot. The run reads push times
 * and untagged manifests from the storage itself: a claim (mounted read-only) or S3. An emptyDir
 * lives inside the registry pod, where no other pod can see it; a ReadWriteOncePod claim cannot be
 * mounted by a second pod while the registry runs.
 */
export function retentionUnsupported(registry: Registry): string | undefined {
  const storage = registry.spec.storage;
  if (storage.emptyDir)
    return "spec.storage.emptyDir: a retention run reads push times from the registry's storage, and an emptyDir is visible only inside the registry pod; retention needs a PersistentVolumeClaim or S3";
  const modes = storage.persistentVolumeClaim?.accessModes ?? [];
  if (modes.length === 1 && modes[0] === 'ReadWriteOncePod')
    return 'spec.storage.persistentVolumeClaim.accessModes: a ReadWriteOncePod claim cannot be mounted by the retention Job while the registry runs';
  if (!storage.persistentVolumeClaim && !storage.s3)
    return 'spec.storage: a retention run needs a PersistentVolumeClaim or S3 storage';
  return undefined;
}

/** The run's flags of the retention-run contract, then `more` (the CA's and the storage's). */
function runArgs(input: RunJobInput, more: string[]): string[] {
  const { policy, registry, ref } = input;
  return [
    'retention-run',
    `--policy=${policy.namespace}/${policy.name}`,
    `--registry-url=${registryURL(ref, registry)}`,
    ...adminCredential(ref).args,
    `--report-configmap=${input.report}`,
    `--report-namespace=${policy.namespace}`,
    `--mode=${input.mode}`,
    ...more,
  ];
}

/**
 * Where the run reads push times from: the claim mounted read-only, or S3 (the objects'
 * LastModified) with the Registry's own S3 credentials.
 */
function runStorage(registry: Registry, ref: RegistryRef): PodParts & { env: k8s.V1EnvVar[] } {
  const storage = registry.spec.storage;
  const out: PodParts & { env: k8s.V1EnvVar[] } = { volumes: [], mounts: [], args: [], env: [] };
  if (storage.persistentVolumeClaim) {
    out.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: names.pvc(ref), readOnly: true } });
    out.mounts.push({ name: 'data', mountPath: registryPaths.storage, readOnly: true });
    out.args.push(`--storage-root=${registryPaths.storage}`);
  }
  const s3 = storage.s3;
  if (s3) {
    out.args.push(`--s3-bucket=${s3.bucket}`, `--s3-region=${s3.region}`);
    if (s3.regionEndpoint) out.args.push(`--s3-region-endpoint=${s3.regionEndpoint}`);
    if (s3.forcePathStyle !== undefined) out.args.push(`--s3-force-path-style=${s3.forcePathStyle}`);
    if (s3.rootDirectory) out.args.push(`--s3-root-directory=${s3.rootDirectory}`);
    out.env = s3CredentialEnv(registry, {
      accessKey: 'AWS_ACCESS_KEY_ID',
      secretKey: 'AWS_SECRET_ACCESS_KEY',
    });
  }
  return out;
}

export function retentionJob(input: RunJobInput): k8s.V1Job {
  const { registry, ref } = input;
  const labels = runLabels(input.policy, ref);
  const admin = adminCredential(ref);
  const ca = caBundle(registry, ref);
  const storage = runStorage(registry, ref);
  const tmp = { volumes: [{ name: 'tmp', emptyDir: {} }], mounts: [{ name: 'tmp', mountPath: '/tmp' }] };
  // V8 sizes its young generation from the machine's memory; a small one more than halves the
  // run's peak RSS (bench/retention, compiled as the image runs it: 285 -> 130 MiB at 100,000 tags).
  const env: k8s.V1EnvVar[] = [{ name: 'NODE_OPTIONS', value: retentionNodeOptions }, ...storage.env];
  const pod: k8s.V1PodSpec = {
    restartPolicy: 'Never',
    serviceAccountName: retentionServiceAccount,
    enableServiceLinks: false,
    securityContext: restrictedPodSecurity,
    // Beside the registry pod only when its claim cannot be mounted from another node.
    ...podPlacement(registry, needsSameNode(registry) ? input.nodeName : undefined),
    containers: [
      {
        name: 'retention',
        image: input.image,
        args: runArgs(input, [...ca.args, ...storage.args]),
        env,
        volumeMounts: [...admin.mounts, ...tmp.mounts, ...ca.mounts, ...storage.mounts],
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: restrictedContainerSecurity,
      },
    ],
    volumes: [...admin.volumes, ...tmp.volumes, ...ca.volumes, ...storage.volumes],
  };
  return registryJob({
    registry,
    name: input.job,
    namespace: ref.namespace,
    labels,
    annotations: { [reportAnnotation]: input.report },
    spec: {
      backoffLimit: 0, // a failed run is reported; the next one is the retry
      activeDeadlineSeconds: 6 * 3600,
    },
    pod,
  });
}

export function retentionServiceAccountObject(ref: RegistryRef): k8s.V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: retentionServiceAccount,
      namespace: ref.namespace,
      labels: { ...managedByLabels, 'app.kubernetes.io/component': 'retention' },
    },
  };
}

const subject = (ref: RegistryRef): k8s.RbacV1Subject => ({
  kind: 'ServiceAccount',
  name: retentionServiceAccount,
  namespace: ref.namespace,
});

/** Cluster-wide read of Pods and workloads (protect.inUse), for the retention runs of one namespace. */
export function retentionClusterBinding(
  ref: RegistryRef,
  roles: RetentionClusterRoles = clusterRoles,
): k8s.V1ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name: `berth-retention:${ref.namespace}`,
      labels: { ...managedByLabels, 'app.kubernetes.io/component': 'retention' },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roles.cluster },
    subjects: [subject(ref)],
  };
}

/** Writing reports, in the policy's namespace only. */
export function retentionReportBinding(
  ref: RegistryRef,
  policyNamespace: string,
  roles: RetentionClusterRoles = clusterRoles,
): k8s.V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {
      name: `berth-retention-report:${ref.namespace}`,
      namespace: policyNamespace,
      labels: { ...managedByLabels, 'app.kubernetes.io/component': 'retention' },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roles.report },
    subjects: [subject(ref)],
  };
}
