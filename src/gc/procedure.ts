// The safe garbage collection procedure, as a state machine persisted in the Registry's
// status.garbageCollection (so an operator restart resumes it where it was). Each step is a pure
// function of what was observed and the time: it returns the next status and the effects to carry
// out (create a Job, restart the registry pods, emit an Event). The controller observes, calls
// `step`, and performs the effects; everything that decides lives here and is table-tested.
//
//   (idle) ──trigger──▶ Pending ──no retention run, lock settled──▶ ReadOnly ──read-only config
//   rolled out, no pod of another configuration left (terminating ones included), and a push tried
//   and refused (the probe Job)──▶ Collecting ──GC Job succeeded──▶ Restarting ──pods restarted──▶ ReadWrite
//   ──writable config rolled out──▶ Verifying ──verify Job succeeded──▶ Succeeded
//   any failure or timeout ──▶ Failed (read-only, Degraded) ──retry──▶ Pending
import type {
  RegistryStatusGarbageCollection as GCStatus,
  RegistryStatusGarbageCollectionLastRun as LastRun,
  RegistryStatusGarbageCollectionRun as Run,
} from '../api/generated/registry.ts';
import type { JobState } from '../jobs/state.ts';
import { isActive, type Phase } from '../model/gc-phase.ts';

export type { GCStatus };
export type Trigger = NonNullable<Run['trigger']>;

/** The registry workload as the controller sees it. */
export interface WorkloadView {
  /** The Deployment's rollout of its current generation is complete. */
  rolledOut: boolean;
  /** The pod template carries the checksum of the configuration in the config Secret. */
  runsCurrentConfig: boolean;
  /** The configuration in the config Secret is the read-only one. */
  configReadOnly: boolean;
  /** The restart stamp on the pod template (annotation berth.dev/restarted-at). */
  restartedAt?: string;
  /**
   * Registry pods that may still serve with another configuration than the current one:
   * terminating pods included (a RollingUpdate's old writable pod keeps serving until it is gone,
   * and the Deployment's counts no longer show it). Counted while the read-only configuration
   * rolls out; 0 otherwise.
   */
  stalePods: number;
}

export interface Observed {
  now: Date;
  /** Set when a run should start now (a due schedule, or a new on-demand request). */
  trigger?: { kind: Trigger; request?: string };
  /** Retention Jobs of policies of this Registry that have not finished. */
  retentionJobsRunning: number;
  workload: WorkloadView;
  /** The Job of the current step, looked up by status.garbageCollection.run.job. */
  job: JobState;
  /** Why the collection cannot run at all (emptyDir storage, ...); checked before starting. */
  unsupported?: string;
}

export interface Settings {
  /** Time the lock must be visible before GC proceeds, so a retention run that read the Registry just
   * before it was taken has created its Job (and is seen) by then. */
  lockSettleMs: number;
  /** Longest wait for running retention runs before the collection gives up (fails, stays writable). */
  lockTimeoutMs: number;
  /** Longest wait for a rollout or a restart. */
  rolloutTimeoutMs: number;
  /** Longest run of one Job. */
  jobTimeoutMs: number;
}

export const defaultSettings: Settings = {
  lockSettleMs: 5_000,
  lockTimeoutMs: 6 * 3600_000,
  rolloutTimeoutMs: 15 * 60_000,
  jobTimeoutMs: 6 * 3600_000,
};

export type Effect =
  | { kind: 'createProbeJob'; name: string }
  | { kind: 'createCollectJob'; name: string }
  | { kind: 'createVerifyJob'; name: string }
  | { kind: 'restart'; stamp: string }
  | { kind: 'event'; type: 'Normal' | 'Warning'; reason: string; message: string };

export interface StepResult {
  status: GCStatus;
  effects: Effect[];
  /** Look again after this long (0: nothing to wait for). */
  requeueAfterMs: number;
}

/** Output of the garbage-collect Job (its termination message). */
export interface CollectOutput {
  blobsDeleted?: number;
  bytesFreed?: number;
}

export function parseCollectOutput(text: string | undefined): CollectOutput {
  if (!text) return {};
  for (const line of text.trim().split('\n').reverse()) {
    try {
      const v = JSON.parse(line) as Record<string, unknown>;
      const out: CollectOutput = {};
      if (typeof v.blobsDeleted === 'number' && v.blobsDeleted >= 0) out.blobsDeleted = v.blobsDeleted;
      if (typeof v.bytesFreed === 'number') out.bytesFreed = Math.max(0, v.bytesFreed);
      return out;
    } catch {
      // not the JSON line
    }
  }
  return {};
}

