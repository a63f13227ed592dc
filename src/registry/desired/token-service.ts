// The token service: its own small Deployment per Registry, from berth's image, so pulls keep
// working while the operator is down. Its serving certificate, signing key and credential store
// arrive as mounted Secrets (the store is reloaded in place, so a credential change does not roll
// the pods; a new certificate or key does). Its only Kubernetes API access is `create
// tokenreviews`, to judge the ServiceAccount tokens clients present (docs/identity.md): it runs
// as the ServiceAccount `berth-token-service` of the Registry's namespace, which the operator
// binds to the ClusterRole the installation ships. With `spec.auth.serviceAccountTokens.enabled:
// false` it runs with no API credentials at all, as before.
import type * as k8s from '@kubernetes/client-node';
import { names, ports, registryLabels, selectorLabels } from '../../model/names.ts';
import { storeShards } from '../../credentials/sharded.ts';
import { credentialStoreSecretName } from './secrets.ts';
import { type BuildContext } from './context.ts';
import { hasSharedStorage, ownerReference } from '../../model/registry.ts';
import { registryPlacement, restrictedContainerSecurity, restrictedPodHeader } from '../../model/workload.ts';
import { managedByLabels } from '../../model/names.ts';
import { defaultServiceAccountAudience } from '../../model/grants.ts';
import type { Registry } from '../../api/index.ts';
import type { RegistryRef } from '../../model/names.ts';

/** The token service's ServiceAccount, one per namespace (shared by the Registries there). */
export const tokenServiceAccountName = 'berth-token-service';

/** The audience ServiceAccount tokens must carry, or undefined when the Registry takes none. */
export function serviceAccountAudience(registry: Registry, ref: RegistryRef): string | undefined {
  const spec = registry.spec.auth?.serviceAccountTokens;
  if (spec?.enabled === false) return undefined;
  return spec?.audience ?? defaultServiceAccountAudience(ref);
}

/**
 * The token service's identity in `ref`'s namespace: its ServiceAccount and the binding to the
 * installation's TokenReview ClusterRole. Neither is owned by a Registry (several Registries of a
 * namespace share them; a cluster-scoped binding cannot be owned by a namespaced object): they
 * stay when the last Registry goes, and hold only `create tokenreviews`.
 */
