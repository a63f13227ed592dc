import { describe, expect, it } from '@jest/globals';
import type { RetentionPolicy } from '../api/generated/retentionpolicy.ts';
import {
  decide,
  failureDetail,
  historyLimit,
  parseSummary,
  policyStatus,
  readyCondition,
  runNames,
  startOrSkip,
  unrecordedRun,
  type Observed,
  type RunView,
} from './controller-decide.ts';

const NOW = new Date('2030-01-01T10:30:00.000Z');
const ago = (sec: number) => new Date(NOW.getTime() - sec * 1000).toISOString();

function policy(
  over: {
    status?: RetentionPolicy['status'];
    annotations?: Record<string, string>;
    schedule?: string;
    mode?: 'DryRun' | 'Enforce';
  } = {},
): RetentionPolicy {
  return {
    metadata: {
      name: 'ci',
      namespace: 'team-a',
      generation: 1,
      ...(over.annotations ? { annotations: over.annotations } : {}),
    },
    spec: {
      registryRef: { name: 'main', namespace: 'registry-system' },
      repositories: { include: ['team-a/**'] },
      schedule: over.schedule ?? '0 * * * *',
      ...(over.mode ? { mode: over.mode } : {}),
      rules: [{ name: 'ci', tags: { include: ['pr-*'] }, keep: { mostRecent: 2 } }],
    },
    ...(over.status ? { status: over.status } : {}),
  };
}

const run = (
  job: string,
  createdSecAgo: number,
  state: RunView['state'],
  report = `${job}-report`,
): RunView => ({
  job,
  report,
  created: ago(createdSecAgo),
  state,
});

function observed(over: Partial<Observed> = {}): Observed {
  return { now: NOW, registryFound: true, runs: [], ...over };
}

const kinds = (d: ReturnType<typeof decide>) => d.actions.map((a) => a.kind);

describe('decide: starting runs', () => {
  const due = { nextRunTime: '2030-01-01T10:00:00.000Z' };
  const cases: {
    name: string;
    p: RetentionPolicy;
    o: Partial<Observed>;
    start: boolean;
    next?: string;
    event?: string;
  }[] = [
    {
      name: 'first look: schedule only, no run',
      p: policy(),
      o: {},
      start: false,
      next: '2030-01-01T11:00:00.000Z',
    },
    {
      name: 'due: a run starts',
      p: policy({ status: due }),
      o: {},
      start: true,
      next: '2030-01-01T11:00:00.000Z',
    },
    {
      name: 'due, another run active: skipped',
      p: policy({ status: due }),
      o: { runs: [run('r1', 60, { state: 'Running' })] },
      start: false,
      event: 'RunSkipped',
    },
    {
      name: 'due, registry missing: skipped',
      p: policy({ status: due }),
      o: { registryFound: false },
      start: false,
      event: 'RunSkipped',
    },
    {
      name: 'due during GC: waits and stays due',
      p: policy({ status: due }),
      o: { blockedBy: 'garbage collection' },
      start: false,
      next: due.nextRunTime,
      event: 'RunWaiting',
    },
    {
      name: 'on demand, newer than the last start',
      p: policy({
        annotations: { 'berth.dev/run-requested-at': ago(10) },
        status: { nextRunTime: '2030-01-01T11:00:00.000Z', lastRun: { startTime: ago(3600) } },
      }),
      o: {},
      start: true,
    },
    {
      name: 'on demand, already served',
      p: policy({
        annotations: { 'berth.dev/run-requested-at': ago(10) },
        status: { nextRunTime: '2030-01-01T11:00:00.000Z', lastRun: { startTime: ago(5) } },
      }),
      o: {},
      start: false,
    },
    {
      name: 'on demand, served by a Job created in the same second',
      p: policy({
        annotations: { 'berth.dev/run-requested-at': NOW.toISOString() },
        status: { nextRunTime: '2030-01-01T11:00:00.000Z' },
      }),
      o: { runs: [run('r1', 0, { state: 'Succeeded' })] },
      start: false,
    },
    {
      name: 'on demand in the future: ignored with a warning',
      p: policy({
        annotations: { 'berth.dev/run-requested-at': '2031-01-01T00:00:00Z' },
        status: { nextRunTime: '2030-01-01T11:00:00.000Z' },
      }),
      o: {},
      start: false,
      event: 'InvalidRunRequest',
    },
    {
      name: 'on demand, garbage: ignored with a warning',
      p: policy({
        annotations: { 'berth.dev/run-requested-at': 'now please' },
        status: { nextRunTime: '2030-01-01T11:00:00.000Z' },
      }),
      o: {},
      start: false,
      event: 'InvalidRunRequest',
    },
  ];
  it.each(cases)('$name', ({ p, o, start, next, event }) => {
    const d = decide(p, observed(o));
    expect(kinds(d).includes('createJob')).toBe(start);
    if (next) expect(d.nextRunTime).toBe(next);
    if (event) expect(d.actions).toContainEqual(expect.objectContaining({ kind: 'event', reason: event }));
  });

  it('a started run names its Job and report, and lastRun says it started', () => {
    const d = decide(
      policy({ status: { nextRunTime: '2030-01-01T10:00:00.000Z' }, mode: 'Enforce' }),
      observed(),
    );
    const names = runNames({ name: 'ci', namespace: 'team-a' }, NOW);
    expect(d.actions).toContainEqual({
      kind: 'createJob',
      job: names.job,
      report: names.report,
      mode: 'Enforce',
    });
    expect(d.lastRun).toEqual({ startTime: NOW.toISOString(), mode: 'Enforce', report: names.report });
  });

  it('an invalid schedule is reported, nothing runs', () => {
    const d = decide(policy({ schedule: '@hourly' }), observed());
    expect(d.ready).toMatchObject({ status: 'False', reason: 'InvalidSchedule' });
    expect(kinds(d)).toEqual([]);
  });
});

