// Pure decisions about berth's own certificates (tls.mode SelfSigned): when to create or renew
// the CA and the serving certificate. Each decision returns a reason and a message, like
// cert-manager's policy chains, and the time at which it should be looked at again.

import type { CertFacts } from '../pki/certificates.ts';

export type { CertFacts };

export type Decision =
  | { action: 'keep'; reason: 'UpToDate'; message: string; recheckAt: Date }
  | { action: 'issue'; reason: string; message: string };

/** A CA lives ten years and is replaced when less than one year remains. */
export const caLifetimeMs = 10 * 365 * 24 * 3600_000;
export const caRenewBeforeMs = 365 * 24 * 3600_000;

export function decideCA(now: Date, ca: CertFacts | undefined): Decision {
  if (!ca) return { action: 'issue', reason: 'Missing', message: 'no CA exists yet' };
  const renewAt = new Date(ca.notAfter.getTime() - caRenewBeforeMs);
  if (now >= renewAt) {
    return { action: 'issue', reason: 'Expiring', message: `the CA expires at ${ca.notAfter.toISOString()}` };
  }
  return { action: 'keep', reason: 'UpToDate', message: 'the CA is valid', recheckAt: renewAt };
}

export interface ServingWanted {
  dnsNames: string[];
  ipAddresses: string[];
  /** Subject of the CA that must have issued it. */
  caSubject: string;
  renewBeforeMs: number;
}

const sameSet = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join();

/**
 * `cert.signedByCA`: whether the current CA's key signed it. Every CA of a Registry has the same
 * subject, so a CA made again (its Secret deleted) is told apart only by its key: a certificate the
 * old CA signed would fail every client that trusts the new one.
 */
export function decideServing(
  now: Date,
  cert: (CertFacts & { signedByCA?: boolean }) | undefined,
  wanted: ServingWanted,
): Decision {
  if (!cert) return { action: 'issue', reason: 'Missing', message: 'no serving certificate exists yet' };
  if (cert.issuer !== wanted.caSubject || cert.signedByCA === false) {
    return {
      action: 'issue',
      reason: 'IssuerChanged',
      message: 'the serving certificate was issued by another CA',
    };
  }
  if (!sameSet(cert.dnsNames, wanted.dnsNames) || !sameSet(cert.ipAddresses, wanted.ipAddresses)) {
    return {
      action: 'issue',
      reason: 'NamesChanged',
      message: `the certificate names [${[...cert.dnsNames, ...cert.ipAddresses].join(', ')}] differ from the wanted [${[
        ...wanted.dnsNames,
        ...wanted.ipAddresses,
      ].join(', ')}]`,
    };
  }
  const renewAt = new Date(cert.notAfter.getTime() - wanted.renewBeforeMs);
  if (now >= renewAt) {
    return {
      action: 'issue',
      reason: 'Renewing',
      message: `the serving certificate expires at ${cert.notAfter.toISOString()}, within renewBefore`,
    };
  }
  return {
    action: 'keep',
    reason: 'UpToDate',
    message: 'the serving certificate is valid',
    recheckAt: renewAt,
  };
}
