import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import type { GCStatus } from './procedure.ts';
import { triggerOf, withNextRunTime, type TriggerDecision } from './trigger.ts';

const NOW = new Date('2030-01-06T03:00:10.000Z'); // a Sunday, just after 03:00
const registry = (schedule?: string, request?: string): Registry =>
  ({
    metadata: {
      name: 'main',
      namespace: 'registry-system',
      ...(request ? { annotations: { 'berth.dev/gc-requested-at': request } } : {}),
    },
    spec: { storage: {}, ...(schedule ? { garbageCollection: { schedule } } : {}) },
  }) as Registry;

describe('triggerOf', () => {
  it.each<[string, Registry, GCStatus, TriggerDecision]>([
    ['no schedule, no request: nothing', registry(), {}, {}],
    [
      'a schedule first seen: its next time, not due',
      registry('0 3 * * 0'),
      {},
      { nextRunTime: '2030-01-13T03:00:00.000Z' },
    ],
    [
      'a recorded time passed: due, and the next one',
      registry('0 3 * * 0'),
      { nextRunTime: '2030-01-06T03:00:00.000Z' },
      { trigger: { kind: 'Schedule' }, nextRunTime: '2030-01-13T03:00:00.000Z' },
    ],
    [
      'a new request wins over a due schedule',
      registry('0 3 * * 0', 'r2'),
      { nextRunTime: '2030-01-06T03:00:00.000Z', handledRequest: 'r1' },
      { trigger: { kind: 'OnDemand', request: 'r2' }, nextRunTime: '2030-01-13T03:00:00.000Z' },
    ],
    ['a request already handled: nothing', registry(undefined, 'r1'), { handledRequest: 'r1' }, {}],
  ])('%s', (_name, r, current, want) => {
    expect(triggerOf(r, current, NOW)).toEqual(want);
  });

  it('an invalid schedule: its problem, no next time, and a request still counts', () => {
    const d = triggerOf(registry('every sunday', 'r1'), {}, NOW);
    expect(d.trigger).toEqual({ kind: 'OnDemand', request: 'r1' });
    expect(d.nextRunTime).toBeUndefined();
    expect(d.scheduleProblem).toMatch(/must have five fields/);
  });
});

describe('withNextRunTime', () => {
  it.each<[string, GCStatus, string | undefined, GCStatus]>([
    ['set', { phase: 'Pending' }, 't2', { phase: 'Pending', nextRunTime: 't2' }],
    ['replaced', { nextRunTime: 't1' }, 't2', { nextRunTime: 't2' }],
    [
      'removed without a schedule',
      { phase: 'Succeeded', nextRunTime: 't1' },
      undefined,
      { phase: 'Succeeded' },
    ],
  ])('%s', (_name, status, next, want) => {
    expect(withNextRunTime(status, next)).toEqual(want);
  });
});
