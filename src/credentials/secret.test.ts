import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { hashSecret, mintCredential, secretMatches } from './secret.ts';
import { parseCredentialStore } from './store.ts';

describe('hashSecret', () => {
  it('is sha256: plus the hex SHA-256 of the UTF-8 bytes', () => {
    expect(hashSecret('abc')).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('secretMatches', () => {
  const hash = createHash('sha256').update('right').digest();
  it.each([
    ['the right secret', 'right', hash, true],
    ['a wrong secret', 'wrong', hash, false],
    ['an empty secret', '', hash, false],
    ['a hash of the wrong length', 'right', hash.subarray(0, 16), false],
  ])('%s', (_name, secret, h, expected) => {
    expect(secretMatches(secret, h)).toBe(expected);
  });
});

describe('mintCredential', () => {
  const grants = [{ repositories: ['team-a/web'], actions: ['pull' as const, 'push' as const] }];

  it('returns a 256-bit URL-safe secret once and stores only its hash', () => {
    const { secret, entry } = mintCredential({ username: 'push-web', grants });
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(entry.secretHash).toBe(hashSecret(secret));
    expect(JSON.stringify(entry)).not.toContain(secret);
    expect(parseCredentialStore({ version: 1, credentials: [entry] }).success).toBe(true);
  });

  it('mints different secrets each time', () => {
    const a = mintCredential({ username: 'x', grants });
    const b = mintCredential({ username: 'x', grants });
    expect(a.secret).not.toBe(b.secret);
  });

  it('uses the injected randomness and records the validity window', () => {
    const { secret, entry } = mintCredential({
      username: 'ns-team-a',
      grants,
      catalog: false,
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2026-01-02T00:00:00Z'),
      description: 'team-a',
      random: (n) => Buffer.alloc(n, 1),
    });
    expect(secret).toBe(Buffer.alloc(32, 1).toString('base64url'));
    expect(entry).toEqual({
      username: 'ns-team-a',
      secretHash: hashSecret(secret),
      grants,
      catalog: false,
      notBefore: '2026-01-01T00:00:00.000Z',
      notAfter: '2026-01-02T00:00:00.000Z',
      description: 'team-a',
    });
  });
});
