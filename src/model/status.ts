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

type Problem = Extract<Check, { ok: false }>;

/**
 * The Registry's conditions, in the order they are written: Ready, Progressing, Degraded,
 * CertificateReady, StorageReady and (with node access) NodesReady.
 */
export function registryConditions(o: Observed): ConditionInput[] {
  const reg = rolloutOf(o.registry);
  const tok = rolloutOf(o.token);
  const problems = problemsOf(o);
  return [
    readyCondition(problems, reg, tok),
    progressingCondition(reg, tok),
    degradedCondition(problems, reg, tok, o.pullSecrets),
    checkCondition('CertificateReady', o.certificate, 'Issued', 'the serving certificate is valid'),
    checkCondition('StorageReady', o.storage, 'Bound', 'storage is ready'),
    ...(o.nodes ? [o.nodes] : []),
  ];
}

/** What is wrong, most important first: configuration, hosts, certificate, storage. */
export function problemsOf(o: Observed): Problem[] {
  return [o.config, o.hosts, o.certificate, o.storage].filter((c): c is Problem => !!c && !c.ok);
}

/** A condition that mirrors one check: True with `okReason`, or False with the check's reason. */
export function checkCondition(
  type: string,
  check: Check,
  okReason: string,
  okMessage: string,
): ConditionInput {
  return check.ok
    ? { type, status: 'True', reason: okReason, message: check.message ?? okMessage }
    : { type, status: 'False', reason: check.reason, message: check.message };
}

/** True while either Deployment's rollout of its current generation is unfinished. */
export function progressingCondition(reg: Rollout, tok: Rollout): ConditionInput {
  if (!reg.complete || !tok.complete)
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'RollingOut',
      message: `registry: ${reg.message}; token service: ${tok.message}`,
    };
  return {
    type: 'Progressing',
    status: 'False',
    reason: 'RolloutComplete',
    message: 'every pod runs the current configuration',
  };
}

/** The first problem; else a rollout past its deadline; else a credential rotation overdue. */
export function degradedCondition(
  problems: readonly Problem[],
  reg: Rollout,
  tok: Rollout,
  pullSecrets: Observed['pullSecrets'],
): ConditionInput {
  const first = problems[0];
  if (first) return { type: 'Degraded', status: 'True', reason: first.reason, message: first.message };
  const failedRollout = [reg.failed ? 'registry' : '', tok.failed ? 'token service' : ''].filter(Boolean);
  if (failedRollout.length > 0)
    return {
      type: 'Degraded',
      status: 'True',
      reason: 'RolloutFailed',
      message: `the ${failedRollout.join(' and ')} rollout exceeded its progress deadline`,
    };
  if (pullSecrets?.status === 'False' && pullSecrets.reason === 'RotationOverdue')
    return { type: 'Degraded', status: 'True', reason: pullSecrets.reason, message: pullSecrets.message };
  return { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problem found' };
}

/** False on the first problem, or until both Deployments have a pod available. */
export function readyCondition(problems: readonly Problem[], reg: Rollout, tok: Rollout): ConditionInput {
  const first = problems[0];
  if (first) return { type: 'Ready', status: 'False', reason: first.reason, message: first.message };
  if (reg.available < 1 || tok.available < 1)
    return {
      type: 'Ready',
      status: 'False',
      reason: 'PodsNotReady',
      message: `waiting for pods: registry ${reg.message}; token service ${tok.message}`,
    };
  return {
    type: 'Ready',
    status: 'True',
    reason: 'Available',
    message: `the registry serves (${reg.message})`,
  };
}
