import { reportOf } from './report.ts';

const outcome = { reason: 'PathConflict', message: 'm' };
const cond = (over: object) => ({
  type: 'Ready',
  status: 'False' as const,
  reason: 'PathConflict',
  message: 'm',
  observedGeneration: 2,
  lastTransitionTime: '2026-01-01T00:00:00Z',
  ...over,
});
const object = (generation: number, conditions: object[] = [], status: object = {}) => ({
  metadata: { name: 'a', namespace: 'n', generation },
  status: { ...status, conditions },
});
const now = Date.parse('2026-06-01T00:00:00Z');

describe('reportOf: a problem gets its Warning once', () => {
  test.each([
    ['no condition yet', object(2), true],
    ['the same problem at the same generation', object(2, [cond({})]), false],
    ['a new generation', object(3, [cond({})]), true],
    ['another reason', object(2, [cond({ reason: 'InvalidPath' })]), true],
    ['another message', object(2, [cond({ message: 'n' })]), true],
    ['Ready was True', object(2, [cond({ status: 'True' })]), true],
  ])('%s', (_name, obj, isNew) => {
    expect(reportOf(obj, outcome, 'Ready', now).isNew).toBe(isNew);
  });
});

describe('reportOf: the status written', () => {
  test('the condition False with the reason, observedGeneration, the fields carried, the rest kept', () => {
    const other = { ...cond({ type: 'Degraded', status: 'False', reason: 'AsExpected' }) };
    const { status } = reportOf(
      object(4, [other, cond({ status: 'True', reason: 'Claimed' })], { tags: 3, url: 'old' }),
      { ...outcome, status: { url: 'new' } },
      'Ready',
      now,
    );
    expect(status).toEqual({
      tags: 3,
      url: 'new',
      observedGeneration: 4,
      conditions: [
        other,
        {
          type: 'Ready',
          status: 'False',
          reason: 'PathConflict',
          message: 'm',
          observedGeneration: 4,
          lastTransitionTime: '2026-06-01T00:00:00Z',
        },
      ],
    });
  });

  test('another condition type when the controller names one', () => {
    const { status } = reportOf(object(1), outcome, 'Synced', now);
    expect((status.conditions as { type: string }[]).map((c) => c.type)).toEqual(['Synced']);
  });
});
