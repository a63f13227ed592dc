// What the runtime writes when a reconcile ends in a TerminalError or a WaitingError, for a
// controller that reports to its object's status (ControllerDefinition.reportTo): the condition
// (Ready unless the controller names another) False with the error's reason and message, the
// object's observedGeneration, and the status fields the error carries; and whether the problem
// is new, which is when a terminal error's Warning Event is emitted (a steady cluster sees no
// writes from berth, Event series updates included). Pure.
import { readConditions, setCondition } from './conditions.ts';
import type { ReportedOutcome } from './errors.ts';
import type { KubeObject } from './kube/client.ts';
import type { ResourceType } from './kube/resource.ts';
import type { StatusOwner } from './status-owner.ts';

export interface ReportTo<T extends KubeObject = KubeObject> {
  /** The primary resource, whose status subresource the runtime writes. */
  type: ResourceType<T>;
  /** The reconciler's part of the status (the runtime writes with its field manager). */
  owner: StatusOwner;
  /** The condition the runtime sets (default Ready); one of the owner's. */
  condition?: string;
}

export interface Report {
  /** The status to write (the owner's part is what applyStatus sends). */
  status: Record<string, unknown>;
  /** False when the condition already says this for this generation. */
  isNew: boolean;
}

export function reportOf(
  obj: KubeObject & { status?: unknown },
  outcome: ReportedOutcome,
  condition: string,
  now: number,
): Report {
  const generation = obj.metadata?.generation;
  const conditions = readConditions(obj.status);
  const previous = conditions.find((c) => c.type === condition);
  const isNew = !(
    previous?.status === 'False' &&
    previous.reason === outcome.reason &&
    previous.message === outcome.message &&
    previous.observedGeneration === generation
  );
  const base =
    typeof obj.status === 'object' && obj.status !== null ? (obj.status as Record<string, unknown>) : {};
  const status: Record<string, unknown> = {
    ...base,
    ...(outcome.status ?? {}),
    observedGeneration: generation,
    conditions: setCondition(
      conditions,
      { type: condition, status: 'False', reason: outcome.reason, message: outcome.message },
      generation,
      now,
    ),
  };
  return { status, isNew };
}