export function tokenServiceIdentity(
  ref: RegistryRef,
  clusterRole: string,
): { serviceAccount: k8s.V1ServiceAccount; binding: k8s.V1ClusterRoleBinding } {
  const labels = { ...managedByLabels, 'app.kubernetes.io/component': 'token-service' };
  return {
    serviceAccount: {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: tokenServiceAccountName, namespace: ref.namespace, labels },
      automountServiceAccountToken: false,
    },
    binding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `berth-token-review:${ref.namespace}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: tokenServiceAccountName, namespace: ref.namespace }],
    },
  };
}

export const tokenPaths = {
  tlsDir: '/etc/berth/tls',
  keyDir: '/etc/berth/token',
  storeDir: '/etc/berth/credentials',
} as const;

/** The issuer and service names that the registry's configuration and the token service share. */
export function tokenIdentity(ctx: Pick<BuildContext, 'ref'>): { issuer: string; service: string } {
  return {
    issuer: `berth/${ctx.ref.namespace}/${ctx.ref.name}`,
    service: `${ctx.ref.name}.${ctx.ref.namespace}`,
  };
}

export function tokenServiceArgs(ctx: BuildContext): string[] {
  const { issuer, service } = tokenIdentity(ctx);
  return [
    'token-service',
    `--listen=0.0.0.0:${ports.tokenContainer}`,
    `--health-listen=0.0.0.0:${ports.tokenHealthContainer}`,
    ...(ctx.tls ? [`--tls-cert=${tokenPaths.tlsDir}/tls.crt`, `--tls-key=${tokenPaths.tlsDir}/tls.key`] : []),
    `--signing-key=${tokenPaths.keyDir}/tls.key`,
    `--signing-cert=${tokenPaths.keyDir}/tls.crt`,
    `--store=${tokenPaths.storeDir}/store.json`,
    `--issuer=${issuer}`,
    `--service=${service}`,
    ...serviceAccountArgs(ctx),
  ];
}

function serviceAccountArgs(ctx: BuildContext): string[] {
  const audience = serviceAccountAudience(ctx.registry, ctx.ref);
  return audience === undefined ? [] : [`--service-account-audience=${audience}`];
}

/**
 * The credential store's Secrets in one folder: the head (`store.json`, required) and every shard
 * Secret a sharded store may use (optional: a store in one document has none). Always all of
 * them, so the pod spec does not change with the size of the store, and a change of layout is a
 * reload, not a rollout.
 */
export function credentialsVolume(ctx: Pick<BuildContext, 'ref'>): k8s.V1Volume {
  const sources: k8s.V1VolumeProjection[] = [];
  for (let i = 0; i < storeShards; i++)
    sources.push({
      secret: { name: credentialStoreSecretName(ctx.ref, i), ...(i === 0 ? {} : { optional: true }) },
    });
  return { name: 'credentials', projected: { sources, defaultMode: 0o440 } };
}

export function tokenDeployment(ctx: BuildContext): k8s.V1Deployment {
  const { registry, ref } = ctx;
  const labels = registryLabels(ref, 'token-service');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: names.tokenDeployment(ref),
      namespace: ref.namespace,
      labels,
      ownerReferences: [ownerReference(registry)],
    },
    spec: {
      replicas: hasSharedStorage(registry) && (registry.spec.replicas ?? 1) > 1 ? 2 : 1,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(ref, 'token-service') },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: tokenPodTemplate(ctx, labels),
    },
  };
}

/** The pod template: the Registry's placement, and the checksums of what the pods load at start. */
function tokenPodTemplate(ctx: BuildContext, labels: Record<string, string>): k8s.V1PodTemplateSpec {
  const { volumes, mounts } = tokenVolumes(ctx);
  return {
    metadata: {
      labels,
      annotations: {
        'berth.dev/tls-checksum': ctx.checksums.tls,
        'berth.dev/token-key-checksum': ctx.checksums.tokenKey,
      },
    },
    spec: {
      ...restrictedPodHeader,
      // The API credentials for TokenReviews: the kubelet's projected, rotated token of its own
      // ServiceAccount (no Secret), only when the Registry takes ServiceAccount tokens.
      ...(serviceAccountAudience(ctx.registry, ctx.ref) === undefined
        ? {}
        : { serviceAccountName: tokenServiceAccountName, automountServiceAccountToken: true }),
      ...registryPlacement(ctx.registry),
      containers: [tokenContainer(ctx, mounts)],
      volumes,
    },
  };
}

function tokenContainer(ctx: BuildContext, mounts: k8s.V1VolumeMount[]): k8s.V1Container {
  const probe: k8s.V1Probe = {
    httpGet: { path: '/healthz', port: 'health', scheme: 'HTTP' },
    periodSeconds: 10,
    timeoutSeconds: 3,
  };
  return {
    name: 'token-service',
    image: ctx.operatorImage,
    args: tokenServiceArgs(ctx),
    ports: [
      { name: 'token', containerPort: ports.tokenContainer, protocol: 'TCP' },
      { name: 'health', containerPort: ports.tokenHealthContainer, protocol: 'TCP' },
    ],
    volumeMounts: mounts,
    readinessProbe: probe,
    livenessProbe: { ...probe, failureThreshold: 6 },
    resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '192Mi' } },
    securityContext: restrictedContainerSecurity,
  };
}

/** The signing key and the credential store always; the serving certificate unless TLS is off. */
function tokenVolumes(ctx: BuildContext): { volumes: k8s.V1Volume[]; mounts: k8s.V1VolumeMount[] } {
  const volumes: k8s.V1Volume[] = [
    { name: 'signing-key', secret: { secretName: names.tokenKeySecret(ctx.ref), defaultMode: 0o440 } },
    credentialsVolume(ctx),
  ];
  const mounts: k8s.V1VolumeMount[] = [
    { name: 'signing-key', mountPath: tokenPaths.keyDir, readOnly: true },
    { name: 'credentials', mountPath: tokenPaths.storeDir, readOnly: true },
  ];
  if (ctx.tls) {
    volumes.push({ name: 'tls', secret: { secretName: ctx.tlsSecretName, defaultMode: 0o440 } });
    mounts.push({ name: 'tls', mountPath: tokenPaths.tlsDir, readOnly: true });
  }
  return { volumes, mounts };
}
