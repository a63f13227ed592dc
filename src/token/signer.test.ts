import { describe, expect, it } from '@jest/globals';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import { createCA, createSigningKey } from '../pki/certificates.ts';
import { distributionKeyId } from './key-id.ts';
import { derToJoseSignature, SigningKeyError, TokenSigner } from './signer.ts';

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

  it.each([
    ['P-256', 'prime256v1', 'ES256'],
    ['P-384', 'secp384r1', 'ES384'],
    ['P-521', 'secp521r1', 'ES512'],
  ])('signs with %s keys tokens that jose verifies, every time', async (_n, curve, alg) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
    const signer = new TokenSigner(pem);
    const key = await importSPKI(publicPem, alg);
    const issuedAt = new Date();
    // About one signature in 256 has an r or s with a leading zero byte: 600 tokens meet some.
    for (let i = 0; i < 600; i++) {
      const signed = signer.signNow({
        issuer: 'i',
        subject: i % 2 ? '' : 'u',
        audience: 'a',
        access: [],
        issuedAt,
        ttlMs: 60_000,
      });
      const { protectedHeader } = await jwtVerify(signed.token, key, { currentDate: issuedAt });
      expect(protectedHeader.alg).toBe(alg);
    }
  });
});

describe('derToJoseSignature', () => {
  const der = (r: number[], s: number[]) => {
    const body = [0x02, r.length, ...r, 0x02, s.length, ...s];
    const head = body.length > 127 ? [0x30, 0x81, body.length] : [0x30, body.length];
    return Buffer.from([...head, ...body]);
  };
  const bytes = (n: number, fill: number) => Array.from({ length: n }, () => fill);

  it.each<[string, Buffer, number, string]>([
    ['full-length r and s', der(bytes(32, 0x11), bytes(32, 0x22)), 32, '11'.repeat(32) + '22'.repeat(32)],
    [
      'an r with the sign byte (high bit set)',
      der([0x00, ...bytes(32, 0x81)], bytes(32, 0x22)),
      32,
      '81'.repeat(32) + '22'.repeat(32),
    ],
    [
      'a short s (leading zeros dropped)',
      der(bytes(32, 0x11), [0x05]),
      32,
      '11'.repeat(32) + '00'.repeat(31) + '05',
    ],
    [
      'P-521, long-form length',
      der([0x01, ...bytes(65, 0x33)], [0x00, 0x01, ...bytes(65, 0x44)]),
      66,
      '01' + '33'.repeat(65) + '01' + '44'.repeat(65),
    ],
  ])('%s', (_name, input, size, hex) => {
    expect(derToJoseSignature(input, size).toString('hex')).toBe(hex);
  });

  it.each<[string, Buffer]>([
    ['not a sequence', Buffer.from([0x31, 0x00])],
    ['an integer too long', der(bytes(33, 0x11), [1])],
    ['truncated', der(bytes(32, 0x11), bytes(32, 0x22)).subarray(0, 40)],
  ])('refuses %s', (_name, input) => {
    expect(() => derToJoseSignature(input, 32)).toThrow(/not a DER ECDSA signature/);
  });

  it('agrees with node:crypto’s own ieee-p1363 encoding', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    // About one signature in 64 has an r or s shorter than 32 bytes: 1,000 meet several.
    for (let i = 0; i < 1000; i++) {
      const data = Buffer.from(`message ${i}`);
      const jose = derToJoseSignature(sign('sha256', data, privateKey), 32);
      expect(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
    }
  });
});
