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

/** One step of the procedure. `registry` is the Registry's name (for Job names). */
export function step(
  registry: string,
  current: GCStatus | undefined,
  o: Observed,
  settings: Settings = defaultSettings,
): StepResult {
  const status: GCStatus = structuredClone(current ?? {});
  const phase = status.phase;
  const now = o.now;

  if (!isActive(phase)) {
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
    status.phase = 'Pending';
    status.run = { startTime: iso(now), trigger: o.trigger.kind, phaseTime: iso(now) };
    status.message = 'taking the lock: no retention run may start, waiting for running ones';
    return {
      status,
      effects: [
        {
          kind: 'event',
          type: 'Normal',
          reason: 'GarbageCollectionStarted',
          message: `garbage collection started (${o.trigger.kind === 'OnDemand' ? 'on demand' : 'scheduled'})`,
        },
      ],
      requeueAfterMs: settings.lockSettleMs,
    };
  }

  const run: Run = status.run ?? { startTime: iso(now), phaseTime: iso(now) };
  status.run = run;
  const inPhase = since(now, run.phaseTime);
  const enter = (
    next: Phase,
    message: string,
    effects: Effect[] = [],
    requeueAfterMs = 1_000,
  ): StepResult => {
    status.phase = next;
    status.message = message;
    run.phaseTime = iso(now);
    delete run.job;
    return { status, effects, requeueAfterMs };
  };
  const wait = (message: string, requeueAfterMs: number): StepResult => {
    status.message = message;
    return { status, effects: [], requeueAfterMs };
  };
  const fail = (reason: string, message: string): StepResult => {
    const r = enter('Failed', `${reason}: ${message}`, [], 0);
    status.lastRun = lastRun(run, now, 'Failed', `${reason}: ${message}`);
    delete status.run;
    r.effects.push({
      kind: 'event',
      type: 'Warning',
      reason: 'GarbageCollectionFailed',
      message: `${message}; the registry stays read-only until a retry succeeds`,
    });
    return r;
  };
  const rolloutTimedOut = inPhase > settings.rolloutTimeoutMs;
  const jobTimedOut = inPhase > settings.jobTimeoutMs;

  switch (phase) {
    case 'Pending': {
      if (o.retentionJobsRunning > 0) {
        if (inPhase > settings.lockTimeoutMs) {
          // Nothing was changed yet: give up, and leave the registry as it was (writable, or
          // read-only if this was the retry of a failed collection).
          if (status.lastRun?.result === 'Failed') status.phase = 'Failed';
          else delete status.phase;
          delete status.run;
          status.message = 'LockTimeout: retention runs did not finish in time; nothing was collected';
          return {
            status,
            effects: [
              {
                kind: 'event',
                type: 'Warning',
                reason: 'GarbageCollectionLockTimeout',
                message: status.message,
              },
            ],
            requeueAfterMs: 0,
          };
        }
        return wait(`waiting for ${o.retentionJobsRunning} retention run(s) to finish`, 10_000);
      }
      if (inPhase < settings.lockSettleMs) return wait('taking the lock', settings.lockSettleMs - inPhase);
      return enter('ReadOnly', 'rolling the read-only configuration out to every replica');
    }
    case 'ReadOnly': {
      const w = o.workload;
      const rolled = w.configReadOnly && w.runsCurrentConfig && w.rolledOut;
      if (!rolled || w.stalePods > 0) {
        if (rolloutTimedOut)
          return fail('ReadOnlyRolloutTimeout', 'the read-only configuration did not roll out in time');
        delete run.job; // a probe made before every old pod was gone proves nothing
        return wait(
          rolled
            ? `waiting for ${w.stalePods} registry pod(s) with the previous configuration to go (terminating ones included)`
            : 'waiting for every replica to run the read-only configuration',
          2_000,
        );
      }
      // Every pod runs the read-only configuration: a push must now be refused.
      if (!run.job) {
        const name = jobName(registry, 'probe', iso(now));
        run.job = name;
        return {
          ...wait(`checking that a push is refused (Job ${name})`, 2_000),
          effects: [{ kind: 'createProbeJob', name }],
        };
      }
      const probe = run.job;
      switch (o.job.state) {
        case 'Absent':
          return { status, effects: [{ kind: 'createProbeJob', name: probe }], requeueAfterMs: 2_000 };
        case 'Running':
          if (rolloutTimedOut)
            return fail('ReadOnlyCheckTimeout', `the read-only check Job ${probe} ran too long`);
          return wait(`checking that a push is refused (Job ${probe})`, 2_000);
        case 'Failed':
          // Accepted (the upload was cancelled) or inconclusive: never collect on a writable registry.
          return fail('PushNotRefused', `the read-only check Job ${probe} failed: ${o.job.message}`);
        case 'Succeeded': {
          const name = jobName(registry, 'collect', run.startTime ?? iso(now));
          const r = enter('Collecting', `a push was refused; running the garbage-collect Job ${name}`, [
            { kind: 'createCollectJob', name },
          ]);
          run.job = name;
          return r;
        }
      }
      break;
    }
    case 'Collecting': {
      const name = run.job ?? jobName(registry, 'collect', run.startTime ?? iso(now));
      run.job = name;
      switch (o.job.state) {
        case 'Absent':
          return { status, effects: [{ kind: 'createCollectJob', name }], requeueAfterMs: 2_000 };
        case 'Running':
          if (jobTimedOut) return fail('CollectTimeout', `the garbage-collect Job ${name} ran too long`);
          return wait(`running the garbage-collect Job ${name}`, 10_000);
        case 'Failed':
          return fail('CollectFailed', `the garbage-collect Job ${name} failed: ${o.job.message}`);
        case 'Succeeded': {
          const out = parseCollectOutput(o.job.output);
          if (out.blobsDeleted !== undefined) run.blobsDeleted = out.blobsDeleted;
          if (out.bytesFreed !== undefined) run.bytesFreed = out.bytesFreed;
          const stamp = iso(now);
          const r = enter('Restarting', 'restarting the registry pods so no stale blob cache survives', [
            { kind: 'restart', stamp },
          ]);
          run.restartedAt = stamp;
          return r;
        }
      }
      break;
    }
    case 'Restarting': {
      const w = o.workload;
      if (w.restartedAt !== run.restartedAt) {
        if (rolloutTimedOut) return fail('RestartTimeout', 'the registry pods were not restarted in time');
        return {
          status,
          effects: [{ kind: 'restart', stamp: run.restartedAt ?? iso(now) }],
          requeueAfterMs: 2_000,
        };
      }
      if (w.rolledOut) return enter('ReadWrite', 'rolling the writable configuration out');
      if (rolloutTimedOut) return fail('RestartTimeout', 'the registry pods were not restarted in time');
      return wait('waiting for the restarted registry pods', 2_000);
    }
    case 'ReadWrite': {
      const w = o.workload;
      if (!w.configReadOnly && w.runsCurrentConfig && w.rolledOut) {
        const name = jobName(registry, 'verify', run.startTime ?? iso(now));
        const r = enter('Verifying', `verifying every tag with the Job ${name}`, [
          { kind: 'createVerifyJob', name },
        ]);
        run.job = name;
        return r;
      }
      if (rolloutTimedOut)
        return fail('ReadWriteRolloutTimeout', 'the writable configuration did not roll out in time');
      return wait('waiting for every replica to run the writable configuration', 2_000);
    }
    case 'Verifying': {
      const name = run.job ?? jobName(registry, 'verify', run.startTime ?? iso(now));
      run.job = name;
      switch (o.job.state) {
        case 'Absent':
          return { status, effects: [{ kind: 'createVerifyJob', name }], requeueAfterMs: 2_000 };
        case 'Running':
          if (jobTimedOut) return fail('VerifyTimeout', `the verification Job ${name} ran too long`);
          return wait(`verifying every tag with the Job ${name}`, 10_000);
        case 'Failed':
          return fail('VerificationFailed', `the verification Job ${name} failed: ${o.job.message}`);
        case 'Succeeded': {
          const message = `collected: ${run.blobsDeleted ?? 'unknown'} blobs deleted, ${run.bytesFreed ?? 'unknown'} bytes freed; every tag verified`;
          status.lastRun = lastRun(run, now, 'Succeeded', message);
          status.phase = 'Succeeded';
          status.message = message;
          delete status.run;
          return {
            status,
            effects: [{ kind: 'event', type: 'Normal', reason: 'GarbageCollectionSucceeded', message }],
            requeueAfterMs: 0,
          };
        }
      }
      break;
    }
  }
  return { status, effects: [], requeueAfterMs: 0 };
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
