// Minting and checking credentials. berth's secrets are random 256-bit tokens, so a fast hash
// (SHA-256) is enough: nobody can guess a preimage, and a slow password hash on every token
// request would cap the token service's throughput. Comparison is constant-time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CredentialEntry, Grant } from './store.ts';

/** Bytes of entropy in a minted secret. */
export const secretBytes = 32;

/** The store's hash of a secret: `sha256:<hex>`. */
export function hashSecret(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex')}`;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Constant-time check of a presented secret against a 32-byte SHA-256 hash. */
export function secretMatches(secret: string, hash: Buffer): boolean {
  const presented = digest(secret);
  return hash.length === presented.length && timingSafeEqual(presented, hash);
}

export interface MintOptions {
  username: string;
  grants: Grant[];
  catalog?: boolean;
  notBefore?: Date;
  notAfter?: Date;
  description?: string;
  /** Source of randomness (tests); default crypto.randomBytes. */
  random?: (bytes: number) => Buffer;
}

export interface MintedCredential {
  /** The plain secret: returned once, to be written into the user's dockerconfigjson only. */
  secret: string;
  /** The store entry, which holds only the hash. */
  entry: CredentialEntry;
}

/** Mints a new credential: a random URL-safe secret (no `:`, so it fits `user:secret`). */
export function mintCredential(options: MintOptions): MintedCredential {
  const secret = (options.random ?? randomBytes)(secretBytes).toString('base64url');
  const entry: CredentialEntry = {
    username: options.username,
    secretHash: hashSecret(secret),
    grants: options.grants,
  };
  if (options.catalog !== undefined) entry.catalog = options.catalog;
  if (options.notBefore) entry.notBefore = options.notBefore.toISOString();
  if (options.notAfter) entry.notAfter = options.notAfter.toISOString();
  if (options.description !== undefined) entry.description = options.description;
  return { secret, entry };
}
