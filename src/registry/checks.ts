// Pure: what the Registry controller concludes from the objects it reads (a user's Secret, the
// cert-manager Secret, the claim, the Service) and the gates between its steps. The reads and
// writes themselves stay in src/registry/reconciler.ts.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import type { IngressHostVerdict } from '../model/hosts.ts';
import { names, type RegistryRef } from '../model/names.ts';
import type { Check, Observed } from '../model/status.ts';
import { checksum, secretText } from '../util/secrets.ts';
import type { NodeAccessInput } from './node-access-step.ts';

/** The serving certificate as the TLS step found it: CertificateReady, the CA, the rollout checksum. */
export interface CertificateOutcome {
  check: Check;
  /** The CA that clients and nodes trust (the CA ConfigMap), when known. */
  caPem?: string;
  /** Checksum of the serving certificate and key: a change rolls the pods. */
  checksum: string;
}

/** The Secret with tls.crt/tls.key the pods serve: the user's in tls.mode Secret, else berth's. */
export function tlsSecretNameOf(registry: Registry, ref: RegistryRef): string {
  return registry.spec.tls?.mode === 'Secret' ? (registry.spec.tls.secretName ?? '') : names.tlsSecret(ref);
}

/** The Service's cluster IPs, without empty and `None` entries. */
export function clusterIPsOf(service: k8s.V1Service): string[] {
  return (service.spec?.clusterIPs ?? []).filter((ip) => ip && ip !== 'None');
}

/** StorageReady's input for S3: the user's Secret exists and has both keys. */
export function s3SecretCheck(secret: k8s.V1Secret | undefined, namespace: string, name: string): Check {
  if (!secret) {
    return {
      ok: false,
      reason: 'StorageSecretMissing',
      message: `spec.storage.s3.secretRef: Secret ${namespace}/${name} does not exist; create it with the keys accessKeyID and secretAccessKey`,
    };
  }
  const missing = ['accessKeyID', 'secretAccessKey'].filter((k) => !secret.data?.[k]);
  if (missing.length) {
    return {
      ok: false,
      reason: 'StorageSecretInvalid',
      message: `spec.storage.s3.secretRef: Secret ${namespace}/${name} has no ${missing.join(' or ')}`,
    };
  }
  return { ok: true, message: `S3 bucket with credentials from Secret ${name}` };
}

/** tls.mode Secret: the user's Secret exists and has tls.crt and tls.key; its CA, or the chain's last. */
export function userTLSCheck(
  secret: k8s.V1Secret | undefined,
  namespace: string,
  name: string,
): CertificateOutcome {
  if (!secret) {
    return {
      check: {
        ok: false,
        reason: 'TLSSecretMissing',
        message: `spec.tls.secretName: Secret ${namespace}/${name} does not exist`,
      },
      checksum: '',
    };
  }
  const cert = secretText(secret, 'tls.crt');
  const key = secretText(secret, 'tls.key');
  const missing = [cert ? '' : 'tls.crt', key ? '' : 'tls.key'].filter(Boolean);
  if (missing.length) {
    return {
      check: {
        ok: false,
        reason: 'TLSSecretInvalid',
        message: `spec.tls.secretName: Secret ${namespace}/${name} has no ${missing.join(' or ')}`,
      },
      checksum: '',
    };
  }
  return {
    check: { ok: true, message: `serving the certificate from Secret ${name}` },
    caPem: secretText(secret, 'ca.crt') ?? lastCertificate(cert ?? ''),
    checksum: checksum(cert, key),
  };
}

/** tls.mode CertManager without cert-manager's CRD. */
export const certManagerNotInstalled: CertificateOutcome = {
  check: {
    ok: false,
    reason: 'CertManagerNotInstalled',
    message:
      'spec.tls.mode is CertManager, but cert-manager is not installed (no certificates.cert-manager.io CRD)',
  },
  checksum: '',
};

/** tls.mode CertManager: the Secret cert-manager writes, issued yet or not. */
export function certManagerSecretCheck(
  secret: k8s.V1Secret | undefined,
  ref: RegistryRef,
): CertificateOutcome {
  const cert = secretText(secret, 'tls.crt');
  const key = secretText(secret, 'tls.key');
  if (!cert || !key) {
    return {
      check: {
        ok: false,
        reason: 'CertificateIssuing',
        message: `waiting for cert-manager to issue Certificate ${names.certificate(ref)}`,
      },
      checksum: '',
    };
  }
  return {
    check: { ok: true, message: 'cert-manager issued the serving certificate' },
    caPem: secretText(secret, 'ca.crt') ?? lastCertificate(cert),
    checksum: checksum(cert, key),
  };
}

/** StorageReady after the claim is applied: an unbound claim waits, unless storage already failed. */
export function claimCheck(storage: Check, phase: string | undefined, ref: RegistryRef): Check {
  if (phase === 'Bound' || !storage.ok) return storage;
  return {
    ok: false,
    reason: 'PVCPending',
    message: `PersistentVolumeClaim ${names.pvc(ref)} is ${phase ?? 'not bound yet'}: waiting for a volume`,
  };
}

/**
 * Whether the Deployments are applied: only with a serving certificate (or TLS off) and storage
 * that is ready or only waiting for its volume. Otherwise the running ones are left as they are.
 */
export function workloadsAllowed(observed: Pick<Observed, 'certificate' | 'storage'>, tls: boolean): boolean {
  const certOk = observed.certificate.ok || !tls;
  const storageBlocked = !observed.storage.ok && observed.storage.reason !== 'PVCPending';
  return certOk && !storageBlocked;
}

/** The node agents' part of the Ingress host decision (src/model/hosts.ts); undefined: no host. */
export function nodeIngressHost(host: IngressHostVerdict): NodeAccessInput['ingressHost'] {
  if (host.kind === 'none') return undefined;
  return host.kind === 'own' && host.nodes
    ? { nodes: true as const }
    : { nodes: false as const, reason: host.reason, message: host.message };
}

/** The last certificate of a PEM bundle (a chain's root, by convention). */
export function lastCertificate(bundle: string): string | undefined {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g);
  return blocks?.[blocks.length - 1];
}
