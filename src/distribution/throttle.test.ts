import { describe, expect, test } from '@jest/globals';
import { createThrottle, retryableStatus, retryAfterMs, retryDelay } from './throttle.ts';

const now = Date.parse('2025-06-01T12:00:00Z');

describe('retryAfterMs', () => {
  test.each<[string, string | string[] | undefined, number | undefined]>([
    ['absent', undefined, undefined],
    ['empty', '', undefined],
    ['delta-seconds', '3', 3000],
    ['zero seconds', '0', 0],
    ['padded', ' 2 ', 2000],
    ['the first of repeated headers', ['5', '9'], 5000],
    ['an HTTP date in the future', 'Sun, 01 Jun 2025 12:00:07 GMT', 7000],
    ['an HTTP date in the past is no wait', 'Sun, 01 Jun 2025 11:00:00 GMT', 0],
    ['a negative number is unreadable', '-1', undefined],
    ['a fraction is unreadable', '1.5', undefined],
    ['garbage', 'soon', undefined],
  ])('%s', (_name, header, expected) => expect(retryAfterMs(header, now)).toBe(expected));
});

describe('retryDelay', () => {
  const options = { baseMs: 200, maxMs: 60_000 };
  test.each<[string, number, number | undefined, number, { ms: number; source: string }]>([
    ['Retry-After is taken as said', 1, 3000, 0.9, { ms: 3000, source: 'retry-after' }],
    ['Retry-After 0: at once', 3, 0, 0.9, { ms: 0, source: 'retry-after' }],
    ['Retry-After beyond the cap is capped', 1, 600_000, 0, { ms: 60_000, source: 'retry-after' }],
    ['no Retry-After, first retry, least jitter', 1, undefined, 0, { ms: 100, source: 'backoff' }],
    ['no Retry-After, first retry, most jitter', 1, undefined, 1, { ms: 200, source: 'backoff' }],
    ['no Retry-After, doubled per attempt', 4, undefined, 1, { ms: 1600, source: 'backoff' }],
    ['no Retry-After, capped', 20, undefined, 1, { ms: 60_000, source: 'backoff' }],
  ])('%s', (_name, attempt, retryAfter, random, expected) =>
    expect(retryDelay(attempt, retryAfter, options, random)).toEqual(expected),
  );
});

describe('retryableStatus', () => {
  test.each([
    [200, false],
    [202, false],
    [400, false],
    [401, false],
    [404, false],
    [429, true],
    [500, true],
    [503, true],
  ])('%d → %s', (status, expected) => expect(retryableStatus(status)).toBe(expected));
});

/** A clock that moves only when the throttle sleeps, and a record of the sleeps. */
function fakeTime(start = 1_000) {
  let t = start;
  const sleeps: number[] = [];
  const hooks: (() => void)[] = [];
  return {
    clock: { now: () => t },
    sleeps,
    /** Runs once, during the next sleep (as if something happened while it waited). */
    duringNextSleep: (fn: () => void) => hooks.push(fn),
    sleep: async (ms: number) => {
      sleeps.push(ms);
      const until = t + ms;
      hooks.shift()?.();
      await Promise.resolve();
      t = Math.max(t, until);
    },
    advance: (ms: number) => (t += ms),
  };
}

describe('createThrottle', () => {
  test.each<
    [string, (th: ReturnType<typeof createThrottle>, time: ReturnType<typeof fakeTime>) => void, number[]]
  >([
    ['no pause: no wait', () => undefined, []],
    ['a pause: waits until it ends', (th, time) => th.pauseUntil(time.clock.now() + 2000), [2000]],
    ['a pause already over: no wait', (th, time) => th.pauseUntil(time.clock.now() - 1), []],
    [
      'a later pause extends, an earlier one does not shorten',
      (th, time) => {
        th.pauseUntil(time.clock.now() + 2000);
        th.pauseUntil(time.clock.now() + 5000);
        th.pauseUntil(time.clock.now() + 1000);
      },
      [5000],
    ],
    [
      'part of the pause has passed: waits the rest',
      (th, time) => {
        th.pauseUntil(time.clock.now() + 3000);
        time.advance(1000);
      },
      [2000],
    ],
  ])('%s', async (_name, setup, expectedSleeps) => {
    const time = fakeTime();
    const throttle = createThrottle(time);
    setup(throttle, time);
    await throttle.ready();
    expect(time.sleeps).toEqual(expectedSleeps);
    expect(time.clock.now()).toBeGreaterThanOrEqual(throttle.pausedUntil);
  });

  test('a pause extended while a request waits: it waits again for the rest', async () => {
    const time = fakeTime();
    const throttle = createThrottle(time);
    throttle.pauseUntil(time.clock.now() + 1000);
    time.duringNextSleep(() => throttle.pauseUntil(time.clock.now() + 4000)); // another 429 meanwhile
    await throttle.ready();
    expect(time.sleeps).toEqual([1000, 3000]);
    expect(throttle.stats).toEqual({ pauses: 2, waitedMs: 4000 });
  });

  test('every waiter waits for the same pause', async () => {
    const time = fakeTime();
    const throttle = createThrottle(time);
    throttle.pauseUntil(time.clock.now() + 1500);
    await Promise.all([throttle.ready(), throttle.ready(), throttle.ready()]);
    expect(time.sleeps).toEqual([1500, 1500, 1500]);
  });
});
