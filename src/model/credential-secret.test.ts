import { describe, expect, it } from '@jest/globals';
import { hashSecret } from '../credentials/secret.ts';
import {
  credentialHashes,
  credentialSecret,
  isOwnCredential,
  readCredentialState,
  repositoryLabelValue,
  stepCredential,
  type CredentialState,
} from './credential-secret.ts';
import { rotationDueAt } from './rotation.ts';

const hour = 3600_000;
const policy = { intervalMs: 24 * hour, gracePeriodMs: 2 * hour, propagationMs: 90_000 };
const t0 = new Date('2026-11-24T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
let n = 0;
const mint = () => `secret-${++n}`;
const registry = { name: 'main', namespace: 'registry-system' };

describe('stepCredential', () => {
  it('mints a first credential', () => {
    const s = stepCredential(t0, { username: 'pull.team-a' }, 'team-a', policy, mint);
    expect(s.events).toEqual(['Minted']);
    expect(s.state.password).toMatch(/^secret-/);
    expect(s.state.issuedAt).toEqual(t0);
    expect(s.recheckAt).toEqual(rotationDueAt(t0, policy.intervalMs, 'team-a'));
  });

  it('keeps a fresh credential and changes nothing', () => {
    const state: CredentialState = { username: 'u', password: 'p', issuedAt: t0 };
    const s = stepCredential(at(hour), state, 'team-a', policy, mint);
    expect(s.events).toEqual([]);
    expect(s.state).toEqual(state);
  });

  it('rotates in two steps: pending first, current after the propagation delay, old valid for the grace period', () => {
    const due = rotationDueAt(t0, policy.intervalMs, 'team-a');
    const start = stepCredential(
      due,
      { username: 'u', password: 'old', issuedAt: t0 },
      'team-a',
      policy,
      mint,
    );
    expect(start.events).toEqual(['RotationStarted']);
    expect(start.state.password).toBe('old'); // the Secret still carries the old one
    expect(start.state.pending).toMatch(/^secret-/);
    expect(start.recheckAt).toEqual(new Date(due.getTime() + policy.propagationMs));

    const early = stepCredential(new Date(due.getTime() + 1000), start.state, 'team-a', policy, mint);
    expect(early.events).toEqual([]);

    const promoteAt = new Date(due.getTime() + policy.propagationMs);
    const done = stepCredential(promoteAt, start.state, 'team-a', policy, mint);
    expect(done.events).toEqual(['Rotated']);
    expect(done.state.password).toBe(start.state.pending);
    expect(done.state.pending).toBeUndefined();
    expect(done.state.previousHash).toBe(hashSecret('old'));
    expect(done.state.previousNotAfter).toEqual(new Date(promoteAt.getTime() + policy.gracePeriodMs));

    const later = stepCredential(
      new Date(promoteAt.getTime() + policy.gracePeriodMs),
      done.state,
      'team-a',
      policy,
      mint,
    );
    expect(later.events).toEqual(['PreviousExpired']);
    expect(later.state.previousHash).toBeUndefined();
  });

  it('mints anew when the Secret lost its credential', () => {
    const s = stepCredential(t0, { username: 'u', issuedAt: t0 }, 'team-a', policy, mint);
    expect(s.events).toEqual(['Minted']);
  });
});

describe('credential Secrets', () => {
  it('round-trip their state', () => {
    const state: CredentialState = {
      username: 'pull.team-a',
      password: 'p1',
      issuedAt: t0,
      pending: 'p2',
      pendingSince: at(1000),
      previousHash: hashSecret('p0'),
      previousNotAfter: at(hour),
    };
    const secret = credentialSecret({
      name: 'main-pull',
      namespace: 'team-a',
      kind: 'pull',
      registry,
      hosts: ['main.registry-system.svc:443'],
      state,
    });
    expect(readCredentialState(secret, 'pull.team-a')).toEqual(state);
    expect(isOwnCredential(secret, 'pull', registry)).toBe(true);
    expect(isOwnCredential(secret, 'pull', { ...registry, name: 'other' })).toBe(false);
    expect(isOwnCredential({ metadata: { labels: {} } }, 'pull', registry)).toBe(false);
    expect(credentialHashes(state).map((h) => h.hash)).toEqual([
      hashSecret('p1'),
      hashSecret('p2'),
      hashSecret('p0'),
    ]);
    expect(JSON.stringify(secret.metadata)).not.toContain('p1');
  });

  it('ignores a credential of another user', () => {
    const secret = credentialSecret({
      name: 'x',
      namespace: 'team-a',
      kind: 'pull',
      registry,
      hosts: ['h'],
      state: { username: 'someone', password: 'p', issuedAt: t0 },
    });
    expect(readCredentialState(secret, 'pull.team-a').password).toBeUndefined();
  });
});

describe('repositoryLabelValue', () => {
  const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
  it.each([
    ['a short name as it is', 'web', 'web'],
    ['63 characters as they are', 'a'.repeat(63), 'a'.repeat(63)],
  ])('%s', (_name, input, want) => expect(repositoryLabelValue(input)).toBe(want));
  it('shortens a longer name to a valid label value, deterministically and distinctly', () => {
    for (const name of ['a'.repeat(64), `${'a'.repeat(45)}-.b${'c'.repeat(200)}`, 'x.'.repeat(126) + 'y']) {
      const v = repositoryLabelValue(name);
      expect(v.length).toBeLessThanOrEqual(63);
      expect(v).toMatch(labelValue);
      expect(v).toContain('_');
      expect(repositoryLabelValue(name)).toBe(v);
    }
    expect(repositoryLabelValue('a'.repeat(64))).not.toBe(repositoryLabelValue('a'.repeat(65)));
  });
});
