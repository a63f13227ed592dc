// Status conditions by the Kubernetes API conventions: one entry per type; lastTransitionTime
// changes only when status flips; observedGeneration records the generation it describes.
// Readers tolerate garbage (a status written by another client): anything that is not a
// well-formed condition is ignored rather than thrown on.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message?: string;
}

function isCondition(value: unknown): value is Condition {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Record<string, unknown>;
  return (
    typeof c.type === 'string' &&
    (c.status === 'True' || c.status === 'False' || c.status === 'Unknown') &&
    typeof c.lastTransitionTime === 'string'
  );
}

/** The well-formed conditions in `status.conditions`, whatever `status` holds. */
export function readConditions(status: unknown): Condition[] {
  if (typeof status !== 'object' || status === null) return [];
  const list = (status as { conditions?: unknown }).conditions;
  if (!Array.isArray(list)) return [];
  return list.filter(isCondition).map((c) => ({
    type: c.type,
    status: c.status,
    reason: typeof c.reason === 'string' ? c.reason : '',
    message: typeof c.message === 'string' ? c.message : '',
    ...(typeof c.observedGeneration === 'number' ? { observedGeneration: c.observedGeneration } : {}),
    lastTransitionTime: c.lastTransitionTime,
  }));
}

export function findCondition(conditions: readonly Condition[], type: string): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

/**
 * Returns the conditions with `update` applied for `generation` at `now` (ms). The transition
 * time is kept when the status did not flip; other types keep their order.
 */
export function setCondition(
  conditions: readonly Condition[],
  update: ConditionUpdate,
  generation: number | undefined,
  now: number,
): Condition[] {
  const existing = findCondition(conditions, update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message ?? '',
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime:
      existing && existing.status === update.status ? existing.lastTransitionTime : rfc3339(now),
  };
  return existing ? conditions.map((c) => (c.type === update.type ? next : c)) : [...conditions, next];
}

export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

/** RFC 3339 to the second, as metav1.Time serialises. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