describe('decide: recording finished runs', () => {
  const started = { startTime: ago(120), mode: 'Enforce', report: 'r1-report' };
  const cases: {
    name: string;
    state: RunView['state'];
    summary?: Observed['summary'];
    result: string;
    ready: string;
    event: string;
  }[] = [
    {
      name: 'succeeded with its report',
      state: { state: 'Succeeded' },
      summary: { result: 'Succeeded', evaluated: 9, deleted: 2, kept: 6, protected: 1 },
      result: 'Succeeded',
      ready: 'Scheduled',
      event: 'RunSucceeded',
    },
    {
      name: 'refused by the circuit breaker',
      state: { state: 'Succeeded' },
      summary: { result: 'Refused', refusedReason: 'too many' },
      result: 'Refused',
      ready: 'TooManyDeletions',
      event: 'RunRefused',
    },
    {
      name: 'Job failed with a report',
      state: { state: 'Failed', message: 'BackoffLimitExceeded' },
      summary: { result: 'Failed', message: 'unreachable' },
      result: 'Failed',
      ready: 'RunFailed',
      event: 'RunFailed',
    },
    {
      name: 'Job failed without a report',
      state: { state: 'Failed', message: 'BackoffLimitExceeded' },
      result: 'Failed',
      ready: 'RunFailed',
      event: 'RunFailed',
    },
    {
      name: 'Job succeeded without a report',
      state: { state: 'Succeeded' },
      result: 'Failed',
      ready: 'RunFailed',
      event: 'RunFailed',
    },
  ];
  it.each(cases)('$name', ({ state, summary, result, ready, event }) => {
    const p = policy({ status: { nextRunTime: '2030-01-01T11:00:00.000Z', lastRun: started } });
    const runs = [run('r1', 120, state)];
    expect(unrecordedRun(p, runs)?.job).toBe('r1');
    const d = decide(p, observed({ runs, ...(summary ? { summary } : {}) }));
    expect(d.lastRun).toMatchObject({
      result,
      report: 'r1-report',
      startTime: started.startTime,
      completionTime: expect.any(String),
    });
    expect(d.ready.reason).toBe(ready);
    expect(d.actions).toContainEqual(expect.objectContaining({ kind: 'event', reason: event }));
    if (summary?.evaluated !== undefined)
      expect(d.lastRun).toMatchObject({ evaluated: 9, deleted: 2, kept: 6, protected: 1 });
  });

  it('records a run once', () => {
    const p = policy({
      status: {
        nextRunTime: '2030-01-01T11:00:00.000Z',
        lastRun: { ...started, result: 'Succeeded', completionTime: ago(60) },
      },
    });
    const runs = [run('r1', 120, { state: 'Succeeded' })];
    expect(unrecordedRun(p, runs)).toBeUndefined();
    expect(decide(p, observed({ runs })).actions).toEqual([]);
  });
});

