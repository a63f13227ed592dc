// Reading and writing Kubernetes Secret data, and random secrets.
import { createHash, randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';

/** The decoded text of one key of a Secret, or undefined. */
export function secretText(secret: k8s.V1Secret | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

/** Encodes a map of text values as Secret `data`. */
export function secretData(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
  );
}

/** A random, URL-safe secret with `bytes` bytes of entropy. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Hex SHA-256 of the given parts, for checksum annotations. */
export function checksum(...parts: (string | undefined)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p ?? '').update('\0');
  return h.digest('hex');
}
