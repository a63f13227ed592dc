import { describe, expect, it } from '@jest/globals';
import {
  defaultSettings,
  jobName,
  parseCollectOutput,
  step,
  type GCStatus,
  type Observed,
  type WorkloadView,
} from './procedure.ts';
import { isReadOnly } from '../model/gc-phase.ts';

const T0 = '2030-01-01T03:00:00.000Z';
const at = (sec: number) => new Date(Date.parse(T0) + sec * 1000);

const writable: WorkloadView = {
  rolledOut: true,
  runsCurrentConfig: true,
  configReadOnly: false,
  stalePods: 0,
};
const readOnly: WorkloadView = {
  rolledOut: true,
  runsCurrentConfig: true,
  configReadOnly: true,
  stalePods: 0,
};

function observed(over: Partial<Observed> = {}): Observed {
  return { now: at(60), retentionJobsRunning: 0, workload: writable, job: { state: 'Absent' }, ...over };
}

function inPhase(
  phase: GCStatus['phase'],
  run: Record<string, unknown> = {},
  extra: GCStatus = {},
): GCStatus {
  return { ...extra, phase, run: { startTime: T0, trigger: 'Schedule', phaseTime: T0, ...run } };
}

const collectJob = jobName('main', 'collect', T0);
const verifyJob = jobName('main', 'verify', T0);
const probeJob = jobName('main', 'probe', at(60).toISOString());

describe('step: starting', () => {
  it.each([
    ['idle without trigger stays idle', undefined, {}, undefined],
    ['after success without trigger stays', { phase: 'Succeeded' } as GCStatus, {}, 'Succeeded'],
    ['a schedule trigger starts Pending', undefined, { trigger: { kind: 'Schedule' as const } }, 'Pending'],
    [
      'a retry of a failed run starts Pending',
      { phase: 'Failed' } as GCStatus,
      { trigger: { kind: 'OnDemand' as const, request: 'x' } },
      'Pending',
    ],
    [
      'a trigger while running is ignored',
      inPhase('Collecting', { job: collectJob }),
      { trigger: { kind: 'Schedule' as const }, job: { state: 'Running' as const } },
      'Collecting',
    ],
  ])('%s', (_name, current, over, phase) => {
    const r = step('main', current, observed(over));
    expect(r.status.phase).toBe(phase);
  });

  it('records the on-demand request and the start', () => {
    const r = step(
      'main',
      undefined,
      observed({ trigger: { kind: 'OnDemand', request: '2030-01-01T02:59:00Z' } }),
    );
    expect(r.status).toMatchObject({
      phase: 'Pending',
      handledRequest: '2030-01-01T02:59:00Z',
      run: { startTime: at(60).toISOString(), trigger: 'OnDemand' },
    });
    expect(r.effects).toContainEqual(
      expect.objectContaining({ kind: 'event', reason: 'GarbageCollectionStarted' }),
    );
  });

  it('does not start on unsupported storage, but marks the request handled and warns', () => {
    const r = step(
      'main',
      undefined,
      observed({ trigger: { kind: 'OnDemand', request: 'r1' }, unsupported: 'emptyDir storage' }),
    );
    expect(r.status.phase).toBeUndefined();
    expect(r.status.handledRequest).toBe('r1');
    expect(r.effects).toEqual([
      expect.objectContaining({ kind: 'event', type: 'Warning', reason: 'GarbageCollectionUnsupported' }),
    ]);
  });
});

