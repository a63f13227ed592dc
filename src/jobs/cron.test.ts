import { describe, expect, it } from '@jest/globals';
import { nextFireTime, scheduleDecision, ScheduleError } from './cron.ts';

const t = (iso: string) => new Date(iso);

describe('nextFireTime', () => {
  it.each([
    ['0 3 * * 0', '2030-01-01T00:00:00Z', '2030-01-06T03:00:00.000Z'], // 2030-01-01 is a Tuesday
    ['*/15 * * * *', '2030-01-01T00:07:00Z', '2030-01-01T00:15:00.000Z'],
    ['0 2 * * *', '2030-01-01T02:00:00Z', '2030-01-02T02:00:00.000Z'], // strictly after
    ['30 1 1 JAN *', '2030-06-01T00:00:00Z', '2031-01-01T01:30:00.000Z'],
  ])('%s after %s is %s (UTC)', (schedule, after, expected) => {
    expect(nextFireTime(schedule, t(after)).toISOString()).toBe(expected);
  });

  it.each(['@daily', '0 0 3 * * 0', '61 * * * *', 'nonsense'])('refuses %s', (schedule) => {
    expect(() => nextFireTime(schedule, t('2030-01-01T00:00:00Z'))).toThrow(ScheduleError);
  });
});

describe('scheduleDecision', () => {
  const now = t('2030-01-01T10:30:00Z');
  it.each([
    ['no recorded time: schedule the next, do not run', undefined, false, '2030-01-01T11:00:00.000Z'],
    ['recorded in the future: wait', '2030-01-01T11:00:00.000Z', false, '2030-01-01T11:00:00.000Z'],
    [
      'recorded and passed: run, then the next from now',
      '2030-01-01T10:00:00.000Z',
      true,
      '2030-01-01T11:00:00.000Z',
    ],
    ['many missed: run once', '2029-12-01T10:00:00.000Z', true, '2030-01-01T11:00:00.000Z'],
    [
      'recorded time not of this schedule (changed): recompute, no run',
      '2030-01-01T10:17:00.000Z',
      false,
      '2030-01-01T11:00:00.000Z',
    ],
    [
      'schedule made more frequent (old time still a fire time, but not the next): recompute',
      '2030-01-01T13:00:00.000Z',
      false,
      '2030-01-01T11:00:00.000Z',
    ],
    ['garbage: recompute', 'yesterday', false, '2030-01-01T11:00:00.000Z'],
  ])('%s', (_name, recorded, due, next) => {
    const d = scheduleDecision('0 * * * *', recorded, now);
    expect(d.due).toBe(due);
    expect(d.nextRunTime.toISOString()).toBe(next);
  });
});
