import { describe, expect, it } from '@jest/globals';
import {
  compileCredentialStore,
  parseCredentialStore,
  parseCredentialStoreText,
  serializeCredentialStore,
  type CredentialStore,
} from './store.ts';

const hash = `sha256:${'a'.repeat(64)}`;
const valid = {
  version: 1,
  anonymousPull: false,
  credentials: [
    {
      username: 'admin',
      secretHash: hash,
      grants: [{ repositories: ['**'], actions: ['*'] }],
      catalog: true,
    },
    {
      username: 'ns-team-a',
      secretHash: hash,
      grants: [{ repositories: ['team-a/*'], actions: ['pull'] }],
      notBefore: '2026-01-01T00:00:00Z',
      notAfter: '2026-02-01T00:00:00Z',
      description: 'pull secret of namespace team-a',
    },
  ],
};

function withEntry(patch: Record<string, unknown>): unknown {
  return { ...valid, credentials: [{ ...valid.credentials[0], ...patch }] };
}

describe('parseCredentialStore', () => {
  it('accepts a valid store and keeps every field', () => {
    const r = parseCredentialStore(valid);
    expect(r).toEqual({ success: true, data: valid });
  });

  it('defaults anonymousPull to false', () => {
    const r = parseCredentialStore({ version: 1, credentials: [] });
    expect(r).toEqual({ success: true, data: { version: 1, anonymousPull: false, credentials: [] } });
  });

  it.each<[string, unknown, RegExp]>([
    ['not an object', [], /must be a JSON object/],
    ['an unknown version', { ...valid, version: 2 }, /unsupported credential store version 2/],
    ['no version', { credentials: [] }, /unsupported credential store version undefined/],
    ['anonymousPull not boolean', { ...valid, anonymousPull: 'yes' }, /anonymousPull must be a boolean/],
    ['credentials not a list', { version: 1, credentials: {} }, /credentials must be a list/],
    ['a username with a colon', withEntry({ username: 'a:b' }), /credentials\[0\]\.username/],
    ['an empty username', withEntry({ username: '' }), /credentials\[0\]\.username/],
    [
      'a plain secret instead of a hash',
      withEntry({ secretHash: 'hunter2' }),
      /secretHash must be "sha256:"/,
    ],
    ['an uppercase hash', withEntry({ secretHash: `sha256:${'A'.repeat(64)}` }), /secretHash/],
    ['grants not a list', withEntry({ grants: 'all' }), /grants must be a list/],
    [
      'a grant without patterns',
      withEntry({ grants: [{ repositories: [], actions: ['pull'] }] }),
      /repositories/,
    ],
    [
      'a grant without actions',
      withEntry({ grants: [{ repositories: ['x'], actions: [] }] }),
      /actions must be/,
    ],
    [
      'an unknown action',
      withEntry({ grants: [{ repositories: ['x'], actions: ['read'] }] }),
      /unknown action "read"/,
    ],
    ['catalog not boolean', withEntry({ catalog: 1 }), /catalog must be a boolean/],
    ['a bad notAfter', withEntry({ notAfter: 'tomorrow' }), /notAfter is not a valid time/],
    ['a numeric notBefore', withEntry({ notBefore: 5 }), /notBefore must be an RFC 3339 string/],
  ])('refuses %s', (_name, input, error) => {
    const r = parseCredentialStore(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error).toMatch(error);
  });

  it('never echoes a secret hash in its errors', () => {
    const r = parseCredentialStore(withEntry({ secretHash: 'sha256:deadbeef-secret-ish' }));
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error).not.toContain('deadbeef');
  });
});

describe('parseCredentialStoreText / serializeCredentialStore', () => {
  it('round-trips', () => {
    const r = parseCredentialStore(valid);
    if (!r.success) throw new Error(r.error);
    const text = serializeCredentialStore(r.data);
    expect(text.endsWith('\n')).toBe(true);
    expect(parseCredentialStoreText(text)).toEqual({ success: true, data: valid });
  });

  it('reports JSON syntax errors', () => {
    const r = parseCredentialStoreText('{"version": 1,');
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error).toMatch(/not valid JSON/);
  });
});

describe('compileCredentialStore', () => {
  it('groups entries by username and decodes times and hashes', () => {
    const store: CredentialStore = {
      version: 1,
      anonymousPull: true,
      credentials: [
        { username: 'u', secretHash: hash, grants: [] },
        {
          username: 'u',
          secretHash: `sha256:${'b'.repeat(64)}`,
          grants: [],
          notAfter: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const c = compileCredentialStore(store);
    expect(c.anonymousPull).toBe(true);
    expect(c.size).toBe(2);
    const entries = c.byUsername.get('u') ?? [];
    expect(entries).toHaveLength(2);
    expect(entries[0]?.hash.toString('hex')).toBe('a'.repeat(64));
    expect(entries[1]?.notAfter).toBe(Date.parse('2026-01-01T00:00:00Z'));
  });
});