describe('step: each phase', () => {
  const cases: {
    name: string;
    current: GCStatus;
    over: Partial<Observed>;
    phase: GCStatus['phase'];
    effects?: string[];
    message?: RegExp;
  }[] = [
    {
      name: 'Pending waits for retention runs',
      current: inPhase('Pending'),
      over: { retentionJobsRunning: 2 },
      phase: 'Pending',
      message: /2 retention run/,
    },
    {
      name: 'Pending waits for the lock to settle',
      current: inPhase('Pending', { phaseTime: at(58).toISOString() }),
      over: {},
      phase: 'Pending',
    },
    {
      name: 'Pending → ReadOnly when no retention runs',
      current: inPhase('Pending'),
      over: {},
      phase: 'ReadOnly',
    },
    {
      name: 'ReadOnly waits while the config is still writable',
      current: inPhase('ReadOnly'),
      over: { workload: writable },
      phase: 'ReadOnly',
    },
    {
      name: 'ReadOnly waits for the rollout',
      current: inPhase('ReadOnly'),
      over: { workload: { ...readOnly, rolledOut: false } },
      phase: 'ReadOnly',
    },
    {
      name: 'ReadOnly waits until pods run the current config',
      current: inPhase('ReadOnly'),
      over: { workload: { ...readOnly, runsCurrentConfig: false } },
      phase: 'ReadOnly',
    },
    {
      name: 'ReadOnly waits while an old pod is still terminating (the rollout counts say done)',
      current: inPhase('ReadOnly'),
      over: { workload: { ...readOnly, stalePods: 1 } },
      phase: 'ReadOnly',
      message:
        /waiting for 1 registry pod\(s\) with the previous configuration to go \(terminating ones included\)/,
    },
    {
      name: 'ReadOnly, rolled out: a push is tried first (the probe Job), nothing is collected yet',
      current: inPhase('ReadOnly'),
      over: { workload: readOnly },
      phase: 'ReadOnly',
      effects: ['createProbeJob'],
      message: /checking that a push is refused/,
    },
    {
      name: 'ReadOnly re-creates a missing probe Job',
      current: inPhase('ReadOnly', { job: probeJob }),
      over: { workload: readOnly },
      phase: 'ReadOnly',
      effects: ['createProbeJob'],
    },
    {
      name: 'ReadOnly waits for the probe Job',
      current: inPhase('ReadOnly', { job: probeJob }),
      over: { workload: readOnly, job: { state: 'Running' } },
      phase: 'ReadOnly',
    },
    {
      name: 'ReadOnly: the push was accepted → Failed (read-only kept), nothing collected',
      current: inPhase('ReadOnly', { job: probeJob }),
      over: {
        workload: readOnly,
        job: { state: 'Failed', message: 'the registry accepted a push (HTTP 202): it is not read-only' },
      },
      phase: 'Failed',
      effects: ['event'],
      message: /^PushNotRefused: the read-only check Job main-gcp-\w+ failed: the registry accepted a push/,
    },
    {
      name: 'ReadOnly: the probe ran too long → Failed',
      current: inPhase('ReadOnly', { job: probeJob }),
      over: { now: at(3600), workload: readOnly, job: { state: 'Running' } },
      phase: 'Failed',
      effects: ['event'],
      message: /ReadOnlyCheckTimeout/,
    },
    {
      name: 'ReadOnly: a push was refused → Collecting creates the GC Job',
      current: inPhase('ReadOnly', { job: probeJob }),
      over: { workload: readOnly, job: { state: 'Succeeded' } },
      phase: 'Collecting',
      effects: ['createCollectJob'],
    },
    {
      name: 'ReadOnly: an old pod showed up after the probe → wait, and probe again later',
      current: inPhase('ReadOnly', { job: probeJob }),
      over: { workload: { ...readOnly, stalePods: 2 }, job: { state: 'Succeeded' } },
      phase: 'ReadOnly',
      message: /2 registry pod/,
    },
    {
      name: 'ReadOnly times out → Failed',
      current: inPhase('ReadOnly'),
      over: { now: at(3600), workload: { ...readOnly, rolledOut: false } },
      phase: 'Failed',
      effects: ['event'],
      message: /ReadOnlyRolloutTimeout/,
    },
    {
      name: 'Collecting re-creates a missing Job (idempotent create)',
      current: inPhase('Collecting', { job: collectJob }),
      over: { workload: readOnly },
      phase: 'Collecting',
      effects: ['createCollectJob'],
    },
    {
      name: 'Collecting waits for the Job',
      current: inPhase('Collecting', { job: collectJob }),
      over: { workload: readOnly, job: { state: 'Running' } },
      phase: 'Collecting',
    },
    {
      name: 'Collecting: a failed Job → Failed',
      current: inPhase('Collecting', { job: collectJob }),
      over: { workload: readOnly, job: { state: 'Failed', message: 'BackoffLimitExceeded' } },
      phase: 'Failed',
      effects: ['event'],
      message: /CollectFailed.*BackoffLimitExceeded/,
    },
    {
      name: 'Collecting: a Job running too long → Failed',
      current: inPhase('Collecting', { job: collectJob }),
      over: { now: at(7 * 3600), workload: readOnly, job: { state: 'Running' } },
      phase: 'Failed',
      effects: ['event'],
      message: /CollectTimeout/,
    },
    {
      name: 'Collecting → Restarting restarts the pods',
      current: inPhase('Collecting', { job: collectJob }),
      over: {
        workload: readOnly,
        job: { state: 'Succeeded', output: '{"blobsDeleted":3,"bytesFreed":4096}' },
      },
      phase: 'Restarting',
      effects: ['restart'],
    },
    {
      name: 'Restarting re-applies a missing stamp',
      current: inPhase('Restarting', { restartedAt: 's1' }),
      over: { workload: readOnly },
      phase: 'Restarting',
      effects: ['restart'],
    },
    {
      name: 'Restarting waits for the restarted pods',
      current: inPhase('Restarting', { restartedAt: 's1' }),
      over: { workload: { ...readOnly, restartedAt: 's1', rolledOut: false } },
      phase: 'Restarting',
    },
    {
      name: 'Restarting → ReadWrite',
      current: inPhase('Restarting', { restartedAt: 's1' }),
      over: { workload: { ...readOnly, restartedAt: 's1' } },
      phase: 'ReadWrite',
    },
    {
      name: 'ReadWrite waits for the writable config',
      current: inPhase('ReadWrite'),
      over: { workload: readOnly },
      phase: 'ReadWrite',
    },
    {
      name: 'ReadWrite → Verifying creates the verify Job',
      current: inPhase('ReadWrite'),
      over: { workload: writable },
      phase: 'Verifying',
      effects: ['createVerifyJob'],
    },
    {
      name: 'Verifying: a failed verification → Failed (read-only again)',
      current: inPhase('Verifying', { job: verifyJob }),
      over: { job: { state: 'Failed', message: 'team/app:v1 blob missing' } },
      phase: 'Failed',
      effects: ['event'],
      message: /VerificationFailed/,
    },
    {
      name: 'Verifying → Succeeded',
      current: inPhase('Verifying', { job: verifyJob, blobsDeleted: 3, bytesFreed: 4096 }),
      over: { job: { state: 'Succeeded' } },
      phase: 'Succeeded',
      effects: ['event'],
      message: /3 blobs deleted, 4096 bytes/,
    },
  ];
  it.each(cases)('$name', ({ current, over, phase, effects, message }) => {
    const r = step('main', current, observed(over), defaultSettings);
    expect(r.status.phase).toBe(phase);
    if (effects) expect(r.effects.map((e) => e.kind)).toEqual(effects);
    else expect(r.effects).toEqual([]);
    if (message) expect(r.status.message).toMatch(message);
  });

  it('a probe made before an old pod showed up is forgotten: the next one is a new Job', () => {
    const r = step(
      'main',
      inPhase('ReadOnly', { job: probeJob }),
      observed({ workload: { ...readOnly, stalePods: 1 }, job: { state: 'Succeeded' } }),
    );
    expect(r.status.run?.job).toBeUndefined();
    const next = step('main', r.status, observed({ now: at(90), workload: readOnly }));
    expect(next.effects).toEqual([
      { kind: 'createProbeJob', name: jobName('main', 'probe', at(90).toISOString()) },
    ]);
    expect(next.status.run?.job).not.toBe(probeJob);
  });

  it('records the figures of the GC Job and the restart stamp', () => {
    const r = step(
      'main',
      inPhase('Collecting', { job: collectJob }),
      observed({ job: { state: 'Succeeded', output: 'log line\n{"blobsDeleted":3,"bytesFreed":4096}' } }),
    );
    expect(r.status.run).toMatchObject({
      blobsDeleted: 3,
      bytesFreed: 4096,
      restartedAt: at(60).toISOString(),
    });
    expect(r.effects).toEqual([{ kind: 'restart', stamp: at(60).toISOString() }]);
  });

  it('writes lastRun with the duration on success, and clears the run', () => {
    const r = step(
      'main',
      inPhase('Verifying', { job: verifyJob, blobsDeleted: 3, bytesFreed: 4096 }),
      observed({ now: at(125), job: { state: 'Succeeded' } }),
    );
    expect(r.status.run).toBeUndefined();
    expect(r.status.lastRun).toEqual({
      startTime: T0,
      completionTime: at(125).toISOString(),
      result: 'Succeeded',
      trigger: 'Schedule',
      durationSeconds: 125,
      blobsDeleted: 3,
      bytesFreed: 4096,
      message: expect.stringMatching(/every tag verified/),
    });
  });

  it('writes lastRun Failed and stays read-only after a failure', () => {
    const r = step(
      'main',
      inPhase('Collecting', { job: collectJob }),
      observed({ now: at(30), job: { state: 'Failed', message: 'exit 1' } }),
    );
    expect(r.status.lastRun).toMatchObject({ result: 'Failed', durationSeconds: 30 });
    expect(isReadOnly(r.status.phase)).toBe(true);
  });

  it.each([
    ['a first run gives up writable', undefined, undefined],
    ['a retry of a failed run stays Failed (read-only)', { result: 'Failed' }, 'Failed'],
  ])('lock timeout: %s', (_n, lastRun, phase) => {
    const r = step(
      'main',
      inPhase('Pending', {}, lastRun ? { lastRun } : {}),
      observed({ now: at(7 * 3600), retentionJobsRunning: 1 }),
    );
    expect(r.status.phase).toBe(phase);
    expect(r.status.run).toBeUndefined();
    expect(r.effects[0]).toMatchObject({ reason: 'GarbageCollectionLockTimeout' });
  });
});

