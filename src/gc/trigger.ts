// What starts a garbage collection now, pure and clock-injected: a new on-demand request (the
// annotation berth.dev/gc-requested-at, not yet in status.garbageCollection.handledRequest) wins
// over a due schedule (spec.garbageCollection.schedule); both start the same procedure.
import type { Registry } from '../api/index.ts';
import { scheduleDecision, ScheduleError } from '../jobs/cron.ts';
import { gcRequestAnnotation } from '../model/maintenance.ts';
import type { GCStatus, Observed } from './procedure.ts';

export interface TriggerDecision {
  trigger?: Observed['trigger'];
  /** What status.garbageCollection.nextRunTime should say (none without a valid schedule). */
  nextRunTime?: string;
  /** Why the schedule is invalid, for a Warning (the on-demand request still counts). */
  scheduleProblem?: string;
}

export function triggerOf(registry: Registry, current: GCStatus, now: Date): TriggerDecision {
  const out: TriggerDecision = {};
  const schedule = registry.spec.garbageCollection?.schedule;
  if (schedule) {
    try {
      const d = scheduleDecision(schedule, current.nextRunTime, now);
      out.nextRunTime = d.nextRunTime.toISOString();
      if (d.due) out.trigger = { kind: 'Schedule' };
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      out.scheduleProblem = err.message;
    }
  }
  const request = registry.metadata?.annotations?.[gcRequestAnnotation];
  if (request && request !== current.handledRequest) out.trigger = { kind: 'OnDemand', request };
  return out;
}

/** The status to write: the procedure's, with the schedule's next run time (or none). */
export function withNextRunTime(status: GCStatus, nextRunTime: string | undefined): GCStatus {
  const out: GCStatus = { ...status };
  if (nextRunTime) out.nextRunTime = nextRunTime;
  else delete out.nextRunTime;
  return out;
}
