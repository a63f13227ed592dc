// Signs registry tokens: short-lived JWTs with the claims Distribution verifies (iss, sub, aud,
// exp, nbf, iat, jti, access), ES256 over the signing key, `kid` as Distribution computes it.
//
// The JWS compact form is built here with node:crypto's one-shot `sign` rather than jose's
// SignJWT: the token service's profile put jose's WebCrypto path (algorithm normalisation, a
// promise job per token) at about a third more than the signature itself, and the serialisation
// is three base64url parts. `sign` is given the KeyObject itself and returns DER, which is turned
// into the JWS form (r || s, RFC 7518 §3.4) here: on Node 24 passing an options object
// (`{ key, dsaEncoding: 'ieee-p1363' }`) takes about twice as long per signature, measured.
// jose stays the verifier in the tests, so every token is still checked by another implementation.
import {
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import type { ResourceActions } from '../credentials/scope.ts';
import { distributionKeyId, UnsupportedKeyError } from './key-id.ts';

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

// Node's curve names (OpenSSL's) → JWS algorithm.
const algorithms: Record<string, { alg: string; hash: string; size: number }> = {
  prime256v1: { alg: 'ES256', hash: 'sha256', size: 32 },
  secp384r1: { alg: 'ES384', hash: 'sha384', size: 48 },
  secp521r1: { alg: 'ES512', hash: 'sha512', size: 66 },
};

/**
 * An ECDSA signature from DER (`SEQUENCE { INTEGER r, INTEGER s }`) to the JWS form: r and s as
 * big-endian integers of exactly `size` bytes each.
 */
export function derToJoseSignature(der: Buffer, size: number): Buffer {
  if (der[0] !== 0x30) throw new Error('not a DER ECDSA signature');
  let i = (der[1] ?? 0) & 0x80 ? 2 + ((der[1] ?? 0) & 0x7f) : 2;
  const out = Buffer.alloc(size * 2);
  for (let part = 0; part < 2; part++) {
    if (der[i] !== 0x02) throw new Error('not a DER ECDSA signature');
    let len = der[i + 1] ?? 0;
    let start = i + 2;
    i = start + len;
    while (len > size && der[start] === 0) {
      start++;
      len--;
    }
    if (len > size || i > der.length) throw new Error('not a DER ECDSA signature');
    der.copy(out, part * size + (size - len), start, start + len);
  }
  return out;
}

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
  private readonly hash: string;
  private readonly size: number;
  /** The base64url protected header, the same for every token. */
  private readonly header: string;

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
    this.algorithm = alg.alg;
    this.hash = alg.hash;
    this.size = alg.size;
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
    this.header = base64url(JSON.stringify({ alg: this.algorithm, typ: 'JWT', kid: this.keyId }));
  }

  async sign(claims: TokenClaims): Promise<SignedToken> {
    return this.signNow(claims);
  }

  /** The same as `sign`, synchronously (the work is synchronous either way). */
  signNow(claims: TokenClaims): SignedToken {
    const iat = Math.floor(claims.issuedAt.getTime() / 1000);
    const exp = iat + Math.max(1, Math.floor(claims.ttlMs / 1000));
    const jti = randomBytes(16).toString('base64url');
    const payload = base64url(claimsJSON(claims, iat, exp, jti));
    const input = `${this.header}.${payload}`;
    const signature = derToJoseSignature(sign(this.hash, Buffer.from(input), this.key), this.size);
    return { token: `${input}.${signature.toString('base64url')}`, jti, expiresAt: new Date(exp * 1000) };
  }
}

/** The token's claims as JSON, in the order jose wrote them, so tokens look exactly as before. */
export function claimsJSON(claims: TokenClaims, iat: number, exp: number, jti: string): string {
  return JSON.stringify({
    access: claims.access,
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.audience,
    iat,
    nbf: iat,
    exp,
    jti,
  });
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}