/**
 * Job names: `<registry>-gc-<start>`, `<registry>-gcv-<start>` (verify) and `<registry>-gcp-<time>`
 * (the read-only probe, named by when it is created: a probe made before the rollout settled again
 * is replaced by a new one), at most 63 characters.
 */
export function jobName(registry: string, step: 'collect' | 'verify' | 'probe', startTime: string): string {
  const stamp = Math.floor(new Date(startTime).getTime() / 1000).toString(36);
  const suffix = { collect: `-gc-${stamp}`, verify: `-gcv-${stamp}`, probe: `-gcp-${stamp}` }[step];
  return `${registry.slice(0, 63 - suffix.length)}${suffix}`;
}

const iso = (d: Date) => d.toISOString();
const since = (now: Date, t: string | undefined) => (t ? now.getTime() - new Date(t).getTime() : 0);

/**
 * One step of the procedure. `registry` is the Registry's name (for Job names). Idle (no phase, or
 * a finished one): `start`; in a collection: the step of its phase, which reads only what it
 * documents and writes the copy of the status it returns.
 */
export function step(
  registry: string,
  current: GCStatus | undefined,
  o: Observed,
  settings: Settings = defaultSettings,
): StepResult {
  const status: GCStatus = structuredClone(current ?? {});
  if (!isActive(status.phase)) return start(status, o, settings);
  const run: Run = status.run ?? { startTime: iso(o.now), phaseTime: iso(o.now) };
  status.run = run;
  const c: PhaseContext = { registry, status, run, o, settings, inPhase: since(o.now, run.phaseTime) };
  switch (status.phase) {
    case 'Pending':
      return pending(c);
    case 'ReadOnly':
      return readOnly(c);
    case 'Collecting':
      return collecting(c);
    case 'Restarting':
      return restarting(c);
    case 'ReadWrite':
      return readWrite(c);
    case 'Verifying':
      return verifying(c);
  }
  return { status, effects: [], requeueAfterMs: 0 };
}

/** What the step of a phase reads; it writes `status` and `run` (the status's copy and its run). */
interface PhaseContext {
  registry: string;
  status: GCStatus;
  run: Run;
  o: Observed;
  settings: Settings;
  /** How long the run has been in its phase (ms). */
  inPhase: number;
}

/** Moves to the phase `next`: a new phase time, and no Job of the previous phase. */
function enter(
  c: PhaseContext,
  next: Phase,
  message: string,
  effects: Effect[] = [],
  requeueAfterMs = 1_000,
): StepResult {
  c.status.phase = next;
  c.status.message = message;
  c.run.phaseTime = iso(c.o.now);
  delete c.run.job;
  return { status: c.status, effects, requeueAfterMs };
}

/** Stays in the phase, saying what it waits for. */
function wait(c: PhaseContext, message: string, requeueAfterMs: number): StepResult {
  c.status.message = message;
  return { status: c.status, effects: [], requeueAfterMs };
}

/** Stays in the phase and carries out `effect` again (a Job not seen, a restart not applied). */
function again(c: PhaseContext, effect: Effect): StepResult {
  return { status: c.status, effects: [effect], requeueAfterMs: 2_000 };
}

/** Ends the run Failed: lastRun says why, the registry stays read-only until a retry succeeds. */
function fail(c: PhaseContext, reason: string, message: string): StepResult {
  const r = enter(c, 'Failed', `${reason}: ${message}`, [], 0);
  c.status.lastRun = lastRun(c.run, c.o.now, 'Failed', `${reason}: ${message}`);
  delete c.status.run;
  r.effects.push({
    kind: 'event',
    type: 'Warning',
    reason: 'GarbageCollectionFailed',
    message: `${message}; the registry stays read-only until a retry succeeds`,
  });
  return r;
}

const rolloutTimedOut = (c: PhaseContext) => c.inPhase > c.settings.rolloutTimeoutMs;
const jobTimedOut = (c: PhaseContext) => c.inPhase > c.settings.jobTimeoutMs;

/**
 * Idle: starts a run on a trigger (Pending, with the start time and the trigger in status.run),
 * unless the storage cannot be collected (a Warning, nothing started). Either way an on-demand
 * request is marked handled (status.handledRequest).
 */
function start(status: GCStatus, o: Observed, settings: Settings): StepResult {
  if (!o.trigger) return { status, effects: [], requeueAfterMs: 0 };
  if (o.trigger.request !== undefined) status.handledRequest = o.trigger.request;
  if (o.unsupported) {
    return {
      status,
      effects: [
        { kind: 'event', type: 'Warning', reason: 'GarbageCollectionUnsupported', message: o.unsupported },
      ],
      requeueAfterMs: 0,
    };
  }
  const now = iso(o.now);
  status.phase = 'Pending';
  status.run = { startTime: now, trigger: o.trigger.kind, phaseTime: now };
  status.message = 'taking the lock: no retention run may start, waiting for running ones';
  const how = o.trigger.kind === 'OnDemand' ? 'on demand' : 'scheduled';
  return {
    status,
    effects: [
      {
        kind: 'event',
        type: 'Normal',
        reason: 'GarbageCollectionStarted',
        message: `garbage collection started (${how})`,
      },
    ],
    requeueAfterMs: settings.lockSettleMs,
  };
}

