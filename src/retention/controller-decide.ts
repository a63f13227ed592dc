// The RetentionPolicy controller's decisions, pure and clock-injected: when a run is due (schedule,
// or the annotation berth.dev/run-requested-at), whether it may start (no two runs of one policy at
// once; never during a garbage collection of its Registry), what the last finished run reported,
// and which old Jobs and reports go (bounded history).
import type {
  RetentionPolicy,
  RetentionPolicyStatusLastRun as LastRun,
} from '../api/generated/retentionpolicy.ts';
import type { ConditionInput } from '../model/status.ts';
import { readConditions, setCondition } from '../runtime/conditions.ts';
import { scheduleDecision, ScheduleError } from '../jobs/cron.ts';
import type { JobState } from '../jobs/state.ts';

/** On demand: a value (RFC 3339, by convention the current time) newer than the last run's start. */
export const runRequestAnnotation = 'berth.dev/run-requested-at';
/** Runs (Jobs and their reports) kept per policy. */
export const historyLimit = 3;

export interface RunView {
  /** The Job's name. */
  job: string;
  /** The report ConfigMap it writes (annotation berth.dev/report-configmap). */
  report: string;
  /** When the Job was created. */
  created: string;
  state: JobState;
}

/** `summary.json` of a report, as the retention run writes it. */
export interface RunSummary {
  mode?: string;
  evaluated?: number;
  deleted?: number;
  kept?: number;
  protected?: number;
  refusedReason?: string;
  startTime?: string;
  completionTime?: string;
  result?: 'Succeeded' | 'Refused' | 'Failed';
  message?: string;
}

export function parseSummary(text: string | undefined): RunSummary | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null) return undefined;
    const out: RunSummary = {};
    for (const k of ['evaluated', 'deleted', 'kept', 'protected'] as const) {
      if (typeof v[k] === 'number' && Number.isInteger(v[k]) && v[k] >= 0) out[k] = v[k];
    }
    for (const k of ['mode', 'refusedReason', 'startTime', 'completionTime', 'message'] as const) {
      if (typeof v[k] === 'string') out[k] = v[k];
    }
    if (v.result === 'Succeeded' || v.result === 'Refused' || v.result === 'Failed') out.result = v.result;
    return out;
  } catch {
    return undefined;
  }
}

export interface Observed {
  now: Date;
  /** The Registry exists (in the cache). */
  registryFound: boolean;
  /** Why a run may not start now (a garbage collection), if so. */
  blockedBy?: string;
  /** This policy's Jobs, any order. */
  runs: RunView[];
  /** The summary of `unrecordedRun`'s report (undefined: missing or unreadable). */
  summary?: RunSummary;
  /** Why runs cannot work on this Registry at all (emptyDir storage, ...): refused up front. */
  unsupported?: string;
  /** For a failed `unrecordedRun`: its container's termination message (see `failureDetail`). */
  failure?: string;
}

/**
 * A failed Job container's termination message as the policy's status may show it: the file the
 * run wrote (one line), or the tail of its logs (FallbackToLogsOnError), where the error is last.
 * Whitespace collapsed, at most `max` characters (the end kept). The run never logs a secret.
 */
export function failureDetail(text: string | undefined, max = 600): string | undefined {
  if (!text) return undefined;
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const one = lines.slice(-3).join(' / ').replace(/\s+/g, ' ');
  if (!one) return undefined;
  return one.length > max ? `…${one.slice(one.length - max + 1)}` : one;
}

export type Action =
  | { kind: 'createJob'; job: string; report: string; mode: string }
  | { kind: 'deleteJob'; job: string }
  | { kind: 'deleteReport'; report: string }
  | { kind: 'event'; type: 'Normal' | 'Warning'; reason: string; message: string };

export interface Decision {
  lastRun?: LastRun;
  nextRunTime?: string;
  ready: ConditionInput;
  actions: Action[];
  requeueAfterMs: number;
}

const newestFirst = (runs: RunView[]) =>
  [...runs].sort((a, b) => b.created.localeCompare(a.created) || b.job.localeCompare(a.job));
const finishedRun = (r: RunView) => r.state.state === 'Succeeded' || r.state.state === 'Failed';

/** The newest finished run not yet in status.lastRun: the controller reads its report for `decide`. */
export function unrecordedRun(policy: RetentionPolicy, runs: RunView[]): RunView | undefined {
  const newest = newestFirst(runs).find(finishedRun);
  const last = policy.status?.lastRun;
  if (!newest || (last?.report === newest.report && last.completionTime)) return undefined;
  return newest;
}

const short = (s: string, n: number) =>
  s
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, n)
    .replace(/-+$/, '');

