// Pure: the Registry's conditions from what its children report. Timestamps and
// observedGeneration are added when the conditions are merged into the status.
import type * as k8s from '@kubernetes/client-node';

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export type Check =
  { ok: true; message?: string } | { ok: false; reason: string; message: string; terminal?: boolean };

export interface Observed {
  certificate: Check;
  storage: Check;
  /** A problem found while building or applying the desired objects. */
  config?: Check;
  /** The Ingress host is claimed by an older Registry (src/model/hosts.ts): HostConflict. */
  hosts?: Check;
  registry?: k8s.V1Deployment;
  token?: k8s.V1Deployment;
  /** The pull-secret controller's condition: a rotation overdue makes the Registry Degraded. */
  pullSecrets?: { status: string; reason: string; message: string };
  /** NodesReady (node agents, src/registry/node-access-step.ts); absent when nodeAccess is off. */
  nodes?: ConditionInput;
}

export interface Rollout {
  complete: boolean;
  available: number;
  desired: number;
  failed: boolean;
  message: string;
}

/** Whether a Deployment's rollout of its current generation has finished. */
export function rolloutOf(d: k8s.V1Deployment | undefined): Rollout {
  if (!d) return { complete: false, available: 0, desired: 0, failed: false, message: 'not created yet' };
  const desired = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  const observedCurrent = (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
  const available = s.availableReplicas ?? 0;
  const complete =
    observedCurrent &&
    (s.updatedReplicas ?? 0) === desired &&
    (s.replicas ?? 0) === desired &&
    available === desired;
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  const failed = progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded';
  const message = complete
    ? `${available}/${desired} pods available`
    : `${s.updatedReplicas ?? 0}/${desired} pods updated, ${available}/${desired} available`;
  return { complete, available, desired, failed, message };
}

export function registryConditions(o: Observed): ConditionInput[] {
  const reg = rolloutOf(o.registry);
  const tok = rolloutOf(o.token);
  const problems = [o.config, o.hosts, o.certificate, o.storage].filter(
    (c): c is Extract<Check, { ok: false }> => !!c && !c.ok,
  );
  const cert: ConditionInput = o.certificate.ok
    ? {
        type: 'CertificateReady',
        status: 'True',
        reason: 'Issued',
        message: o.certificate.message ?? 'the serving certificate is valid',
      }
    : {
        type: 'CertificateReady',
        status: 'False',
        reason: o.certificate.reason,
        message: o.certificate.message,
      };
  const storage: ConditionInput = o.storage.ok
    ? {
        type: 'StorageReady',
        status: 'True',
        reason: 'Bound',
        message: o.storage.message ?? 'storage is ready',
      }
    : { type: 'StorageReady', status: 'False', reason: o.storage.reason, message: o.storage.message };
  const rolling = !reg.complete || !tok.complete;
  const progressing: ConditionInput = rolling
    ? {
        type: 'Progressing',
        status: 'True',
        reason: 'RollingOut',
        message: `registry: ${reg.message}; token service: ${tok.message}`,
      }
    : {
        type: 'Progressing',
        status: 'False',
        reason: 'RolloutComplete',
        message: 'every pod runs the current configuration',
      };
  const rotation =
    o.pullSecrets?.status === 'False' && o.pullSecrets.reason === 'RotationOverdue'
      ? o.pullSecrets
      : undefined;
  const failedRollout = [reg.failed ? 'registry' : '', tok.failed ? 'token service' : ''].filter(Boolean);
  const degraded: ConditionInput =
    problems.length > 0
      ? { type: 'Degraded', status: 'True', reason: problems[0]!.reason, message: problems[0]!.message }
      : failedRollout.length > 0
        ? {
            type: 'Degraded',
            status: 'True',
            reason: 'RolloutFailed',
            message: `the ${failedRollout.join(' and ')} rollout exceeded its progress deadline`,
          }
        : rotation
          ? { type: 'Degraded', status: 'True', reason: rotation.reason, message: rotation.message }
          : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problem found' };
  let ready: ConditionInput;
  if (problems.length > 0) {
    ready = { type: 'Ready', status: 'False', reason: problems[0]!.reason, message: problems[0]!.message };
  } else if (reg.available < 1 || tok.available < 1) {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'PodsNotReady',
      message: `waiting for pods: registry ${reg.message}; token service ${tok.message}`,
    };
  } else {
    ready = {
      type: 'Ready',
      status: 'True',
      reason: 'Available',
      message: `the registry serves (${reg.message})`,
    };
  }
  return [ready, progressing, degraded, cert, storage, ...(o.nodes ? [o.nodes] : [])];
}
