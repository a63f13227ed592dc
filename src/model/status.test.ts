import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { registryConditions, rolloutOf, type Observed } from './status.ts';

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
