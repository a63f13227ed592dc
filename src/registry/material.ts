// The secret material of a Registry: its CA and serving certificate (tls.mode SelfSigned), the
// token signing key, the HTTP secret and the admin credential. Existing material is read back
// and kept while it is valid, so a steady Registry regenerates (and writes) nothing.
import type * as k8s from '@kubernetes/client-node';
import {
  createCA,
  describeCertificate,
  issueCertificate,
  signedBy,
  type KeyPair,
} from '../pki/certificates.ts';
import { parseDuration } from '../util/duration.ts';
import { parseDockerConfig } from '../util/dockerconfig.ts';
import { randomSecret, secretText } from '../util/secrets.ts';
import type { Registry } from '../api/index.ts';
import { serviceHostNames, type RegistryRef } from '../model/names.ts';
import { caLifetimeMs, decideCA, decideServing, type CertFacts } from './tls-policy.ts';

export interface ExistingMaterial {
  caSecret?: k8s.V1Secret;
  tlsSecret?: k8s.V1Secret;
  tokenKeySecret?: k8s.V1Secret;
  configSecret?: k8s.V1Secret;
  adminSecret?: k8s.V1Secret;
}

export interface IssuedEvent {
  reason: string;
  message: string;
}

export interface SelfSignedTLS {
  ca: KeyPair;
  serving: KeyPair;
  /** When to look at the certificates again (renewal). */
  recheckAt: Date;
  events: IssuedEvent[];
}

function facts(pem: string | undefined): CertFacts | undefined {
  if (!pem) return undefined;
  try {
    return describeCertificate(pem);
  } catch {
    return undefined; // unparseable material is replaced
  }
}

/** Host names the serving certificate must carry. */
export function servingNames(ref: RegistryRef, registry: Registry): string[] {
  const dns = [...serviceHostNames(ref), ...(registry.spec.tls?.dnsNames ?? [])];
  const host = registry.spec.expose?.ingress?.host;
  if (host) dns.push(host);
  return [...new Set(dns)];
}

/** Keeps or (re)issues berth's own CA and serving certificate. */
export async function selfSignedTLS(
  now: Date,
  ref: RegistryRef,
  registry: Registry,
  existing: ExistingMaterial,
  clusterIPs: string[],
): Promise<SelfSignedTLS> {
  const events: IssuedEvent[] = [];
  const backdate = new Date(now.getTime() - 5 * 60_000); // tolerate clock skew between nodes
  const ca = await keepOrCreateCA(now, backdate, ref, existing, events);
  const served = await keepOrIssueServing(
    now,
    backdate,
    ref,
    registry,
    existing,
    clusterIPs,
    ca.pair,
    events,
  );
  let recheckAt = served.recheckAt;
  if (ca.recheckAt && ca.recheckAt < recheckAt) recheckAt = ca.recheckAt;
  return { ca: ca.pair, serving: served.pair, recheckAt, events };
}

/** The CA: the existing one while decideCA keeps it (and when to look again), else a new one. */
async function keepOrCreateCA(
  now: Date,
  backdate: Date,
  ref: RegistryRef,
  existing: ExistingMaterial,
  events: IssuedEvent[],
): Promise<{ pair: KeyPair; recheckAt?: Date }> {
  const caCert = secretText(existing.caSecret, 'tls.crt');
  const caKey = secretText(existing.caSecret, 'tls.key');
  const caDecision = decideCA(now, caKey ? facts(caCert) : undefined);
  if (caDecision.action === 'keep' && caCert && caKey)
    return { pair: { certPem: caCert, keyPem: caKey }, recheckAt: caDecision.recheckAt };
  const pair = await createCA({
    commonName: `berth ${ref.namespace}/${ref.name} CA`,
    notBefore: backdate,
    notAfter: new Date(now.getTime() + caLifetimeMs),
  });
  events.push({
    reason: 'CAIssued',
    message: `Issued a new CA (${caDecision.reason}: ${caDecision.message})`,
  });
  return { pair };
}

/** The serving certificate: the existing one while decideServing keeps it, else one issued by `ca`. */
async function keepOrIssueServing(
  now: Date,
  backdate: Date,
  ref: RegistryRef,
  registry: Registry,
  existing: ExistingMaterial,
  clusterIPs: string[],
  ca: KeyPair,
  events: IssuedEvent[],
): Promise<{ pair: KeyPair; recheckAt: Date }> {
  const caSubject = describeCertificate(ca.certPem).subject;
  const tlsSpec = registry.spec.tls ?? {};
  const durationMs = parseDuration(tlsSpec.duration ?? '2160h');
  const renewBeforeMs = parseDuration(tlsSpec.renewBefore ?? '720h');
  const wanted = { dnsNames: servingNames(ref, registry), ipAddresses: clusterIPs, caSubject, renewBeforeMs };
  const servingCert = secretText(existing.tlsSecret, 'tls.crt');
  const servingKey = secretText(existing.tlsSecret, 'tls.key');
  const current = servingKey ? facts(servingCert) : undefined;
  const signedByCA = current ? signedBy(servingCert!, ca.certPem) : undefined;
  const decision = decideServing(now, current && { ...current, signedByCA }, wanted);
  if (decision.action === 'keep' && servingCert && servingKey)
    return { pair: { certPem: servingCert, keyPem: servingKey }, recheckAt: decision.recheckAt };
  const pair = await issueCertificate(ca, {
    commonName: wanted.dnsNames[0] ?? ref.name,
    dnsNames: wanted.dnsNames,
    ipAddresses: wanted.ipAddresses,
    notBefore: backdate,
    notAfter: new Date(now.getTime() + durationMs),
    usage: 'server',
  });
  events.push({
    reason: 'CertificateIssued',
    message: `Issued a serving certificate valid for ${tlsSpec.duration ?? '2160h'} (${decision.reason}: ${decision.message})`,
  });
  return { pair, recheckAt: new Date(now.getTime() + durationMs - renewBeforeMs) };
}

/** The token signing key pair: self-signed, long-lived, trusted by the registry as its root bundle. */
export async function tokenSigningKey(
  now: Date,
  ref: RegistryRef,
  existing: ExistingMaterial,
): Promise<KeyPair> {
  const cert = secretText(existing.tokenKeySecret, 'tls.crt');
  const key = secretText(existing.tokenKeySecret, 'tls.key');
  const f = facts(cert);
  if (cert && key && f && f.notAfter.getTime() - now.getTime() > 365 * 24 * 3600_000)
    return { certPem: cert, keyPem: key };
  return createCA({
    commonName: `berth ${ref.namespace}/${ref.name} token signer`,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + caLifetimeMs),
  });
}

/** The registry's HTTP secret (it signs upload state), kept in the configuration Secret. */
export function httpSecret(existing: ExistingMaterial): string {
  return secretText(existing.configSecret, 'http-secret') ?? randomSecret(32);
}

/**
 * The bearer token the registry presents with its push notifications to the operator, kept in the
 * configuration Secret (key `events-token`) like the HTTP secret: generated once, then kept.
 */
export function eventsToken(existing: ExistingMaterial): string {
  return secretText(existing.configSecret, 'events-token') ?? randomSecret(32);
}

/** The admin credential's secret, kept in the admin Secret. */
export function adminPassword(existing: ExistingMaterial): string {
  const parsed = parseDockerConfig(secretText(existing.adminSecret, '.dockerconfigjson'));
  return parsed?.username === 'admin' ? parsed.password : randomSecret(32);
}
