// The `kid` that Distribution v3 matches a token against.
//
// Distribution v3.1.1 (registry/auth/token) verifies a token's signature in this order: an `x5c`
// header chain against `rootcertbundle`; else a `jwk` header; else the `kid` header looked up in
// its trusted keys, which are every `rootcertbundle` certificate's public key under the key's
// JWK thumbprint (`GetJWKThumbprint`) plus every `jwks` key under its own `kid`. berth signs with
// `kid` only (smaller tokens, and only the signing certificate itself is trusted, not anything
// the CA ever issued).
//
// `GetJWKThumbprint` is RFC 7638 with one Go quirk: the EC coordinates are encoded from
// `big.Int.Bytes()`, which drops leading zero bytes, where RFC 7638 keeps the fixed field size.
// For about one key in 128 the two differ, so this reproduces Go's encoding exactly.
import { createHash, type KeyObject } from 'node:crypto';

export class UnsupportedKeyError extends Error {
  override name = 'UnsupportedKeyError';
}

function stripLeadingZeros(b64url: string): string {
  const bytes = Buffer.from(b64url, 'base64url');
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i).toString('base64url');
}

/** Distribution's key id for an EC public key: sha256 over the sorted JWK members, base64url. */
export function distributionKeyId(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || !jwk.crv || !jwk.x || !jwk.y)
    throw new UnsupportedKeyError(`token signing key must be an EC key (P-256), got ${String(jwk.kty)}`);
  const payload = `{"crv":"${jwk.crv}","kty":"EC","x":"${stripLeadingZeros(jwk.x)}","y":"${stripLeadingZeros(jwk.y)}"}`;
  return createHash('sha256').update(payload).digest('base64url');
}
