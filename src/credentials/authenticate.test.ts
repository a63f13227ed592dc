import { describe, expect, it } from '@jest/globals';
import { authenticate } from './authenticate.ts';
import { hashSecret } from './secret.ts';
import { compileCredentialStore, type CredentialEntry } from './store.ts';

function entry(
  username: string,
  secret: string,
  window: { notBefore?: string; notAfter?: string } = {},
): CredentialEntry {
  return { username, secretHash: hashSecret(secret), grants: [], ...window };
}

const store = compileCredentialStore({
  version: 1,
  anonymousPull: false,
  credentials: [
    entry('admin', 'admin-secret'),
    // a rotation: the old secret is valid until 10:00, the new one from 08:00
    entry('ns-team-a', 'old-secret', { notAfter: '2026-11-24T10:00:00Z' }),
    entry('ns-team-a', 'new-secret', { notBefore: '2026-11-24T08:00:00Z' }),
  ],
});

describe('authenticate', () => {
  it.each<[string, string, string, string, string]>([
    ['the admin', 'admin', 'admin-secret', '2026-11-24T09:00:00Z', 'ok'],
    ['a wrong secret', 'admin', 'nope', '2026-11-24T09:00:00Z', 'wrong-secret'],
    ['an unknown user', 'mallory', 'admin-secret', '2026-11-24T09:00:00Z', 'unknown-user'],
    ['another user’s secret', 'admin', 'new-secret', '2026-11-24T09:00:00Z', 'wrong-secret'],
    ['the old secret in its grace period', 'ns-team-a', 'old-secret', '2026-11-24T09:59:59Z', 'ok'],
    ['the old secret after its grace period', 'ns-team-a', 'old-secret', '2026-11-24T10:00:00Z', 'expired'],
    [
      'the new secret before it is active',
      'ns-team-a',
      'new-secret',
      '2026-11-24T07:59:59Z',
      'not-yet-valid',
    ],
    ['the new secret once active', 'ns-team-a', 'new-secret', '2026-11-24T08:00:00Z', 'ok'],
  ])('%s', (_name, user, secret, now, expected) => {
    const r = authenticate(store, user, secret, new Date(now));
    expect(r.ok ? 'ok' : r.reason).toBe(expected);
    if (r.ok) expect(r.entry.entry.username).toBe(user);
  });
});
