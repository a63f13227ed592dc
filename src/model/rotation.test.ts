import { describe, expect, it } from '@jest/globals';
import { decideRotation, rotationDueAt, rotationOverdue, spreadFraction } from './rotation.ts';

const hour = 3600_000;
const policy = { intervalMs: 24 * hour, gracePeriodMs: 2 * hour };
const t0 = new Date('2026-11-24T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

describe('rotationDueAt', () => {
  it('falls within the last tenth of the interval', () => {
    for (const ns of ['a', 'b', 'team-a', 'team-b', 'kube-public']) {
      const due = rotationDueAt(t0, policy.intervalMs, ns).getTime() - t0.getTime();
      expect(due).toBeGreaterThan(0.9 * policy.intervalMs);
      expect(due).toBeLessThanOrEqual(policy.intervalMs);
    }
  });

  it('spreads namespaces minted together', () => {
    const dues = new Set(
      Array.from({ length: 100 }, (_, i) => rotationDueAt(t0, policy.intervalMs, `ns-${i}`).getTime()),
    );
    expect(dues.size).toBeGreaterThan(95);
  });

  it('is stable for a name', () => expect(spreadFraction('team-a')).toBe(spreadFraction('team-a')));
});

describe('decideRotation', () => {
  const due = rotationDueAt(t0, policy.intervalMs, 'team-a');
  it.each([
    { name: 'no credential: mint', now: t0, issuedAt: undefined, want: 'mint' },
    { name: 'unreadable issue time: mint', now: t0, issuedAt: new Date('nonsense'), want: 'mint' },
    { name: 'fresh: keep', now: at(hour), issuedAt: t0, want: 'keep' },
    { name: 'just before due: keep', now: new Date(due.getTime() - 1), issuedAt: t0, want: 'keep' },
    { name: 'due: rotate', now: due, issuedAt: t0, want: 'rotate' },
    { name: 'long overdue: rotate', now: at(5 * policy.intervalMs), issuedAt: t0, want: 'rotate' },
  ])('$name', ({ now, issuedAt, want }) =>
    expect(decideRotation(now, issuedAt, 'team-a', policy).action).toBe(want),
  );

  it('keeps the old credential valid for the grace period', () => {
    const d = decideRotation(due, t0, 'team-a', policy);
    expect(d.action === 'rotate' && d.oldNotAfter).toEqual(new Date(due.getTime() + policy.gracePeriodMs));
  });
});

describe('rotationOverdue', () => {
  it.each([
    { late: 0, want: false },
    { late: 12 * 60_000, want: false },
    { late: 12 * 60_000 + 1, want: true },
  ])('$late ms late: $want', ({ late, want }) =>
    expect(rotationOverdue(new Date(t0.getTime() + late), t0, policy.gracePeriodMs)).toBe(want),
  );
});
