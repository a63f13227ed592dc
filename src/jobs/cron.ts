// Schedules: five-field cron expressions evaluated in UTC (cron-parser), and the "next run" rule
// that both the garbage collection and the RetentionPolicy controller use.
import { CronExpressionParser } from 'cron-parser';

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

/** The first fire time of `schedule` strictly after `after`. Throws ScheduleError when invalid. */
export function nextFireTime(schedule: string, after: Date): Date {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new ScheduleError(`schedule "${schedule}" must have five fields (minute hour day month weekday)`);
  }
  try {
    const expr = CronExpressionParser.parse(fields.join(' '), { currentDate: after, tz: 'UTC' });
    return expr.next().toDate();
  } catch (err) {
    throw new ScheduleError(
      `schedule "${schedule}" is not a valid cron expression: ${(err as Error).message}`,
    );
  }
}

export interface ScheduleDecision {
  /** A run is due now. */
  due: boolean;
  /** What status.nextRunTime should say after this decision. */
  nextRunTime: Date;
}

/**
 * Whether a scheduled run is due. `recorded` is status.nextRunTime. A recorded time that is not a
 * fire time of the current schedule (the schedule changed) is recomputed from now, without running:
 * a schedule change never starts a run by itself. A recorded time in the past is due (once, however
 * many fire times were missed while the operator was down), and the next one is computed from now.
 */
export function scheduleDecision(
  schedule: string,
  recorded: string | undefined,
  now: Date,
): ScheduleDecision {
  const recordedTime = recorded ? new Date(recorded) : undefined;
  const valid =
    recordedTime !== undefined &&
    !Number.isNaN(recordedTime.getTime()) &&
    nextFireTime(schedule, new Date(recordedTime.getTime() - 1000)).getTime() === recordedTime.getTime();
  const next = nextFireTime(schedule, now);
  // A recorded time still ahead must be the schedule's next one: a schedule changed to a more
  // frequent one (whose times include the old one) is recomputed too.
  if (!valid || (recordedTime.getTime() > now.getTime() && recordedTime.getTime() !== next.getTime())) {
    return { due: false, nextRunTime: next };
  }
  if (recordedTime.getTime() <= now.getTime()) return { due: true, nextRunTime: next };
  return { due: false, nextRunTime: recordedTime };
}