/** Job and report names for a run started at `now`: unique per policy and second, ≤ 63 characters. */
export function runNames(
  policy: { name: string; namespace: string },
  now: Date,
): { job: string; report: string } {
  const stamp = Math.floor(now.getTime() / 1000).toString(36);
  let h = 0;
  for (const c of `${policy.namespace}/${policy.name}`) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const ns = h.toString(36).padStart(7, '0').slice(0, 7);
  return {
    job: `retention-${short(policy.name, 63 - 10 - 1 - 7 - 1 - stamp.length - 1)}-${ns}-${stamp}`,
    report: `${short(policy.name, 63 - 8 - stamp.length - 1)}-report-${stamp}`,
  };
}

function requestedNow(
  policy: RetentionPolicy,
  runs: RunView[],
  now: Date,
): { due: boolean; ignored?: string } {
  const value = policy.metadata?.annotations?.[runRequestAnnotation];
  if (!value) return { due: false };
  const at = Date.parse(value);
  if (Number.isNaN(at))
    return { due: false, ignored: `${runRequestAnnotation}: "${value}" is not an RFC 3339 time` };
  if (at > now.getTime() + 60_000)
    return { due: false, ignored: `${runRequestAnnotation}: ${value} is in the future` };
  // Served by any run started after it: the controller's own start time (ms), or a Job's creation
  // (whole seconds, so the end of that second).
  const starts = [
    Date.parse(policy.status?.lastRun?.startTime ?? ''),
    ...runs.map((r) => Date.parse(r.created) + 999),
  ];
  const last = Math.max(...starts.filter((t) => !Number.isNaN(t)), -Infinity);
  return { due: at > last };
}

/**
 * What the controller does for a policy now, in steps: the schedule, the newest finished run
 * recorded once (`recordNewest`), a due run started or why not (`startOrSkip`), a Warning when the
 * policy becomes unsupported, the bounded history (`historyActions`), Ready (`readyCondition`),
 * and the soonest time to look again.
 */
export function decide(policy: RetentionPolicy, o: Observed): Decision {
  const status = policy.status ?? {};
  const mode = policy.spec.mode ?? 'DryRun';
  const when = scheduled(policy, o.now);
  const request = requestedNow(policy, o.runs, o.now);
  const actions: Action[] = [];
  if (request.ignored)
    actions.push({ kind: 'event', type: 'Warning', reason: 'InvalidRunRequest', message: request.ignored });
  const wanted = when.due || request.due;
  const newest = recordNewest(policy, o);
  actions.push(...newest.actions);
  let { lastRun } = newest;
  let nextRunTime = when.nextRunTime;
  const previousReady = readConditions(policy.status).find((c) => c.type === 'Ready');
  const active = newestFirst(o.runs).filter((r) => !finishedRun(r));
  const requeue: number[] = [];
  if (wanted && !when.problem) {
    const start = startOrSkip(policy, o, active, mode);
    actions.push(start.action);
    if (start.lastRun) lastRun = start.lastRun;
    if (start.waiting) {
      // Keep the due time: the run starts when the garbage collection is over.
      nextRunTime = status.nextRunTime && when.due ? status.nextRunTime : nextRunTime;
      requeue.push(30_000);
    }
  }
  // Refused up front: once when the policy becomes unsupported (a due run adds its own Event).
  if (o.unsupported && o.registryFound && !wanted && previousReady?.reason !== 'RetentionUnsupported')
    actions.push({ kind: 'event', type: 'Warning', reason: 'RetentionUnsupported', message: o.unsupported });
  actions.push(...historyActions(o.runs));
  const ready = readyCondition(policy, o, {
    mode,
    ...(when.problem ? { scheduleProblem: when.problem } : {}),
    ...(lastRun ? { lastRun } : {}),
    ...(newest.failedNow ? { failedNow: newest.failedNow } : {}),
    ...(nextRunTime ? { nextRunTime } : {}),
    ...(previousReady ? { previousReady } : {}),
  });
  if (nextRunTime) requeue.push(Date.parse(nextRunTime) - o.now.getTime() + 500);
  if (active.length) requeue.push(60_000);
  const positive = requeue.filter((ms) => ms > 0);
  return {
    ...(lastRun ? { lastRun } : {}),
    ...(nextRunTime ? { nextRunTime } : {}),
    ready,
    actions,
    requeueAfterMs: positive.length ? Math.min(...positive) : 0,
  };
}

/** The schedule: whether a run is due now and the next run time, or why the schedule is invalid. */
function scheduled(
  policy: RetentionPolicy,
  now: Date,
): { due: boolean; nextRunTime?: string; problem?: string } {
  try {
    const d = scheduleDecision(policy.spec.schedule, policy.status?.nextRunTime, now);
    return { due: d.due, nextRunTime: d.nextRunTime.toISOString() };
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    return { due: false, problem: err.message };
  }
}

