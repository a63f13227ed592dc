import { describe, expect, it } from '@jest/globals';
import { readConditions, setCondition, type Condition } from './conditions.ts';

const t0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const t1 = t0 + 60_000;

describe('setCondition', () => {
  const ready: Condition = {
    type: 'Ready',
    status: 'False',
    reason: 'Progressing',
    message: 'starting',
    observedGeneration: 1,
    lastTransitionTime: '2030-01-01T12:00:00Z',
  };
  const cases: {
    name: string;
    before: Condition[];
    update: Parameters<typeof setCondition>[1];
    gen: number;
    want: Condition[];
  }[] = [
    {
      name: 'adds a new type with the current time',
      before: [],
      update: { type: 'Ready', status: 'True', reason: 'Available' },
      gen: 2,
      want: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Available',
          message: '',
          observedGeneration: 2,
          lastTransitionTime: '2030-01-01T12:01:00Z',
        },
      ],
    },
    {
      name: 'keeps the transition time when only reason, message and generation change',
      before: [ready],
      update: { type: 'Ready', status: 'False', reason: 'Waiting', message: 'still starting' },
      gen: 3,
      want: [{ ...ready, reason: 'Waiting', message: 'still starting', observedGeneration: 3 }],
    },
    {
      name: 'moves the transition time when the status flips',
      before: [ready],
      update: { type: 'Ready', status: 'True', reason: 'Available', message: 'up' },
      gen: 1,
      want: [
        {
          ...ready,
          status: 'True',
          reason: 'Available',
          message: 'up',
          lastTransitionTime: '2030-01-01T12:01:00Z',
        },
      ],
    },
  ];
  it.each(cases)('$name', ({ before, update, gen, want }) => {
    expect(setCondition(before, update, gen, t1)).toEqual(want);
  });

  it('leaves other condition types in place', () => {
    const other: Condition = { ...ready, type: 'StorageReady' };
    const got = setCondition([other, ready], { type: 'Ready', status: 'True', reason: 'Ok' }, 1, t1);
    expect(got.map((c) => c.type)).toEqual(['StorageReady', 'Ready']);
    expect(got[0]).toBe(other);
  });
});

describe('readConditions', () => {
  it.each([
    ['no status', undefined],
    ['a string status', 'garbage'],
    ['conditions that are not a list', { conditions: 'nope' }],
    [
      'entries of the wrong shape',
      { conditions: [42, null, { type: 'Ready', status: 'Maybe', lastTransitionTime: 'x' }] },
    ],
  ])('tolerates %s', (_name, status) => {
    expect(readConditions(status)).toEqual([]);
  });

  it('keeps the well-formed entries', () => {
    const good = {
      type: 'Ready',
      status: 'True',
      reason: 'Ok',
      message: '',
      lastTransitionTime: '2030-01-01T00:00:00Z',
    };
    expect(readConditions({ conditions: [good, 'junk'] })).toEqual([good]);
  });
});
