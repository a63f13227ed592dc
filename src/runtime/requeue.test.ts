import { describe, expect, test } from '@jest/globals';
import { lowestRequeue, maxRequeueMs } from './requeue.ts';

describe('lowestRequeue', () => {
  test.each([
    ['nothing', [], undefined],
    ['only steps with nothing to wait for', [undefined, {}, { requeueAfterMs: 0 }, -5], undefined],
    ['the soonest of results and numbers', [{ requeueAfterMs: 30_000 }, 5_000, undefined], 5_000],
    ['a zero beside a wait', [0, { requeueAfterMs: 7_000 }], 7_000],
    ['capped at a day', [{ requeueAfterMs: 3 * maxRequeueMs }], maxRequeueMs],
    ['NaN ignored', [Number.NaN, 2_000], 2_000],
  ] as const)('%s', (_what, results, expected) => {
    const out = lowestRequeue(results);
    expect(out?.requeueAfterMs).toBe(expected);
  });
  test('a cap of its own', () => {
    expect(lowestRequeue([60_000], 10_000)).toEqual({ requeueAfterMs: 10_000 });
  });
});
