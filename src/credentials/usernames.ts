// The usernames of the credentials berth hands out, derived from Kubernetes names so that they
// always fit the credential store (at most 128 characters of `[A-Za-z0-9._@-]`, starting with a
// letter or digit). `push.<namespace>.<repository>` can reach 5 + 63 + 1 + 253 characters; a
// username that would not fit keeps a readable prefix and ends in `_` and 16 hex digits of the
// SHA-256 of the full form. Kubernetes names never contain `_`, so a shortened username never
// equals one that was not shortened, and the same input always gives the same username (a
// credential survives an operator restart).
import { createHash } from 'node:crypto';

export const maxUsernameLength = 128;

/** What the credential store accepts as a username. */
export const usernamePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

const hashDigits = 16;

/** `full` when it is a valid store username, else a deterministic shortened form that is. */
export function fitUsername(full: string): string {
  if (usernamePattern.test(full)) return full;
  const hash = createHash('sha256').update(full, 'utf8').digest('hex').slice(0, hashDigits);
  const prefix = full
    .slice(0, maxUsernameLength - hashDigits - 1)
    .replace(/[^A-Za-z0-9.@-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return `${prefix}_${hash}`.replace(/^_/, 'u_');
}

/** The username of a namespace's pull credential for a Registry. */
export const pullUsername = (namespace: string): string => fitUsername(`pull.${namespace}`);

/** The username of a Repository's push credential. */
export const pushUsername = (namespace: string, repository: string): string =>
  fitUsername(`push.${namespace}.${repository}`);
