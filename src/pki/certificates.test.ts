import { describe, expect, test } from '@jest/globals';
import { createCA, issueCertificate, signedBy } from './certificates.ts';

describe('signedBy', () => {
  test('true for the CA that issued it; false for another CA of the same name, and for garbage', async () => {
    const now = new Date();
    const later = new Date(now.getTime() + 3600_000);
    const ca = await createCA({ commonName: 'berth main CA', notBefore: now, notAfter: later });
    const again = await createCA({ commonName: 'berth main CA', notBefore: now, notAfter: later });
    const serving = await issueCertificate(ca, {
      commonName: 'main.ns.svc',
      dnsNames: ['main.ns.svc'],
      notBefore: now,
      notAfter: later,
      usage: 'server',
    });
    expect(signedBy(serving.certPem, ca.certPem)).toBe(true);
    expect(signedBy(serving.certPem, again.certPem)).toBe(false);
    expect(signedBy('not a certificate', ca.certPem)).toBe(false);
  });
});
