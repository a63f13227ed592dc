import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { isFinished, jobState, terminationMessage } from './state.ts';

const job = (conditions: k8s.V1JobCondition[]): k8s.V1Job => ({ status: { conditions } });
const cond = (type: string, status = 'True', reason?: string, message?: string) =>
  ({ type, status, reason, message }) as k8s.V1JobCondition;

describe('jobState', () => {
  it.each([
    ['absent', undefined, { state: 'Absent' }, false],
    ['no conditions', job([]), { state: 'Running' }, false],
    ['suspended only', job([cond('Suspended')]), { state: 'Running' }, false],
    ['complete', job([cond('SuccessCriteriaMet'), cond('Complete')]), { state: 'Succeeded' }, true],
    ['complete=False is not complete', job([cond('Complete', 'False')]), { state: 'Running' }, false],
    [
      'failed with reason and message',
      job([cond('Failed', 'True', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit')]),
      { state: 'Failed', message: 'BackoffLimitExceeded: Job has reached the specified backoff limit' },
      true,
    ],
    ['failed bare', job([cond('Failed')]), { state: 'Failed', message: 'the Job failed' }, true],
  ])('%s', (_n, j, state, finished) => {
    expect(jobState(j)).toEqual(state);
    expect(isFinished(j)).toBe(finished);
  });
});

describe('terminationMessage', () => {
  const pod = (message: string | undefined, finishedAt: string): k8s.V1Pod => ({
    status: {
      containerStatuses: [
        {
          name: 'c',
          image: 'i',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, message, finishedAt: new Date(finishedAt) } },
        },
      ],
    },
  });
  it('takes the last finished pod with a message', () => {
    expect(terminationMessage([pod('b', '2030-01-01T00:02:00Z'), pod('a', '2030-01-01T00:01:00Z')])).toBe(
      'b',
    );
    expect(terminationMessage([pod(undefined, '2030-01-01T00:02:00Z')])).toBeUndefined();
    expect(terminationMessage([])).toBeUndefined();
  });
});