describe('decide: the reason a run failed reaches Ready', () => {
  const started = { startTime: ago(120), mode: 'Enforce', report: 'r1-report' };
  const p = policy({ status: { nextRunTime: '2030-01-01T11:00:00.000Z', lastRun: started } });
  const failedJob = run('r1', 120, {
    state: 'Failed',
    message: 'BackoffLimitExceeded: Job has reached the specified backoff limit',
  });
  it.each<[string, Partial<Observed>, RegExp, RegExp | undefined]>([
    [
      'no report, the container said why (usage error)',
      {
        failure:
          'berth retention-run: --storage-root (or BERTH_RETENTION_STORAGE_ROOT) or --s3-bucket is required',
      },
      /^the last run failed: Job r1 failed: berth retention-run: --storage-root .* or --s3-bucket is required$/,
      /ConfigMap/,
    ],
    [
      'no report, no termination message: the Job condition',
      {},
      /^the last run failed: Job r1 failed: BackoffLimitExceeded: Job has reached the specified backoff limit$/,
      /ConfigMap/,
    ],
    [
      'a Failed report: its message, and the report named',
      {
        summary: { result: 'Failed', message: 'GET /v2/_catalog: HTTP 503' },
        failure: 'GET /v2/_catalog: HTTP 503',
      },
      /^the last run failed: GET \/v2\/_catalog: HTTP 503; report: ConfigMap r1-report$/,
      undefined,
    ],
  ])('%s', (_name, o, message, absent) => {
    const d = decide(p, observed({ runs: [failedJob], ...o }));
    expect(d.ready).toMatchObject({
      status: 'False',
      reason: 'RunFailed',
      message: expect.stringMatching(message),
    });
    if (absent) expect(d.ready.message).not.toMatch(absent);
    const event = d.actions.find((a) => a.kind === 'event' && a.reason === 'RunFailed');
    expect(event).toMatchObject({ message: expect.stringMatching(/^run Failed: /) });
    if (absent && event?.kind === 'event') expect(event.message).not.toMatch(absent);
  });

  it('the reason stays in Ready on the next reconciles', () => {
    const first = decide(p, observed({ runs: [failedJob], failure: 'connection refused' }));
    const recorded = policy({
      status: {
        nextRunTime: '2030-01-01T11:00:00.000Z',
        ...(first.lastRun ? { lastRun: first.lastRun } : {}),
        conditions: [{ ...first.ready, lastTransitionTime: NOW.toISOString() }],
      },
    });
    const again = decide(recorded, observed({ runs: [failedJob] }));
    expect(again.ready.message).toBe(first.ready.message);
    expect(again.ready.message).toMatch(/connection refused/);
  });

  it.each<[string | undefined, string | undefined]>([
    [undefined, undefined],
    ['', undefined],
    ['  \n\n', undefined],
    [
      'berth retention-run: --mode must be DryRun or Enforce\n',
      'berth retention-run: --mode must be DryRun or Enforce',
    ],
    ['a\nb\nc\nd\n', 'b / c / d'],
    ['x'.repeat(700), `…${'x'.repeat(599)}`],
  ])('failureDetail(%j)', (text, out) => expect(failureDetail(text)).toBe(out));
});

describe('decide: a Registry whose storage a run cannot read', () => {
  const unsupported = 'spec.storage.emptyDir: ...';
  it('is refused up front: Ready=False with the reason, one Warning, and no Job when a run is due', () => {
    const first = decide(policy(), observed({ unsupported }));
    expect(first.ready).toMatchObject({
      status: 'False',
      reason: 'RetentionUnsupported',
      message: unsupported,
    });
    expect(first.actions).toEqual([
      { kind: 'event', type: 'Warning', reason: 'RetentionUnsupported', message: unsupported },
    ]);
    const refused = policy({
      status: {
        nextRunTime: '2030-01-01T10:00:00.000Z',
        conditions: [{ ...first.ready, lastTransitionTime: NOW.toISOString() }],
      },
    });
    const due = decide(refused, observed({ unsupported }));
    expect(kinds(due)).toEqual(['event']);
    expect(due.actions[0]).toMatchObject({
      reason: 'RetentionUnsupported',
      message: expect.stringMatching(/was not started: spec.storage.emptyDir/),
    });
    expect(due.nextRunTime).toBe('2030-01-01T11:00:00.000Z');
    const quiet = policy({
      status: {
        nextRunTime: '2030-01-01T11:00:00.000Z',
        conditions: [{ ...first.ready, lastTransitionTime: NOW.toISOString() }],
      },
    });
    expect(decide(quiet, observed({ unsupported })).actions).toEqual([]);
  });
});

