// Checking presented basic credentials against a compiled credential store.
import { secretMatches } from './secret.ts';
import type { CompiledEntry, CompiledStore } from './store.ts';

export type AuthenticationResult =
  | { ok: true; entry: CompiledEntry }
  | { ok: false; reason: 'unknown-user' | 'wrong-secret' | 'not-yet-valid' | 'expired' };

// Compared against when the username is unknown, so that unknown users and wrong secrets take
// the same time (no username enumeration through timing).
const decoy = Buffer.alloc(32, 0);

/**
 * Finds the entry for `username` whose secret matches and that is valid at `now`. Several entries
 * may share a username (a rotation's old and new secret); every one is compared.
 */
export function authenticate(
  store: CompiledStore,
  username: string,
  secret: string,
  now: Date,
): AuthenticationResult {
  const candidates = store.byUsername.get(username);
  if (!candidates) {
    secretMatches(secret, decoy);
    return { ok: false, reason: 'unknown-user' };
  }
  const t = now.getTime();
  let outside: 'not-yet-valid' | 'expired' | undefined;
  let found: CompiledEntry | undefined;
  for (const candidate of candidates) {
    if (!secretMatches(secret, candidate.hash)) continue;
    if (candidate.notBefore !== undefined && t < candidate.notBefore) {
      outside ??= 'not-yet-valid';
      continue;
    }
    if (candidate.notAfter !== undefined && t >= candidate.notAfter) {
      outside = 'expired';
      continue;
    }
    found ??= candidate;
  }
  if (found) return { ok: true, entry: found };
  return { ok: false, reason: outside ?? 'wrong-secret' };
}