/**
 * The newest finished run not yet recorded (`unrecordedRun`): its lastRun (from its report's
 * summary, or its failure) and its Event; for a failed run, why (`failedNow`, for Ready). Without
 * one: status.lastRun as it is.
 */
function recordNewest(
  policy: RetentionPolicy,
  o: Observed,
): { lastRun?: LastRun; failedNow?: string; actions: Action[] } {
  const previous = policy.status?.lastRun ? { ...policy.status.lastRun } : undefined;
  const unrecorded = unrecordedRun(policy, o.runs);
  if (!unrecorded) return { ...(previous ? { lastRun: previous } : {}), actions: [] };
  const recorded = record(unrecorded, o.summary, o.failure, previous, o.now);
  const actions = [runEvent(recorded.lastRun, recorded.message, o.summary !== undefined)];
  if (recorded.lastRun.result !== 'Failed') return { lastRun: recorded.lastRun, actions };
  const failedNow = o.summary
    ? `${recorded.message}; report: ConfigMap ${unrecorded.report}`
    : recorded.message;
  return { lastRun: recorded.lastRun, failedNow, actions };
}

/**
 * A run is due: start it (a createJob and the new lastRun), or say why not in an Event: no
 * Registry, a Registry it cannot work on, a run of this policy still active (no two at once), or
 * a garbage collection (`waiting`: the run stays due).
 */
export function startOrSkip(
  policy: RetentionPolicy,
  o: Observed,
  active: RunView[],
  mode: string,
): { action: Action; lastRun?: LastRun; waiting?: boolean } {
  const dueAt = policy.status?.nextRunTime ?? o.now.toISOString();
  const warn = (reason: string, message: string): Action => ({
    kind: 'event',
    type: 'Warning',
    reason,
    message,
  });
  if (!o.registryFound)
    return { action: warn('RunSkipped', `the run due at ${dueAt} was skipped: the Registry does not exist`) };
  if (o.unsupported)
    return {
      action: warn('RetentionUnsupported', `the run due at ${dueAt} was not started: ${o.unsupported}`),
    };
  if (active.length > 0) {
    const message = `a run is due but ${active[0]!.job} is still running: no two runs of one policy at once`;
    return { action: { kind: 'event', type: 'Normal', reason: 'RunSkipped', message } };
  }
  if (o.blockedBy) {
    const message = `a run is due; waiting: ${o.blockedBy}`;
    return { action: { kind: 'event', type: 'Normal', reason: 'RunWaiting', message }, waiting: true };
  }
  const names = runNames(
    { name: policy.metadata?.name ?? '', namespace: policy.metadata?.namespace ?? '' },
    o.now,
  );
  return {
    action: { kind: 'createJob', job: names.job, report: names.report, mode },
    lastRun: { startTime: o.now.toISOString(), mode, report: names.report },
  };
}

/** Bounded history: the newest `historyLimit` finished runs stay with their reports; older ones go. */
function historyActions(runs: RunView[]): Action[] {
  const finished = newestFirst(runs).filter(finishedRun);
  // The report first: the Job is what lists the run, so it goes last.
  return finished.slice(historyLimit).flatMap((r): Action[] => [
    { kind: 'deleteReport', report: r.report },
    { kind: 'deleteJob', job: r.job },
  ]);
}

export interface ReadyInput {
  mode: string;
  scheduleProblem?: string;
  lastRun?: LastRun;
  /** Why the run recorded in this decision failed. */
  failedNow?: string;
  nextRunTime?: string;
  previousReady?: { reason: string; message: string };
}

/**
 * Ready, the first that applies: an invalid schedule, a missing Registry, a Registry it cannot
 * work on, the last run failed or refused (`lastRunReady`); otherwise True, Scheduled.
 */
export function readyCondition(policy: RetentionPolicy, o: Observed, r: ReadyInput): ConditionInput {
  const no = (reason: string, message: string): ConditionInput => ({
    type: 'Ready',
    status: 'False',
    reason,
    message,
  });
  if (r.scheduleProblem) return no('InvalidSchedule', r.scheduleProblem);
  if (!o.registryFound) {
    const ref = policy.spec.registryRef;
    return no(
      'RegistryNotFound',
      `Registry ${ref.namespace ?? policy.metadata?.namespace}/${ref.name} does not exist`,
    );
  }
  if (o.unsupported) return no('RetentionUnsupported', o.unsupported);
  const last = lastRunReady(r);
  if (last) return last;
  return {
    type: 'Ready',
    status: 'True',
    reason: 'Scheduled',
    message: `${r.mode === 'Enforce' ? 'deletes' : 'reports (DryRun)'}; next run at ${r.nextRunTime}`,
  };
}