describe('decide: bounded history', () => {
  it(`keeps the ${historyLimit} newest finished runs, deletes the others with their reports`, () => {
    const runs = [
      run('r5', 10, { state: 'Running' }),
      run('r4', 100, { state: 'Succeeded' }),
      run('r3', 200, { state: 'Failed', message: 'x' }),
      run('r2', 300, { state: 'Succeeded' }),
      run('r1', 400, { state: 'Succeeded' }),
      run('r0', 500, { state: 'Succeeded' }),
    ];
    const p = policy({
      status: {
        nextRunTime: '2030-01-01T11:00:00.000Z',
        lastRun: { report: 'r4-report', completionTime: ago(90) },
      },
    });
    const d = decide(p, observed({ runs }));
    expect(d.actions.filter((a) => a.kind !== 'event')).toEqual([
      { kind: 'deleteReport', report: 'r1-report' },
      { kind: 'deleteJob', job: 'r1' },
      { kind: 'deleteReport', report: 'r0-report' },
      { kind: 'deleteJob', job: 'r0' },
    ]);
  });
});

describe('parseSummary and runNames', () => {
  it.each([
    [undefined, undefined],
    ['not json', undefined],
    [
      '{"result":"Succeeded","deleted":3,"kept":-1,"mode":"DryRun"}',
      { result: 'Succeeded', deleted: 3, mode: 'DryRun' },
    ],
    ['{"result":"Maybe","evaluated":1.5}', {}],
  ])('%j', (text, out) => {
    expect(parseSummary(text)).toEqual(out);
  });

  it('names fit in 63 characters and differ per policy namespace', () => {
    const long = { name: 'x'.repeat(253), namespace: 'team-a' };
    const a = runNames(long, NOW);
    expect(a.job.length).toBeLessThanOrEqual(63);
    expect(a.report.length).toBeLessThanOrEqual(63);
    expect(a.job).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(runNames({ name: 'ci', namespace: 'a' }, NOW).job).not.toBe(
      runNames({ name: 'ci', namespace: 'b' }, NOW).job,
    );
  });
});

describe('startOrSkip: a due run', () => {
  const running = [run('retention-ci-a', 30, { state: 'Running' })];
  it.each<[string, Partial<Observed>, RunView[], string, string | undefined]>([
    ['no Registry: skipped', { registryFound: false }, [], 'event:RunSkipped', /does not exist/.source],
    [
      'unsupported storage: not started',
      { unsupported: 'emptyDir' },
      [],
      'event:RetentionUnsupported',
      'emptyDir',
    ],
    ['a run still active: skipped', {}, running, 'event:RunSkipped', 'retention-ci-a is still running'],
    [
      'a garbage collection: waits',
      { blockedBy: 'gc running' },
      [],
      'event:RunWaiting',
      'waiting: gc running',
    ],
    ['otherwise: started', {}, [], 'createJob', undefined],
  ])('%s', (_name, over, active, kind, message) => {
    const r = startOrSkip(policy(), observed(over), active, 'Enforce');
    const a = r.action;
    expect(a.kind === 'event' ? `event:${a.reason}` : a.kind).toBe(kind);
    if (message && a.kind === 'event') expect(a.message).toMatch(new RegExp(message));
    expect(r.waiting ?? false).toBe(kind === 'event:RunWaiting');
    if (a.kind === 'createJob')
      expect(r.lastRun).toEqual({ startTime: NOW.toISOString(), mode: 'Enforce', report: a.report });
    else expect(r.lastRun).toBeUndefined();
  });
});

