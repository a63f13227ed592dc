import { describe, expect, test } from '@jest/globals';
import type { ExecutionResult, Outcome } from './execute.ts';
import type { Plan } from './model.ts';
import { failedSummary, runSummary, type RunFacts } from './run-summary.ts';

const times = { startTime: '2025-06-01T12:00:00.000Z', completionTime: '2025-06-01T12:01:00.000Z' };

function plan(over: Partial<Plan> = {}): Plan {
  return {
    entries: [],
    deletions: [],
    counts: { evaluated: 10, deleted: 4, kept: 5, protected: 1 },
    wouldDelete: 4,
    refused: false,
    ...over,
  };
}

const executed = (...outcomes: Outcome[]): ExecutionResult => ({
  outcomes: new Map(outcomes.map((o, i) => [`app@sha256:${i}`, o])),
});

const facts = (over: Partial<RunFacts> = {}): RunFacts => ({
  mode: 'Enforce',
  plan: plan(),
  applied: { deleted: 4, kept: 5 },
  execution: undefined,
  repositories: 3,
  ...times,
  ...over,
});

describe('runSummary', () => {
  test.each<[string, RunFacts, string, string]>([
    [
      'a dry run',
      facts({ mode: 'DryRun' }),
      'Succeeded',
      'DryRun: would delete 4 of 10 entries in 3 repositories',
    ],
    [
      'an enforcing run',
      facts({ execution: executed({ status: 'deleted' }) }),
      'Succeeded',
      'Enforce: deleted 4 of 10 entries in 3 repositories',
    ],
    [
      'skipped deletions',
      facts({
        applied: { deleted: 2, kept: 7 },
        execution: executed(
          { status: 'deleted' },
          { status: 'skipped', reason: 'moved' },
          { status: 'skipped', reason: 'moved' },
        ),
      }),
      'Succeeded',
      'Enforce: deleted 2 of 10 entries in 3 repositories; 2 deletions skipped (a tag moved, or points to it since the plan)',
    ],
    [
      'failed deletions: Failed, with the first reason',
      facts({
        applied: { deleted: 2, kept: 7 },
        execution: executed(
          { status: 'skipped', reason: 'moved' },
          { status: 'failed', reason: '500 one' },
          { status: 'failed', reason: '500 two' },
        ),
      }),
      'Failed',
      'Enforce: deleted 2 of 10 entries in 3 repositories; 1 deletions skipped (a tag moved, or points to it since the plan); 2 deletions failed, first: 500 one',
    ],
    [
      'refused by the circuit breaker',
      facts({ plan: plan({ refused: true, refusedReason: 'TooManyDeletions: no' }) }),
      'Refused',
      'TooManyDeletions: no',
    ],
    ['refused without a reason', facts({ plan: plan({ refused: true }) }), 'Refused', 'refused'],
  ])('%s', (_what, f, result, message) => {
    const summary = runSummary(f);
    expect(summary.result).toBe(result);
    expect(summary.message).toBe(message);
  });

  test('the counts, in summary.json order', () => {
    const summary = runSummary(
      facts({ plan: plan({ refused: true, refusedReason: 'TooManyDeletions: no' }) }),
    );
    expect(Object.keys(summary)).toEqual([
      'mode',
      'evaluated',
      'deleted',
      'kept',
      'protected',
      'refused',
      'refusedReason',
      'startTime',
      'completionTime',
      'result',
      'message',
    ]);
    expect(summary).toMatchObject({
      evaluated: 10,
      deleted: 4,
      kept: 5,
      protected: 1,
      refused: true,
      ...times,
    });
    expect(runSummary(facts())).not.toHaveProperty('refusedReason');
  });
});

describe('failedSummary', () => {
  test('counts nothing', () => {
    expect(failedSummary('DryRun', times.startTime, times.completionTime, 'boom')).toStrictEqual({
      mode: 'DryRun',
      evaluated: 0,
      deleted: 0,
      kept: 0,
      protected: 0,
      refused: false,
      ...times,
      result: 'Failed',
      message: 'boom',
    });
  });
});