describe('read-only phases', () => {
  it.each([
    [undefined, false],
    ['Pending', false],
    ['ReadOnly', true],
    ['Collecting', true],
    ['Restarting', true],
    ['ReadWrite', false],
    ['Verifying', false],
    ['Succeeded', false],
    ['Failed', true],
  ] as const)('%s → read-only %s', (phase, ro) => {
    expect(isReadOnly(phase)).toBe(ro);
  });
});

describe('parseCollectOutput and jobName', () => {
  it.each([
    [undefined, {}],
    ['', {}],
    ['{"blobsDeleted":2,"bytesFreed":-5}', { blobsDeleted: 2, bytesFreed: 0 }],
    ['noise\n{"blobsDeleted":7,"bytesFreed":100}\n', { blobsDeleted: 7, bytesFreed: 100 }],
    ['{"blobsDeleted":"x"}', {}],
  ])('%j → %j', (text, out) => {
    expect(parseCollectOutput(text)).toEqual(out);
  });

  it('keeps Job names within 63 characters and distinct per step', () => {
    const long = 'r'.repeat(80);
    expect(jobName(long, 'collect', T0).length).toBeLessThanOrEqual(63);
    expect(jobName('main', 'collect', T0)).not.toBe(jobName('main', 'verify', T0));
    expect(jobName('main', 'probe', T0)).toMatch(/^main-gcp-[0-9a-z]+$/);
    expect(jobName('main', 'collect', T0)).toMatch(/^main-gc-[0-9a-z]+$/);
  });
});
