import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import {
  checkCondition,
  degradedCondition,
  problemsOf,
  progressingCondition,
  readyCondition,
  registryConditions,
  rolloutOf,
  type Observed,
  type Rollout,
} from './status.ts';

function deployment(opts: {
  desired?: number;
  generation?: number;
  observed?: number;
  updated?: number;
  replicas?: number;
  available?: number;
  deadline?: boolean;
}): k8s.V1Deployment {
  const desired = opts.desired ?? 1;
  return {
    metadata: { generation: opts.generation ?? 1 },
    spec: { replicas: desired, selector: {}, template: {} },
    status: {
      observedGeneration: opts.observed ?? opts.generation ?? 1,
      updatedReplicas: opts.updated ?? desired,
      replicas: opts.replicas ?? desired,
      availableReplicas: opts.available ?? desired,
      conditions: opts.deadline
        ? [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: '' }]
        : [],
    },
  };
}

const ok = { ok: true } as const;
const summary = (o: Observed) =>
  Object.fromEntries(registryConditions(o).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe('rolloutOf', () => {
  it.each([
    { name: 'complete', d: deployment({}), complete: true },
    {
      name: 'old generation not yet observed',
      d: deployment({ generation: 2, observed: 1 }),
      complete: false,
    },
    { name: 'new pods not all updated', d: deployment({ desired: 2, updated: 1 }), complete: false },
    { name: 'an old pod still present', d: deployment({ replicas: 2 }), complete: false },
    { name: 'not available', d: deployment({ available: 0 }), complete: false },
    { name: 'missing', d: undefined, complete: false },
  ])('$name', (c) => expect(rolloutOf(c.d).complete).toBe(c.complete));
});

describe('registryConditions', () => {
  it('is Ready when both deployments serve and nothing is wrong', () => {
    expect(
      summary({ certificate: ok, storage: ok, registry: deployment({}), token: deployment({}) }),
    ).toEqual({
      Ready: 'True/Available',
      Progressing: 'False/RolloutComplete',
      Degraded: 'False/AsExpected',
      CertificateReady: 'True/Issued',
      StorageReady: 'True/Bound',
    });
  });

  it('waits for pods', () => {
    const s = summary({
      certificate: ok,
      storage: ok,
      registry: deployment({ available: 0 }),
      token: deployment({}),
    });
    expect(s.Ready).toBe('False/PodsNotReady');
    expect(s.Progressing).toBe('True/RollingOut');
  });

  it('stays Ready while a rollout is under way and a pod still serves', () => {
    const s = summary({
      certificate: ok,
      storage: ok,
      registry: deployment({ desired: 2, updated: 1, available: 2, replicas: 3 }),
      token: deployment({}),
    });
    expect(s.Ready).toBe('True/Available');
    expect(s.Progressing).toBe('True/RollingOut');
  });

  it('reports a storage problem on Ready, Degraded and StorageReady', () => {
    const s = summary({
      certificate: ok,
      storage: { ok: false, reason: 'StorageSecretMissing', message: 'Secret s3-creds not found' },
      registry: deployment({}),
      token: deployment({}),
    });
    expect(s).toMatchObject({
      Ready: 'False/StorageSecretMissing',
      Degraded: 'True/StorageSecretMissing',
      StorageReady: 'False/StorageSecretMissing',
    });
  });

  it('reports an Ingress host claimed by an older Registry on Ready and Degraded while the pods serve', () => {
    const s = summary({
      certificate: ok,
      storage: ok,
      hosts: { ok: false, reason: 'HostConflict', message: 'r.example.com is claimed by Registry a/first' },
      registry: deployment({}),
      token: deployment({}),
    });
    expect(s).toMatchObject({
      Ready: 'False/HostConflict',
      Degraded: 'True/HostConflict',
      StorageReady: 'True/Bound',
      CertificateReady: 'True/Issued',
    });
  });

  it('reports a certificate problem', () => {
    const s = summary({
      certificate: { ok: false, reason: 'CertManagerNotInstalled', message: 'no cert-manager' },
      storage: ok,
    });
    expect(s).toMatchObject({
      Ready: 'False/CertManagerNotInstalled',
      CertificateReady: 'False/CertManagerNotInstalled',
    });
  });

  it('reports an overdue pull-secret rotation as Degraded while it still serves', () => {
    const s = summary({
      certificate: ok,
      storage: ok,
      registry: deployment({}),
      token: deployment({}),
      pullSecrets: { status: 'False', reason: 'RotationOverdue', message: 'late' },
    });
    expect(s).toMatchObject({ Ready: 'True/Available', Degraded: 'True/RotationOverdue' });
  });

  it('reports a rollout that exceeded its deadline as Degraded', () => {
    const s = summary({
      certificate: ok,
      storage: ok,
      registry: deployment({ deadline: true }),
      token: deployment({}),
    });
    expect(s.Degraded).toBe('True/RolloutFailed');
  });
});

const rollout = (r: Partial<Rollout> = {}): Rollout => ({
  complete: true,
  available: 1,
  desired: 1,
  failed: false,
  message: '1/1 pods available',
  ...r,
});
const problem = (reason: string) => ({ ok: false as const, reason, message: `${reason}!` });
const brief = (c: { status: string; reason: string }) => `${c.status}/${c.reason}`;

describe('problemsOf', () => {
  it.each([
    { name: 'none', o: { certificate: ok, storage: ok }, reasons: [] },
    {
      name: 'configuration, hosts, certificate, storage: in that order',
      o: {
        certificate: problem('C'),
        storage: problem('S'),
        config: problem('G'),
        hosts: problem('H'),
      },
      reasons: ['G', 'H', 'C', 'S'],
    },
    {
      name: 'passing checks are left out',
      o: { certificate: ok, storage: problem('S'), hosts: ok },
      reasons: ['S'],
    },
  ])('$name', (c) => expect(problemsOf(c.o).map((p) => p.reason)).toEqual(c.reasons));
});

describe('checkCondition', () => {
  it.each([
    { name: 'ok, default message', check: ok, want: ['True', 'Bound', 'fine'] },
    {
      name: 'ok, its own message',
      check: { ok: true as const, message: 'mine' },
      want: ['True', 'Bound', 'mine'],
    },
    { name: 'a problem', check: problem('Missing'), want: ['False', 'Missing', 'Missing!'] },
  ])('$name', (c) => {
    const got = checkCondition('StorageReady', c.check, 'Bound', 'fine');
    expect([got.type, got.status, got.reason, got.message]).toEqual(['StorageReady', ...c.want]);
  });
});

describe('progressingCondition', () => {
  it.each([
    { name: 'both complete', reg: rollout(), tok: rollout(), want: 'False/RolloutComplete' },
    { name: 'registry rolling', reg: rollout({ complete: false }), tok: rollout(), want: 'True/RollingOut' },
    {
      name: 'token service rolling',
      reg: rollout(),
      tok: rollout({ complete: false }),
      want: 'True/RollingOut',
    },
  ])('$name', (c) => expect(brief(progressingCondition(c.reg, c.tok))).toBe(c.want));
});

describe('degradedCondition', () => {
  const overdue = { status: 'False', reason: 'RotationOverdue', message: 'late' };
  it.each([
    { name: 'nothing wrong', problems: [], reg: rollout(), pull: undefined, want: 'False/AsExpected' },
    {
      name: 'the first problem wins',
      problems: [problem('A'), problem('B')],
      reg: rollout({ failed: true }),
      pull: overdue,
      want: 'True/A',
    },
    {
      name: 'a failed rollout before a rotation',
      problems: [],
      reg: rollout({ failed: true }),
      pull: overdue,
      want: 'True/RolloutFailed',
    },
    { name: 'a rotation overdue', problems: [], reg: rollout(), pull: overdue, want: 'True/RotationOverdue' },
    {
      name: 'another pull-secret reason is no degradation',
      problems: [],
      reg: rollout(),
      pull: { status: 'False', reason: 'Other', message: '' },
      want: 'False/AsExpected',
    },
  ])('$name', (c) => expect(brief(degradedCondition(c.problems, c.reg, rollout(), c.pull))).toBe(c.want));

  it('names both rollouts that failed', () => {
    const d = degradedCondition([], rollout({ failed: true }), rollout({ failed: true }), undefined);
    expect(d.message).toBe('the registry and token service rollout exceeded its progress deadline');
  });
});

describe('readyCondition', () => {
  it.each([
    { name: 'serving', problems: [], reg: rollout(), tok: rollout(), want: 'True/Available' },
    { name: 'a problem', problems: [problem('P')], reg: rollout(), tok: rollout(), want: 'False/P' },
    {
      name: 'no registry pod',
      problems: [],
      reg: rollout({ available: 0 }),
      tok: rollout(),
      want: 'False/PodsNotReady',
    },
    {
      name: 'no token pod',
      problems: [],
      reg: rollout(),
      tok: rollout({ available: 0 }),
      want: 'False/PodsNotReady',
    },
    {
      name: 'serving while rolling',
      problems: [],
      reg: rollout({ complete: false }),
      tok: rollout(),
      want: 'True/Available',
    },
  ])('$name', (c) => expect(brief(readyCondition(c.problems, c.reg, c.tok))).toBe(c.want));
});
