// Signs registry tokens: short-lived JWTs with the claims Distribution verifies (iss, sub, aud,
// exp, nbf, iat, jti, access), ES256 over the signing key, `kid` as Distribution computes it.
import { createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { ResourceActions } from '../credentials/scope.ts';
import { distributionKeyId, UnsupportedKeyError } from './key-id.ts';

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

// Node's curve names (OpenSSL's) → JWS algorithm.
const algorithms: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

export interface TokenClaims {
  issuer: string;
  subject: string;
  audience: string;
  access: ResourceActions[];
  issuedAt: Date;
  /** Lifetime in milliseconds. */
  ttlMs: number;
}

export interface SignedToken {
  token: string;
  jti: string;
  expiresAt: Date;
}

export class TokenSigner {
  readonly keyId: string;
  readonly algorithm: string;
  private readonly key: KeyObject;

  /**
   * @param privateKeyPem PKCS#8 (or SEC1) PEM of an EC key.
   * @param certificatePem the certificate the registry trusts (its `rootcertbundle`); when given,
   *   it must hold this key's public half, so a mismatched pair fails at start-up, not per pull.
   */
  constructor(privateKeyPem: string, certificatePem?: string) {
    let key: KeyObject;
    try {
      key = createPrivateKey(privateKeyPem);
    } catch {
      throw new SigningKeyError('the token signing key is not a readable PEM private key');
    }
    const details = key.asymmetricKeyDetails;
    const alg = key.asymmetricKeyType === 'ec' ? algorithms[details?.namedCurve ?? ''] : undefined;
    if (!alg)
      throw new SigningKeyError('the token signing key must be an ECDSA key on P-256, P-384 or P-521');
    this.key = key;
    this.algorithm = alg;
    try {
      this.keyId = distributionKeyId(createPublicKey(key));
    } catch (err) {
      if (err instanceof UnsupportedKeyError) throw new SigningKeyError(err.message);
      throw err;
    }
    if (certificatePem !== undefined) {
      let certKeyId: string;
      try {
        certKeyId = distributionKeyId(new X509Certificate(certificatePem).publicKey);
      } catch {
        throw new SigningKeyError('the token signing certificate is not a readable PEM EC certificate');
      }
      if (certKeyId !== this.keyId)
        throw new SigningKeyError('the token signing certificate does not belong to the signing key');
    }
  }

  async sign(claims: TokenClaims): Promise<SignedToken> {
    const iat = Math.floor(claims.issuedAt.getTime() / 1000);
    const exp = iat + Math.max(1, Math.floor(claims.ttlMs / 1000));
    const jti = randomBytes(16).toString('base64url');
    const token = await new SignJWT({ access: claims.access })
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT', kid: this.keyId })
      .setIssuer(claims.issuer)
      .setSubject(claims.subject)
      .setAudience(claims.audience)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.key);
    return { token, jti, expiresAt: new Date(exp * 1000) };
  }
}
