// What a Registry's status says of its pull secrets: the outcome kept for each namespace looked
// at, their sum (status.pullSecrets) and the PullSecretsReady condition. Pure: the reconciler
// brings the outcomes and the time, and writes the result.
import type { ConditionUpdate } from '../runtime/conditions.ts';
import type { Step } from '../model/credential-secret.ts';
import { rotationOverdue } from '../model/rotation.ts';
import type { NamespaceOutcome } from './work.ts';

export interface Failure {
  namespace: string;
  reason: string;
  message: string;
}

/** The figures of status.pullSecrets. */
export interface Summary {
  selected: number;
  ready: number;
  failures: Failure[];
  lastRotation?: number;
  nextRotation?: number;
  overdue: boolean;
}

/** At most this many failures are listed in status.pullSecrets.failedNamespaces. */
const listedFailures = 100;

/** At most this many failures are named in the condition's message. */
const namedFailures = 5;

/** The figures of status.pullSecrets, from the kept outcomes of the selected namespaces. Pure. */
export function summarize(
  selected: readonly string[],
  outcomes: ReadonlyMap<string, NamespaceOutcome>,
): Summary {
  let ready = 0;
  let lastRotation: number | undefined;
  let nextRotation: number | undefined;
  let overdue = false;
  const failures: Failure[] = [];
  for (const ns of selected) {
    const o = outcomes.get(ns);
    if (!o) continue;
    if (o.ready) ready++;
    if (o.failure) failures.push(o.failure);
    if (o.lastRotation !== undefined) lastRotation = Math.max(lastRotation ?? 0, o.lastRotation);
    if (o.dueAt !== undefined) nextRotation = Math.min(nextRotation ?? Infinity, o.dueAt);
    if (o.overdue) overdue = true;
  }
  failures.sort((a, b) => a.namespace.localeCompare(b.namespace)); // a stable status
  return { selected: selected.length, ready, failures, lastRotation, nextRotation, overdue };
}

/**
 * The outcome kept for a selected namespace whose credential was written at `now`: ready, looked
 * at again at the step's recheck, with its rotation times. Pure.
 */
export function readyOutcome(step: Step, now: Date, gracePeriodMs: number): NamespaceOutcome {
  const issued = step.state.issuedAt?.getTime();
  return {
    ready: true,
    recheckAt: step.recheckAt.getTime(),
    dueAt: step.dueAt.getTime(),
    ...(issued !== undefined && step.state.previousHash ? { lastRotation: issued } : {}),
    overdue: rotationOverdue(now, step.dueAt, gracePeriodMs) && !step.state.pending,
  };
}

/**
 * status.pullSecrets from the summary; the last rotation time already in status is kept while no
 * kept outcome knows a later one (outcomes are not kept across restarts). Pure.
 */
export function pullSecretsStatus(
  summary: Summary,
  previous: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    selectedNamespaces: summary.selected,
    readyNamespaces: summary.ready,
    ...(summary.lastRotation
      ? { lastRotationTime: iso(summary.lastRotation) }
      : previous.lastRotationTime
        ? { lastRotationTime: previous.lastRotationTime }
        : {}),
    ...(summary.nextRotation !== undefined ? { nextRotationTime: iso(summary.nextRotation) } : {}),
    ...(summary.failures.length ? { failedNamespaces: summary.failures.slice(0, listedFailures) } : {}),
  };
}

/**
 * The PullSecretsReady condition: False with the first failure's reason while a namespace fails,
 * False (RotationOverdue) while a rotation is overdue, else True. Pure.
 */
export function pullSecretsCondition(summary: Summary): ConditionUpdate {
  const f = summary.failures;
  if (f.length)
    return {
      type: 'PullSecretsReady',
      status: 'False',
      reason: f[0]!.reason,
      message: `${f.length} of ${summary.selected} namespaces failed: ${f
        .slice(0, namedFailures)
        .map((x) => `${x.namespace} (${x.reason})`)
        .join(', ')}`,
    };
  if (summary.overdue)
    return {
      type: 'PullSecretsReady',
      status: 'False',
      reason: 'RotationOverdue',
      message: 'a credential rotation is overdue; the current credentials still work',
    };
  return {
    type: 'PullSecretsReady',
    status: 'True',
    reason: summary.selected ? 'AllNamespacesReady' : 'NoNamespacesSelected',
    message: `${summary.ready} of ${summary.selected} selected namespaces have a current pull secret`,
  };
}

/**
 * Whether the Registry's status already reports this namespace's failure: then it is not news,
 * and repeating its Event on every resync would be a write in a steady cluster.
 */
export function alreadyReported(
  failed: readonly { namespace: string; reason: string }[] | undefined,
  namespace: string,
  reason: string,
): boolean {
  return (failed ?? []).some((f) => f.namespace === namespace && f.reason === reason);
}

/** A time in status: whole seconds, RFC 3339. */
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
