// Helpers over objects: owner references, finalizers, labels, and deep comparison.
import type { KubeObject, OwnerReference } from './kube/client.ts';

export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedByBerth = { [managedByLabel]: 'berth' };
export const managedBySelector = `${managedByLabel}=berth`;

/** A controller owner reference to `owner` (which must have been read from the API: it needs a uid). */
export function ownerReference(owner: KubeObject, options: { controller?: boolean } = {}): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) throw new Error('an owner needs apiVersion, kind, name and uid');
  const controller = options.controller ?? true;
  return { apiVersion, kind, name, uid, controller, blockOwnerDeletion: controller };
}

/** The controller owner reference of `obj`, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  const refs = obj.metadata?.ownerReferences;
  return Array.isArray(refs) ? refs.find((r) => r?.controller === true) : undefined;
}

const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0] : '');

/**
 * A mapping for secondary informers: the keys of the owners of `obj` of the given group and kind
 * (the controller owner only, unless `anyOwner`), in `obj`'s namespace.
 */
export function mapToOwner(group: string, kind: string, options: { anyOwner?: boolean } = {}) {
  return (obj: KubeObject): string[] => {
    const refs = obj.metadata?.ownerReferences;
    if (!Array.isArray(refs)) return [];
    const ns = obj.metadata?.namespace;
    return refs
      .filter((r) => r && r.kind === kind && groupOf(String(r.apiVersion)) === group)
      .filter((r) => options.anyOwner || r.controller === true)
      .map((r) => (ns ? `${ns}/${r.name}` : r.name));
  };
}

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  const list = obj.metadata?.finalizers;
  return Array.isArray(list) && list.includes(finalizer);
}

export function isBeingDeleted(obj: KubeObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/**
 * The shared prologue of a reconcile keyed by its primary object: the object from the cache, and a
 * copy the reconcile may change; undefined when it is gone or being deleted (what it owns goes
 * with it by garbage collection).
 */
export function liveObject<T extends KubeObject>(
  cache: { get(name: string, namespace?: string): T | undefined },
  key: { name: string; namespace?: string },
): { cached: T; object: T } | undefined {
  const cached = cache.get(key.name, key.namespace);
  if (!cached || isBeingDeleted(cached)) return undefined;
  return { cached, object: structuredClone(cached) };
}

/** Deep equality of JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}

/**
 * True when every field set in `desired` has the same value in `actual` (maps compared by key,
 * lists as a whole): applying `desired` would change none of those fields.
 */
export function containsFields(actual: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object' || Array.isArray(desired)) {
    if (Array.isArray(desired) && Array.isArray(actual))
      return desired.length === actual.length && desired.every((d, i) => containsFields(actual[i], d));
    return jsonEqual(actual, desired);
  }
  if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => containsFields(a[k], v));
}