describe('readyCondition: the first that applies', () => {
  const failed = { startTime: ago(60), report: 'r1', result: 'Failed' as const };
  it.each<[string, Partial<Observed>, Parameters<typeof readyCondition>[2], string, string, RegExp]>([
    [
      'an invalid schedule',
      { registryFound: false },
      { mode: 'DryRun', scheduleProblem: 'bad cron' },
      'False',
      'InvalidSchedule',
      /^bad cron$/,
    ],
    [
      'no Registry',
      { registryFound: false },
      { mode: 'DryRun' },
      'False',
      'RegistryNotFound',
      /registry-system\/main does not exist/,
    ],
    [
      'unsupported',
      { unsupported: 'emptyDir' },
      { mode: 'DryRun', lastRun: failed },
      'False',
      'RetentionUnsupported',
      /^emptyDir$/,
    ],
    [
      'failed now',
      {},
      { mode: 'DryRun', lastRun: failed, failedNow: 'boom' },
      'False',
      'RunFailed',
      /^the last run failed: boom$/,
    ],
    [
      'failed before: the reason kept',
      {},
      {
        mode: 'DryRun',
        lastRun: failed,
        previousReady: { reason: 'RunFailed', message: 'the last run failed: boom' },
      },
      'False',
      'RunFailed',
      /^the last run failed: boom$/,
    ],
    [
      'failed, no reason known',
      {},
      { mode: 'DryRun', lastRun: failed },
      'False',
      'RunFailed',
      /see the Events of the policy \(report ConfigMap r1\)/,
    ],
    [
      'refused',
      {},
      { mode: 'DryRun', lastRun: { ...failed, result: 'Refused' } },
      'False',
      'TooManyDeletions',
      /see ConfigMap r1$/,
    ],
    [
      'scheduled, Enforce',
      {},
      { mode: 'Enforce', nextRunTime: ago(-60) },
      'True',
      'Scheduled',
      /^deletes; next run at /,
    ],
    [
      'scheduled, DryRun',
      {},
      { mode: 'DryRun', nextRunTime: ago(-60) },
      'True',
      'Scheduled',
      /^reports \(DryRun\)/,
    ],
  ])('%s', (_name, over, input, status, reason, message) => {
    const ready = readyCondition(policy(), observed(over), input);
    expect(ready).toMatchObject({ type: 'Ready', status, reason });
    expect(ready.message).toMatch(message);
  });
});

describe('policyStatus', () => {
  const before = {
    nextRunTime: ago(-60),
    lastRun: { startTime: ago(3600), report: 'old', result: 'Succeeded' as const },
    conditions: [
      {
        type: 'Ready',
        status: 'True' as const,
        reason: 'Scheduled',
        message: 'm',
        lastTransitionTime: '2029-01-01T00:00:00Z',
      },
    ],
  };
  const decision = {
    nextRunTime: ago(-3600),
    lastRun: { startTime: NOW.toISOString(), report: 'new', mode: 'DryRun' },
    ready: { type: 'Ready', status: 'True' as const, reason: 'Scheduled', message: 'next' },
    actions: [],
    requeueAfterMs: 5_000,
  };
  it.each<[string, boolean, Partial<typeof decision>, object, number]>([
    [
      'started: the decision',
      true,
      {},
      { nextRunTime: decision.nextRunTime, lastRun: decision.lastRun },
      5_000,
    ],
    [
      'locked meanwhile: the run stays due, as it was, looked at again in 30 s',
      false,
      {},
      { nextRunTime: before.nextRunTime, lastRun: before.lastRun },
      30_000,
    ],
    [
      'no next run time (an invalid schedule): none',
      true,
      { nextRunTime: undefined },
      { lastRun: decision.lastRun },
      5_000,
    ],
  ])('%s', (_name, started, over, want, requeue) => {
    const d = { ...decision, ...over };
    const r = policyStatus(policy({ status: before }), d, started, NOW);
    expect(r.requeueAfterMs).toBe(requeue);
    expect(r.status).toMatchObject({ observedGeneration: 1, ...want });
    if (!('nextRunTime' in want)) expect(r.status.nextRunTime).toBeUndefined();
    expect(r.status.conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Scheduled',
        message: 'next',
        observedGeneration: 1,
        lastTransitionTime: '2029-01-01T00:00:00Z',
      },
    ]);
  });
});