/**
 * Pending (the lock is taken): waits for the running retention runs, at most `lockTimeoutMs`, and
 * for the lock to settle (`lockSettleMs`), then goes ReadOnly.
 */
function pending(c: PhaseContext): StepResult {
  const { o, settings } = c;
  if (o.retentionJobsRunning > 0) {
    if (c.inPhase > settings.lockTimeoutMs) return lockTimeout(c.status);
    return wait(c, `waiting for ${o.retentionJobsRunning} retention run(s) to finish`, 10_000);
  }
  if (c.inPhase < settings.lockSettleMs) return wait(c, 'taking the lock', settings.lockSettleMs - c.inPhase);
  return enter(c, 'ReadOnly', 'rolling the read-only configuration out to every replica');
}

/**
 * Retention runs outlasted the lock's timeout. Nothing was changed yet: give up, and leave the
 * registry as it was (writable, or read-only if this was the retry of a failed collection).
 */
function lockTimeout(status: GCStatus): StepResult {
  if (status.lastRun?.result === 'Failed') status.phase = 'Failed';
  else delete status.phase;
  delete status.run;
  status.message = 'LockTimeout: retention runs did not finish in time; nothing was collected';
  return {
    status,
    effects: [
      { kind: 'event', type: 'Warning', reason: 'GarbageCollectionLockTimeout', message: status.message },
    ],
    requeueAfterMs: 0,
  };
}

/**
 * ReadOnly: waits until every replica runs the read-only configuration and no pod of another
 * configuration is left (a probe made before that is forgotten), then runs the probe Job: a push
 * must be refused before anything is collected (`probed`).
 */
function readOnly(c: PhaseContext): StepResult {
  const w = c.o.workload;
  const rolled = w.configReadOnly && w.runsCurrentConfig && w.rolledOut;
  if (!rolled || w.stalePods > 0) {
    if (rolloutTimedOut(c))
      return fail(c, 'ReadOnlyRolloutTimeout', 'the read-only configuration did not roll out in time');
    delete c.run.job; // a probe made before every old pod was gone proves nothing
    return wait(
      c,
      rolled
        ? `waiting for ${w.stalePods} registry pod(s) with the previous configuration to go (terminating ones included)`
        : 'waiting for every replica to run the read-only configuration',
      2_000,
    );
  }
  if (!c.run.job) {
    const name = jobName(c.registry, 'probe', iso(c.o.now));
    c.run.job = name;
    return {
      ...wait(c, `checking that a push is refused (Job ${name})`, 2_000),
      effects: [{ kind: 'createProbeJob', name }],
    };
  }
  return probed(c, c.run.job);
}

/**
 * ReadOnly, the probe Job `probe` made: a push refused (the Job succeeded) starts Collecting with
 * the collect Job; a push accepted or a check inconclusive (the Job failed) or too long fails the
 * run: never collect on a writable registry.
 */
function probed(c: PhaseContext, probe: string): StepResult {
  switch (c.o.job.state) {
    case 'Absent':
      return again(c, { kind: 'createProbeJob', name: probe });
    case 'Running':
      if (rolloutTimedOut(c))
        return fail(c, 'ReadOnlyCheckTimeout', `the read-only check Job ${probe} ran too long`);
      return wait(c, `checking that a push is refused (Job ${probe})`, 2_000);
    case 'Failed':
      return fail(c, 'PushNotRefused', `the read-only check Job ${probe} failed: ${c.o.job.message}`);
    case 'Succeeded': {
      const name = jobName(c.registry, 'collect', c.run.startTime ?? iso(c.o.now));
      const r = enter(c, 'Collecting', `a push was refused; running the garbage-collect Job ${name}`, [
        { kind: 'createCollectJob', name },
      ]);
      c.run.job = name;
      return r;
    }
  }
}

/**
 * Collecting: runs the collect Job (at most `jobTimeoutMs`); on success records its figures in
 * run.blobsDeleted and run.bytesFreed and goes Restarting with a restart stamp (run.restartedAt).
 */
