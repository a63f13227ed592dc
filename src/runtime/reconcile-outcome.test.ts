import { describe, expect, test } from '@jest/globals';
import { afterFailure, afterSuccess, type OutcomeLog, type QueueAction } from './reconcile-outcome.ts';

describe('afterSuccess', () => {
  test.each<[string, { requeueAfterMs?: number } | undefined, string, QueueAction]>([
    ['nothing returned', undefined, 'success', { kind: 'forget' }],
    ['no requeue asked', {}, 'success', { kind: 'forget' }],
    ['a requeue', { requeueAfterMs: 5_000 }, 'requeue', { kind: 'requeue', afterMs: 5_000 }],
    ['a requeue of 0 ms', { requeueAfterMs: 0 }, 'requeue', { kind: 'requeue', afterMs: 0 }],
    ['a negative requeue is ignored', { requeueAfterMs: -1 }, 'success', { kind: 'forget' }],
  ])('%s', (_what, out, result, queue) => {
    const decision = afterSuccess(out);
    expect(decision.result).toBe(result);
    expect(decision.queue).toEqual(queue);
    expect(decision.event).toBeUndefined();
    expect(decision.log()).toEqual({
      level: 'debug',
      message: 'Reconciled object',
      fields: { requeueAfterMs: out?.requeueAfterMs },
    });
  });
});

describe('afterFailure', () => {
  const backoff = { delayMs: 1234.6, retries: 3 };
  test.each<[string, Parameters<typeof afterFailure>[0], string, QueueAction, OutcomeLog]>([
    [
      'terminal: forgotten, not retried',
      { kind: 'terminal', reason: 'BadSpec', message: 'fix it' },
      'terminal',
      { kind: 'forget' },
      {
        level: 'error',
        message: 'Reconcile failed and will not be retried until the object changes',
        fields: { reason: 'BadSpec', error: 'fix it' },
      },
    ],
    [
      'terminal with a recheck: looked at again after it',
      { kind: 'terminal', reason: 'SecretNotOwned', message: 'not ours', recheckAfterMs: 60_000 },
      'terminal',
      { kind: 'requeue', afterMs: 60_000 },
      {
        level: 'error',
        message: 'Reconcile failed; it is looked at again later, or when the object changes',
        fields: { reason: 'SecretNotOwned', error: 'not ours', recheckAfterMs: 60_000 },
      },
    ],
    [
      'waiting: requeued after its delay',
      { kind: 'waiting', reason: 'NotReady', message: 'later', retryAfterMs: 10_000 },
      'waiting',
      { kind: 'requeue', afterMs: 10_000 },
      {
        level: 'info',
        message: 'Reconcile is waiting',
        fields: { reason: 'NotReady', message: 'later', retryAfterMs: 10_000 },
      },
    ],
    [
      'conflict: backs off quietly',
      { kind: 'conflict', message: '409' },
      'conflict',
      { kind: 'backoff' },
      {
        level: 'info',
        message: 'Reconcile met a conflicting write; retrying',
        fields: { error: '409', retryInMs: 1235 },
      },
    ],
    [
      'fenced: backs off, nothing written',
      { kind: 'fenced', message: 'not sent' },
      'fenced',
      { kind: 'backoff' },
      {
        level: 'info',
        message: 'Reconcile stopped: this replica may no longer hold the leader Lease; nothing was written',
        fields: { error: 'not sent', retryInMs: 1235 },
      },
    ],
    [
      'anything else: backs off, an error',
      { kind: 'error', message: 'boom' },
      'error',
      { kind: 'backoff' },
      {
        level: 'error',
        message: 'Reconcile failed; retrying with backoff',
        fields: { error: 'boom', retries: 3, retryInMs: 1235 },
      },
    ],
  ])('%s', (_what, outcome, result, queue, log) => {
    const decision = afterFailure(outcome);
    expect(decision.result).toBe(result);
    expect(decision.queue).toEqual(queue);
    expect(decision.log(backoff)).toEqual(log);
  });

  test('only a terminal error sends an Event', () => {
    expect(afterFailure({ kind: 'terminal', reason: 'BadSpec', message: 'fix it' }).event).toEqual({
      reason: 'BadSpec',
      message: 'fix it',
    });
    expect(
      afterFailure({ kind: 'waiting', reason: 'R', message: 'm', retryAfterMs: 1 }).event,
    ).toBeUndefined();
    expect(afterFailure({ kind: 'error', message: 'boom' }).event).toBeUndefined();
  });
});
