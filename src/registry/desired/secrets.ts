// The Secrets and the ConfigMap that carry a Registry's configuration and material.
import type * as k8s from '@kubernetes/client-node';
import type { LaidOutStore } from '../../credentials/layout.ts';
import { shardFileName } from '../../credentials/sharded.ts';
import type { KeyPair } from '../../pki/certificates.ts';
import { secretData } from '../../util/secrets.ts';
import { dockerConfigJson } from '../../util/dockerconfig.ts';
import { names, registryLabels } from '../../model/names.ts';
import { type BuildContext } from './context.ts';
import { ownerReference } from '../../model/registry.ts';

type Ctx = Pick<BuildContext, 'registry' | 'ref'>;

function secret(
  ctx: Ctx,
  name: string,
  component: string,
  type: string,
  values: Record<string, string>,
): k8s.V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: ctx.ref.namespace,
      labels: registryLabels(ctx.ref, component),
      ownerReferences: [ownerReference(ctx.registry)],
    },
    type,
    data: secretData(values),
  };
}

export function caSecret(ctx: Ctx, ca: KeyPair): k8s.V1Secret {
  return secret(ctx, names.caSecret(ctx.ref), 'ca', 'kubernetes.io/tls', {
    'tls.crt': ca.certPem,
    'tls.key': ca.keyPem,
  });
}

export function servingSecret(ctx: Ctx, serving: KeyPair, caPem: string): k8s.V1Secret {
  return secret(ctx, names.tlsSecret(ctx.ref), 'tls', 'kubernetes.io/tls', {
    'tls.crt': serving.certPem,
    'tls.key': serving.keyPem,
    'ca.crt': caPem,
  });
}

export function tokenKeySecret(ctx: Ctx, key: KeyPair): k8s.V1Secret {
  return secret(ctx, names.tokenKeySecret(ctx.ref), 'token-service', 'kubernetes.io/tls', {
    'tls.crt': key.certPem,
    'tls.key': key.keyPem,
  });
}

export function configSecret(
  ctx: Ctx,
  configYaml: string,
  httpSecret: string,
  eventsToken: string,
): k8s.V1Secret {
  return secret(ctx, names.configSecret(ctx.ref), 'registry', 'Opaque', {
    'config.yml': configYaml,
    'http-secret': httpSecret,
    // the registry's push notifications to the operator carry it (src/repository/push-events.ts)
    'events-token': eventsToken,
  });
}

/** The label on the credential store's head Secret that says how the store is laid out. */
export const storeLayoutLabel = 'berth.dev/credential-store-layout';

/** The Secret of shard `i` of the credential store: the head keeps the store's historic name. */
export function credentialStoreSecretName(ref: Ctx['ref'], i: number): string {
  return i === 0 ? names.credentialStore(ref) : `${names.credentialStore(ref)}-${i}`;
}

/**
 * The Secrets of a laid-out credential store (src/credentials/layout.ts): file i goes into
 * Secret i under the key `shardFileName(i)`, so a projected volume mounts them side by side.
 */
export function credentialStoreSecrets(ctx: Ctx, store: LaidOutStore): k8s.V1Secret[] {
  return store.files.map((text, i) => {
    const s = secret(ctx, credentialStoreSecretName(ctx.ref, i), 'token-service', 'Opaque', {
      [shardFileName(i)]: text,
    });
    if (i === 0)
      (s.metadata as k8s.V1ObjectMeta).labels = { ...s.metadata?.labels, [storeLayoutLabel]: store.layout };
    return s;
  });
}

export function adminSecret(ctx: Ctx, hosts: string[], password: string): k8s.V1Secret {
  return secret(ctx, names.adminSecret(ctx.ref), 'admin-credential', 'kubernetes.io/dockerconfigjson', {
    '.dockerconfigjson': dockerConfigJson(hosts, 'admin', password),
  });
}

/** The CA bundle for clients and nodes (`status.caConfigMap`). */
export function caConfigMap(ctx: Ctx, caPem: string): k8s.V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: names.caConfigMap(ctx.ref),
      namespace: ctx.ref.namespace,
      labels: registryLabels(ctx.ref, 'ca'),
      ownerReferences: [ownerReference(ctx.registry)],
    },
    data: { 'ca.crt': caPem },
  };
}

/** tls.mode CertManager: a cert-manager Certificate that writes the serving Secret. */
export function certManagerCertificate(
  ctx: Ctx,
  dnsNames: string[],
  ipAddresses: string[],
): Record<string, unknown> {
  const tls = ctx.registry.spec.tls ?? {};
  const issuerRef = tls.issuerRef ?? { name: '' };
  return {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: {
      name: names.certificate(ctx.ref),
      namespace: ctx.ref.namespace,
      labels: registryLabels(ctx.ref, 'tls'),
      ownerReferences: [ownerReference(ctx.registry)],
    },
    spec: {
      secretName: names.tlsSecret(ctx.ref),
      dnsNames,
      ...(ipAddresses.length ? { ipAddresses } : {}),
      duration: tls.duration ?? '2160h',
      renewBefore: tls.renewBefore ?? '720h',
      usages: ['server auth', 'digital signature', 'key encipherment'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: {
        name: issuerRef.name,
        kind: issuerRef.kind ?? 'Issuer',
        group: issuerRef.group ?? 'cert-manager.io',
      },
    },
  };
}
