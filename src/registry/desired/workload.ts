// The registry Deployment. With storage that only one pod may write (a ReadWriteOnce claim, or
// emptyDir), it runs one pod and updates with Recreate, so a rollout never starts a second writer.
// With shared storage it runs `replicas` pods and rolls without losing capacity.
import type * as k8s from '@kubernetes/client-node';
import { names, ports, registryLabels, selectorLabels } from '../../model/names.ts';
import { type BuildContext } from './context.ts';
import { hasSharedStorage, ownerReference } from '../../model/registry.ts';
import {
  registryPaths,
  registryPlacement,
  restrictedContainerSecurity,
  restrictedPodHeader,
} from '../../model/workload.ts';

export function registryDeployment(ctx: BuildContext): k8s.V1Deployment {
  const { registry, ref } = ctx;
  const spec = registry.spec;
  const shared = hasSharedStorage(registry);
  const labels = registryLabels(ref, 'registry');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: names.workload(ref),
      namespace: ref.namespace,
      labels,
      ownerReferences: [ownerReference(registry)],
    },
    spec: {
      replicas: shared ? (spec.replicas ?? 1) : 1,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(ref, 'registry') },
      strategy: shared
        ? { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }
        : { type: 'Recreate' },
      template: registryPodTemplate(ctx, labels),
    },
  };
}

/** The pod template: the user's labels and annotations, and the checksums that roll it. */
function registryPodTemplate(ctx: BuildContext, labels: Record<string, string>): k8s.V1PodTemplateSpec {
  const spec = ctx.registry.spec;
  const { volumes, mounts } = registryVolumes(ctx);
  return {
    metadata: {
      labels: { ...(spec.podLabels ?? {}), ...labels },
      annotations: {
        ...(spec.podAnnotations ?? {}),
        'berth.dev/config-checksum': ctx.checksums.config,
        'berth.dev/tls-checksum': ctx.checksums.tls,
        'berth.dev/token-key-checksum': ctx.checksums.tokenKey,
      },
    },
    spec: {
      ...restrictedPodHeader,
      ...registryPlacement(ctx.registry, { affinity: true }),
      containers: [registryContainer(ctx, mounts)],
      volumes,
    },
  };
}

function registryContainer(ctx: BuildContext, mounts: k8s.V1VolumeMount[]): k8s.V1Container {
  const spec = ctx.registry.spec;
  return {
    name: 'registry',
    image: spec.image ?? 'registry:3.1.1',
    args: ['serve', `${registryPaths.configDir}/config.yml`],
    ports: [
      { name: 'registry', containerPort: ports.registryContainer, protocol: 'TCP' },
      { name: 'debug', containerPort: ports.debugContainer, protocol: 'TCP' },
    ],
    env: registryEnv(ctx),
    volumeMounts: mounts,
    readinessProbe: debugProbe('/debug/health', 3),
    livenessProbe: debugProbe('/debug/health', 6),
    securityContext: restrictedContainerSecurity,
    ...(spec.resources ? { resources: spec.resources as k8s.V1ResourceRequirements } : {}),
  };
}

/** Tracing off; with S3 storage, the keys from the user's Secret. */
function registryEnv(ctx: BuildContext): k8s.V1EnvVar[] {
  const env: k8s.V1EnvVar[] = [{ name: 'OTEL_TRACES_EXPORTER', value: 'none' }];
  const s3 = ctx.registry.spec.storage.s3;
  if (s3) {
    const secret = s3.secretRef.name;
    env.push(
      {
        name: 'REGISTRY_STORAGE_S3_ACCESSKEY',
        valueFrom: { secretKeyRef: { name: secret, key: 'accessKeyID' } },
      },
      {
        name: 'REGISTRY_STORAGE_S3_SECRETKEY',
        valueFrom: { secretKeyRef: { name: secret, key: 'secretAccessKey' } },
      },
    );
  }
  return env;
}

/** Configuration, token certificate and /tmp always; the data volume unless S3; TLS unless disabled. */
function registryVolumes(ctx: BuildContext): { volumes: k8s.V1Volume[]; mounts: k8s.V1VolumeMount[] } {
  const { ref } = ctx;
  const volumes: k8s.V1Volume[] = [
    { name: 'config', secret: { secretName: names.configSecret(ref), defaultMode: 0o440 } },
    {
      name: 'token-cert',
      secret: { secretName: names.tokenKeySecret(ref), items: [{ key: 'tls.crt', path: 'token.crt' }] },
    },
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: k8s.V1VolumeMount[] = [
    { name: 'config', mountPath: registryPaths.configDir, readOnly: true },
    { name: 'token-cert', mountPath: registryPaths.tokenDir, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  if (!ctx.registry.spec.storage.s3) {
    volumes.push(dataVolume(ctx));
    mounts.push({ name: 'data', mountPath: registryPaths.storage });
  }
  if (ctx.tls) {
    volumes.push({ name: 'tls', secret: { secretName: ctx.tlsSecretName, defaultMode: 0o440 } });
    mounts.push({ name: 'tls', mountPath: registryPaths.tlsDir, readOnly: true });
  }
  return { volumes, mounts };
}

/** The claim, or an emptyDir (with the spec's size limit). */
function dataVolume(ctx: BuildContext): k8s.V1Volume {
  const storage = ctx.registry.spec.storage;
  if (storage.persistentVolumeClaim)
    return { name: 'data', persistentVolumeClaim: { claimName: names.pvc(ctx.ref) } };
  return {
    name: 'data',
    emptyDir: storage.emptyDir?.sizeLimit ? { sizeLimit: storage.emptyDir.sizeLimit } : {},
  };
}

function debugProbe(path: string, failureThreshold: number): k8s.V1Probe {
  return {
    httpGet: { path, port: 'debug', scheme: 'HTTP' },
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold,
  };
}
