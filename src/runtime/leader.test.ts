import { describe, expect, test } from '@jest/globals';
import { leaseSpecFor, microTime, nextLeaseSpec, type LeaseSpec } from './leader.ts';

const now = Date.parse('2025-06-01T12:00:00.000Z');
const s = 1000;
const earlier = microTime(now - 3600 * s);

describe('leaseSpecFor', () => {
  test('a fresh Lease for the identity', () => {
    expect(leaseSpecFor('me', 15_500, now)).toStrictEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 16,
      acquireTime: '2025-06-01T12:00:00.000000Z',
      renewTime: '2025-06-01T12:00:00.000000Z',
      leaseTransitions: 0,
    });
  });
});

describe('nextLeaseSpec', () => {
  const held = (holder: string, transitions = 2): LeaseSpec => ({
    holderIdentity: holder,
    leaseDurationSeconds: 15,
    acquireTime: earlier,
    renewTime: earlier,
    leaseTransitions: transitions,
  });
  test.each<[string, LeaseSpec, number, Partial<LeaseSpec> | undefined]>([
    ['another holder, seen changing 5 s ago: not ours', held('other'), now - 5 * s, undefined],
    ['another holder, seen 14.999 s ago: not yet', held('other'), now - 14_999, undefined],
    [
      'another holder, unchanged for the lease duration: taken, a transition',
      held('other'),
      now - 15 * s,
      { acquireTime: microTime(now), leaseTransitions: 3 },
    ],
    [
      'released (no holder): taken at once',
      held(''),
      now,
      { acquireTime: microTime(now), leaseTransitions: 3 },
    ],
    ['an empty spec: taken', {}, now, { acquireTime: microTime(now), leaseTransitions: 1 }],
    [
      'ours: renewed, acquire time and transitions kept',
      held('me'),
      now,
      { acquireTime: earlier, leaseTransitions: 2 },
    ],
    [
      'ours without an acquire time: now',
      { holderIdentity: 'me' },
      now,
      { acquireTime: microTime(now), leaseTransitions: 0 },
    ],
  ])('%s', (_what, current, observedAt, expected) => {
    const next = nextLeaseSpec(current, observedAt, 'me', 15 * s, now);
    if (expected === undefined) return expect(next).toBeUndefined();
    expect(next).toStrictEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      renewTime: microTime(now),
      ...expected,
    });
  });
});