function collecting(c: PhaseContext): StepResult {
  const { run, o } = c;
  const name = run.job ?? jobName(c.registry, 'collect', run.startTime ?? iso(o.now));
  run.job = name;
  switch (o.job.state) {
    case 'Absent':
      return again(c, { kind: 'createCollectJob', name });
    case 'Running':
      if (jobTimedOut(c)) return fail(c, 'CollectTimeout', `the garbage-collect Job ${name} ran too long`);
      return wait(c, `running the garbage-collect Job ${name}`, 10_000);
    case 'Failed':
      return fail(c, 'CollectFailed', `the garbage-collect Job ${name} failed: ${o.job.message}`);
    case 'Succeeded': {
      const out = parseCollectOutput(o.job.output);
      if (out.blobsDeleted !== undefined) run.blobsDeleted = out.blobsDeleted;
      if (out.bytesFreed !== undefined) run.bytesFreed = out.bytesFreed;
      const stamp = iso(o.now);
      const r = enter(c, 'Restarting', 'restarting the registry pods so no stale blob cache survives', [
        { kind: 'restart', stamp },
      ]);
      run.restartedAt = stamp;
      return r;
    }
  }
}

/**
 * Restarting: applies the restart stamp until the pod template carries it, waits for the
 * restarted pods to roll out (no stale blob cache survives), then goes ReadWrite.
 */
function restarting(c: PhaseContext): StepResult {
  const w = c.o.workload;
  if (w.restartedAt !== c.run.restartedAt) {
    if (rolloutTimedOut(c)) return fail(c, 'RestartTimeout', 'the registry pods were not restarted in time');
    return again(c, { kind: 'restart', stamp: c.run.restartedAt ?? iso(c.o.now) });
  }
  if (w.rolledOut) return enter(c, 'ReadWrite', 'rolling the writable configuration out');
  if (rolloutTimedOut(c)) return fail(c, 'RestartTimeout', 'the registry pods were not restarted in time');
  return wait(c, 'waiting for the restarted registry pods', 2_000);
}

/** ReadWrite: once every replica runs the writable configuration, goes Verifying with its Job. */
function readWrite(c: PhaseContext): StepResult {
  const w = c.o.workload;
  if (!w.configReadOnly && w.runsCurrentConfig && w.rolledOut) {
    const name = jobName(c.registry, 'verify', c.run.startTime ?? iso(c.o.now));
    const r = enter(c, 'Verifying', `verifying every tag with the Job ${name}`, [
      { kind: 'createVerifyJob', name },
    ]);
    c.run.job = name;
    return r;
  }
  if (rolloutTimedOut(c))
    return fail(c, 'ReadWriteRolloutTimeout', 'the writable configuration did not roll out in time');
  return wait(c, 'waiting for every replica to run the writable configuration', 2_000);
}

/**
 * Verifying: runs the verify Job (at most `jobTimeoutMs`); its success ends the run Succeeded
 * (`succeeded`), its failure fails it.
 */
function verifying(c: PhaseContext): StepResult {
  const { run, o } = c;
  const name = run.job ?? jobName(c.registry, 'verify', run.startTime ?? iso(o.now));
  run.job = name;
  switch (o.job.state) {
    case 'Absent':
      return again(c, { kind: 'createVerifyJob', name });
    case 'Running':
      if (jobTimedOut(c)) return fail(c, 'VerifyTimeout', `the verification Job ${name} ran too long`);
      return wait(c, `verifying every tag with the Job ${name}`, 10_000);
    case 'Failed':
      return fail(c, 'VerificationFailed', `the verification Job ${name} failed: ${o.job.message}`);
    case 'Succeeded':
      return succeeded(c);
  }
}

/** Ends the run Succeeded: lastRun with the collect Job's figures, status.run cleared, an Event. */
function succeeded(c: PhaseContext): StepResult {
  const { status, run } = c;
  const message = `collected: ${run.blobsDeleted ?? 'unknown'} blobs deleted, ${run.bytesFreed ?? 'unknown'} bytes freed; every tag verified`;
  status.lastRun = lastRun(run, c.o.now, 'Succeeded', message);
  status.phase = 'Succeeded';
  status.message = message;
  delete status.run;
  return {
    status,
    effects: [{ kind: 'event', type: 'Normal', reason: 'GarbageCollectionSucceeded', message }],
    requeueAfterMs: 0,
  };
}

function lastRun(run: Run, now: Date, result: 'Succeeded' | 'Failed', message: string): LastRun {
  const start = run.startTime ?? iso(now);
  const out: LastRun = {
    startTime: start,
    completionTime: iso(now),
    result,
    durationSeconds: Math.max(0, Math.round((now.getTime() - new Date(start).getTime()) / 1000)),
    message,
  };
  if (run.trigger) out.trigger = run.trigger;
  if (run.blobsDeleted !== undefined) out.blobsDeleted = run.blobsDeleted;
  if (run.bytesFreed !== undefined) out.bytesFreed = run.bytesFreed;
  return out;
}