/** Ready=False for a last run that failed (why: recorded once, when it finished) or was refused. */
function lastRunReady(r: ReadyInput): ConditionInput | undefined {
  const lastRun = r.lastRun;
  if (lastRun?.result === 'Failed') {
    // Kept while it is the last run: the previous Ready says why.
    const why =
      r.failedNow ??
      (r.previousReady?.reason === 'RunFailed'
        ? r.previousReady.message.replace(/^the last run failed: /, '')
        : '');
    return {
      type: 'Ready',
      status: 'False',
      reason: 'RunFailed',
      message: `the last run failed: ${why || `see the Events of the policy (report ConfigMap ${lastRun.report ?? ''})`}`,
    };
  }
  if (lastRun?.result === 'Refused') {
    return {
      type: 'Ready',
      status: 'False',
      reason: 'TooManyDeletions',
      message: `the last run would delete more than protect.maxDeletions allows, so it deleted nothing: see ConfigMap ${lastRun.report ?? ''}`,
    };
  }
  return undefined;
}

function record(
  run: RunView,
  summary: RunSummary | undefined,
  failure: string | undefined,
  previous: LastRun | undefined,
  now: Date,
): { lastRun: LastRun; message: string } {
  const base: LastRun = {
    startTime:
      summary?.startTime ?? (previous?.report === run.report ? previous.startTime : undefined) ?? run.created,
    completionTime: summary?.completionTime ?? now.toISOString(),
    report: run.report,
  };
  const mode = summary?.mode ?? (previous?.report === run.report ? previous.mode : undefined);
  if (mode) base.mode = mode;
  for (const k of ['evaluated', 'deleted', 'kept', 'protected'] as const) {
    const v = summary?.[k];
    if (v !== undefined) base[k] = v;
  }
  let message: string;
  if (run.state.state === 'Failed') {
    base.result = 'Failed';
    const detail = failureDetail(failure);
    message =
      summary?.message ??
      `Job ${run.job} failed: ${detail ?? (run.state.state === 'Failed' ? run.state.message : '')}`;
  } else if (!summary) {
    base.result = 'Failed';
    message = `Job ${run.job} finished without a readable report in ConfigMap ${run.report}`;
  } else {
    base.result = summary.result ?? 'Failed';
    message =
      summary.result === 'Refused'
        ? `refused: ${summary.refusedReason ?? summary.message ?? 'too many deletions'}`
        : (summary.message ?? `${summary.deleted ?? 0} deleted, ${summary.kept ?? 0} kept`);
  }
  return { lastRun: base, message };
}

function runEvent(lastRun: LastRun, detail: string, reported: boolean): Action {
  // Name the report only when the run wrote one.
  const message = `run ${lastRun.result}: ${detail}${reported ? ` (report: ConfigMap ${lastRun.report})` : ''}`;
  return lastRun.result === 'Succeeded'
    ? { kind: 'event', type: 'Normal', reason: 'RunSucceeded', message }
    : {
        kind: 'event',
        type: 'Warning',
        reason: lastRun.result === 'Refused' ? 'RunRefused' : 'RunFailed',
        message,
      };
}

/**
 * The policy's status after `decision`: observedGeneration, Ready, nextRunTime and lastRun, and
 * when to look again. A run that was to start but did not (`started` false: a garbage collection
 * took the lock since the cache was read) keeps nextRunTime and lastRun as they were, so it stays
 * due, and is looked at again in 30 seconds.
 */
export function policyStatus(
  policy: RetentionPolicy,
  decision: Decision,
  started: boolean,
  now: Date,
): { status: Record<string, unknown>; requeueAfterMs: number } {
  const generation = policy.metadata?.generation;
  const conditions = setCondition(readConditions(policy.status), decision.ready, generation, now.getTime());
  const status: Record<string, unknown> = {
    ...(policy.status ?? {}),
    observedGeneration: generation,
    conditions,
  };
  if (decision.nextRunTime) status.nextRunTime = decision.nextRunTime;
  else delete status.nextRunTime;
  if (decision.lastRun) status.lastRun = decision.lastRun;
  if (started) return { status, requeueAfterMs: decision.requeueAfterMs };
  if (policy.status?.nextRunTime) status.nextRunTime = policy.status.nextRunTime;
  if (policy.status?.lastRun) status.lastRun = policy.status.lastRun;
  else delete status.lastRun;
  return { status, requeueAfterMs: 30_000 };
}
