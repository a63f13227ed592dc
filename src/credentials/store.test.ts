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
    expect(r).toEqual({ success: true, data: valid, skipped: [] });
  });

  it('defaults anonymousPull to false', () => {
    const r = parseCredentialStore({ version: 1, credentials: [] });
    expect(r).toEqual({
      success: true,
      data: { version: 1, anonymousPull: false, credentials: [] },
      skipped: [],
    });
  });

  it.each<[string, unknown, RegExp]>([
    ['not an object', [], /must be a JSON object/],
    ['an unknown version', { ...valid, version: 2 }, /unsupported credential store version 2/],
    ['no version', { credentials: [] }, /unsupported credential store version undefined/],
    ['anonymousPull not boolean', { ...valid, anonymousPull: 'yes' }, /anonymousPull must be a boolean/],
    ['credentials not a list', { version: 1, credentials: {} }, /credentials must be a list/],
  ])('refuses a document that is not a store: %s', (_name, input, error) => {
    const r = parseCredentialStore(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error).toMatch(error);
  });

  it.each<[string, Record<string, unknown>, RegExp, boolean]>([
    ['a username with a colon', { username: 'a:b' }, /credentials\[1\]\.username/, false],
    ['an empty username', { username: '' }, /credentials\[1\]\.username/, false],
    ['a username of 129 characters', { username: 'u'.repeat(129) }, /credentials\[1\]\.username/, false],
    ['a plain secret instead of a hash', { secretHash: 'hunter2' }, /secretHash must be "sha256:"/, true],
    ['an uppercase hash', { secretHash: `sha256:${'A'.repeat(64)}` }, /secretHash/, true],
    ['grants not a list', { grants: 'all' }, /grants must be a list/, true],
    ['a grant without patterns', { grants: [{ repositories: [], actions: ['pull'] }] }, /repositories/, true],
    ['a grant without actions', { grants: [{ repositories: ['x'], actions: [] }] }, /actions must be/, true],
    [
      'an unknown action',
      { grants: [{ repositories: ['x'], actions: ['read'] }] },
      /unknown action "read"/,
      true,
    ],
    ['catalog not boolean', { catalog: 1 }, /catalog must be a boolean/, true],
    ['a bad notAfter', { notAfter: 'tomorrow' }, /notAfter is not a valid time/, true],
    ['a numeric notBefore', { notBefore: 5 }, /notBefore must be an RFC 3339 string/, true],
  ])('skips an entry with %s and keeps the others', (_name, patch, error, namesUser) => {
    const bad = { ...valid.credentials[0], username: 'bad-one', ...patch };
    const r = parseCredentialStore({
      ...valid,
      credentials: [valid.credentials[0], bad, valid.credentials[1]],
    });
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data.credentials).toEqual(valid.credentials);
    expect(r.skipped).toEqual([
      { index: 1, error: expect.stringMatching(error), ...(namesUser ? { username: 'bad-one' } : {}) },
    ]);
  });

  it('skips an entry that is not an object', () => {
    const r = parseCredentialStore({ version: 1, credentials: [null, 'x', valid.credentials[1]] });
    expect(r.success && r.data.credentials).toEqual([valid.credentials[1]]);
    expect(r.success && r.skipped.map((s) => s.index)).toEqual([0, 1]);
  });

  it('never echoes a secret hash in its errors', () => {
    const r = parseCredentialStore(withEntry({ secretHash: 'sha256:deadbeef-secret-ish' }));
    expect(r.success).toBe(true);
    if (r.success) expect(JSON.stringify(r.skipped)).not.toContain('deadbeef');
  });
});

describe('parseCredentialStoreText / serializeCredentialStore', () => {
  it('round-trips', () => {
    const r = parseCredentialStore(valid);
    if (!r.success) throw new Error(r.error);
    const text = serializeCredentialStore(r.data);
    expect(text.endsWith('\n')).toBe(true);
    expect(parseCredentialStoreText(text)).toEqual({ success: true, data: valid, skipped: [] });
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

describe('ServiceAccounts in the store', () => {
  const withAccounts = {
    ...valid,
    serviceAccounts: [
      {
        namespace: 'team-a',
        name: 'ci',
        grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
      },
      { namespace: 'team-b', name: 'Bad_Name', grants: [] },
      { namespace: 'team-b', name: 'deploy', grants: [{ repositories: ['team-a/web'], actions: ['steal'] }] },
      { namespace: 'team-b', name: 'deploy', grants: [{ repositories: ['team-a/web'], actions: ['pull'] }] },
    ],
  };

  it('keeps the valid entries, skips the others with the field named, and compiles them by namespace/name', () => {
    const r = parseCredentialStore(withAccounts);
    if (!r.success) throw new Error(r.error);
    expect(r.data.serviceAccounts?.map((s) => `${s.namespace}/${s.name}`)).toEqual([
      'team-a/ci',
      'team-b/deploy',
    ]);
    expect(r.skipped.map((s) => s.error)).toEqual([
      'serviceAccounts[1]: namespace and name must name a ServiceAccount',
      'serviceAccounts[2].grants[0].actions: unknown action "steal" (pull, push, delete or *)',
    ]);
    const compiled = compileCredentialStore(r.data);
    const ci = compiled.serviceAccounts?.get('team-a/ci') ?? [];
    expect(ci.map((g) => [g.match('team-a/web'), [...g.actions]])).toEqual([[true, ['pull', 'push']]]);
    expect(compiled.serviceAccounts?.has('team-b/deploy')).toBe(true);
  });

  it('reads back what it writes', () => {
    const r = parseCredentialStore(withAccounts);
    if (!r.success) throw new Error(r.error);
    const again = parseCredentialStoreText(serializeCredentialStore(r.data));
    expect(again.success && again.data).toEqual(r.data);
  });

  it('refuses a store whose serviceAccounts is not a list', () =>
    expect(parseCredentialStore({ ...valid, serviceAccounts: {} })).toEqual({
      success: false,
      error: 'serviceAccounts must be a list',
    }));

  it('a store without them has none', () => {
    const r = parseCredentialStore(valid);
    expect(r.success && r.data.serviceAccounts).toBeUndefined();
  });
});
