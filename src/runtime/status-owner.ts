// One owner per status field. Each controller that writes an object's status declares the fields
// and condition types it owns and writes them by server-side apply of the status subresource with
// its own field manager (applyStatus in writes.ts), so two controllers writing one object's status
// never replace each other's fields and never conflict on its resourceVersion. Pure: which part of
// a computed status an owner writes, and which writes bring the object there (none when it holds it).
import { jsonEqual } from './objects.ts';

export interface StatusOwner {
  /** The field manager of this owner's status applies, for example `berth-registry`. */
  manager: string;
  /** Top-level status fields this owner writes (not `conditions`). */
  fields: readonly string[];
  /** Condition types this owner writes. */
  conditions: readonly string[];
}

type Status = Record<string, unknown>;

const asStatus = (value: unknown): Status =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Status) : {};

const conditionType = (c: unknown): string | undefined => {
  const type = asStatus(c).type;
  return typeof type === 'string' ? type : undefined;
};

/** The part of `status` that `owner` writes: its fields that are set, and its conditions. */
export function ownedPart(status: unknown, owner: StatusOwner): Status {
  const s = asStatus(status);
  const part: Status = {};
  for (const field of owner.fields) if (s[field] !== undefined) part[field] = s[field];
  const list = Array.isArray(s.conditions) ? s.conditions : [];
  const conditions = list.filter((c) => owner.conditions.includes(conditionType(c) ?? ''));
  if (conditions.length > 0) part.conditions = conditions;
  return part;
}

/** Conditions compared by type, whatever their order in the list. */
function byType(part: Status): Status {
  const list = Array.isArray(part.conditions) ? part.conditions : [];
  const sorted = [...list].sort((a, b) => (conditionType(a) ?? '').localeCompare(conditionType(b) ?? ''));
  return sorted.length > 0 ? { ...part, conditions: sorted } : part;
}

/** True when the owned parts of two statuses hold the same values. */
export function samePart(a: Status, b: Status): boolean {
  return jsonEqual(byType(a), byType(b));
}

export type JsonPatchOp = { op: 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

export interface StatusWrites {
  /** JSON patch of the status subresource: the owner's fields and conditions it no longer wants. */
  removals: JsonPatchOp[];
  /** The owner's part to apply; undefined when the object already holds it. */
  apply?: Status;
}

/**
 * The writes that bring `obj`'s status to `desired` (the owner's part of the computed status).
 * What the owner drops is removed by a JSON patch that first tests the value: server-side apply
 * removes only what the owner alone manages, and a field an older berth wrote by replace (or
 * that another manager set to the same value) would otherwise stay, and be written for ever.
 */
export function statusWrites(obj: { status?: unknown }, owner: StatusOwner, desired: Status): StatusWrites {
  const status = asStatus(obj.status);
  const removals: JsonPatchOp[] = [];
  for (const field of owner.fields)
    if (status[field] !== undefined && desired[field] === undefined)
      removals.push(...testAndRemove(`/status/${field}`, status[field]));
  const wanted = new Set((Array.isArray(desired.conditions) ? desired.conditions : []).map(conditionType));
  const list = Array.isArray(status.conditions) ? status.conditions : [];
  for (let i = list.length - 1; i >= 0; i--) {
    const type = conditionType(list[i]) ?? '';
    if (owner.conditions.includes(type) && !wanted.has(type))
      removals.push(...testAndRemove(`/status/conditions/${i}`, list[i]));
  }
  const kept = ownedPart(status, owner);
  for (const field of Object.keys(kept)) if (desired[field] === undefined) delete kept[field];
  if (Array.isArray(kept.conditions)) {
    const still = (kept.conditions as unknown[]).filter((c) => wanted.has(conditionType(c)));
    if (still.length > 0) kept.conditions = still;
    else delete kept.conditions;
  }
  return samePart(kept, desired) ? { removals } : { removals, apply: desired };
}

const testAndRemove = (path: string, value: unknown): JsonPatchOp[] => [
  { op: 'test', path, value },
  { op: 'remove', path },
];
