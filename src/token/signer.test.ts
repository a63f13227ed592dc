import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import { createCA, createSigningKey } from '../pki/certificates.ts';
import { distributionKeyId } from './key-id.ts';
import { SigningKeyError, TokenSigner } from './signer.ts';

describe('TokenSigner', () => {
  it('signs ES256 tokens with the claims Distribution verifies', async () => {
    const key = await createSigningKey();
    const signer = new TokenSigner(key.privateKeyPem);
    const issuedAt = new Date('2026-11-24T08:00:00.700Z');
    const access = [{ type: 'repository', name: 'team-a/web', actions: ['pull'] }];
    const signed = await signer.sign({
      issuer: 'berth/ns/main',
      subject: 'u',
      audience: 'main.ns',
      access,
      issuedAt,
      ttlMs: 300_000,
    });
    const header = decodeProtectedHeader(signed.token);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: signer.keyId });
    const { payload } = await jwtVerify(signed.token, await importSPKI(key.publicKeyPem, 'ES256'), {
      currentDate: issuedAt,
      issuer: 'berth/ns/main',
      audience: 'main.ns',
    });
    const iat = Math.floor(issuedAt.getTime() / 1000);
    expect(payload).toEqual({
      iss: 'berth/ns/main',
      sub: 'u',
      aud: 'main.ns',
      iat,
      nbf: iat,
      exp: iat + 300,
      jti: signed.jti,
      access,
    });
    expect(signed.expiresAt).toEqual(new Date((iat + 300) * 1000));
    expect(signed.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('accepts the certificate that holds its key and computes the kid from it', async () => {
    const ca = await createCA({
      commonName: 'signer',
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 3600_000),
    });
    const signer = new TokenSigner(ca.keyPem, ca.certPem);
    const { X509Certificate } = await import('node:crypto');
    expect(signer.keyId).toBe(distributionKeyId(new X509Certificate(ca.certPem).publicKey));
  });

  it.each<[string, () => Promise<[string, string?]>, RegExp]>([
    ['garbage', async () => ['not a key'], /not a readable PEM private key/],
    [
      'an RSA key',
      async () => [
        generateKeyPairSync('rsa', { modulusLength: 1024 })
          .privateKey.export({ type: 'pkcs8', format: 'pem' })
          .toString(),
      ],
      /must be an ECDSA key/,
    ],
    [
      'a certificate of another key',
      async () => {
        const a = await createCA({
          commonName: 'a',
          notBefore: new Date(),
          notAfter: new Date(Date.now() + 3600_000),
        });
        const b = await createCA({
          commonName: 'b',
          notBefore: new Date(),
          notAfter: new Date(Date.now() + 3600_000),
        });
        return [a.keyPem, b.certPem];
      },
      /does not belong to the signing key/,
    ],
    [
      'an unreadable certificate',
      async () => [(await createSigningKey()).privateKeyPem, 'nope'],
      /not a readable PEM EC certificate/,
    ],
  ])('refuses %s', async (_name, make, error) => {
    const [key, cert] = await make();
    expect(() => new TokenSigner(key, cert)).toThrow(SigningKeyError);
    expect(() => new TokenSigner(key, cert)).toThrow(error);
  });
});
