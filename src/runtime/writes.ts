// Writes that follow "write only the difference":
// - applyOwned: server-side apply with field manager `berth`, skipped when the cached object
//   already has every desired field and berth owns no field it no longer wants; fields owned by
//   other managers are left alone by the API server;
// - applyStatus: the fields of the status subresource one controller owns (status-owner.ts), by
//   server-side apply with that controller's field manager, only when they differ, with the cached
//   resourceVersion as precondition (a concurrent writer makes it fail with 409: retry);
// - addFinalizer / removeFinalizer: a merge patch with a resourceVersion precondition.
import type { KubeClient, KubeObject } from './kube/client.ts';
import { ConflictError, statusCodeOf } from './errors.ts';
import { apiVersionOf, objectPath, type ResourceType } from './kube/resource.ts';
import { containsFields, hasFinalizer } from './objects.ts';
import { ownedPart, statusWrites, type StatusOwner } from './status-owner.ts';

export const fieldManager = 'berth';

export interface ApplyResult<T> {
  changed: boolean;
  object: T;
}

/**
 * Applies `desired` (with apiVersion, kind, metadata.name and, if namespaced, metadata.namespace).
 * `current` is the object from the informer cache, if any: when nothing would change, no request
 * is made. `changed` compares resourceVersions before and after.
 */
export async function applyOwned<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType<T>,
  desired: T,
  current: T | undefined,
  manager = fieldManager,
): Promise<ApplyResult<T>> {
  if (current && containsFields(current, desired) && ownsOnly(current, desired, manager)) {
    return { changed: false, object: current };
  }
  const name = desired.metadata?.name;
  if (!name) throw new Error('applyOwned: desired.metadata.name is required');
  const object = await client.apply<T>(objectPath(type, name, desired.metadata?.namespace), desired, manager);
  return { changed: object.metadata?.resourceVersion !== current?.metadata?.resourceVersion, object };
}

/** applyOwned with the current object taken from an informer cache. */
export async function applyCached<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType<T>,
  desired: T,
  cache: { get(name: string, namespace?: string): T | undefined },
): Promise<T> {
  const current = cache.get(desired.metadata?.name ?? '', desired.metadata?.namespace);
  return (await applyOwned(client, type, desired, current)).object;
}

/** True when every field `manager` owns by apply in `current` is also set in `desired`. */
export function ownsOnly(current: KubeObject, desired: KubeObject, manager = fieldManager): boolean {
  const entry = current.metadata?.managedFields?.find(
    (m) => m.manager === manager && m.operation === 'Apply' && !m.subresource,
  );
  if (!entry?.fieldsV1) return true;
  return ownedWithin(entry.fieldsV1, desired);
}

function ownedWithin(fields: object, desired: unknown): boolean {
  for (const [key, children] of Object.entries(fields)) {
    if (!key.startsWith('f:')) continue; // list items (k:, v:, i:) are compared as a whole
    if (typeof desired !== 'object' || desired === null || Array.isArray(desired)) return false;
    const value = (desired as Record<string, unknown>)[key.slice(2)];
    if (value === undefined) return false;
    if (children && typeof children === 'object' && !Array.isArray(value)) {
      if (!ownedWithin(children as Record<string, unknown>, value)) return false;
    }
  }
  return true;
}

/**
 * Writes the part of `status` that `owner` owns through the status subresource, by server-side
 * apply with the owner's field manager, when it differs from `obj.status`; true if written. Other
 * owners' fields are neither sent nor replaced. The cached resourceVersion goes with each write as
 * a precondition: a reconcile that decided from a stale cache gets a 409 and runs again, instead
 * of dropping a field it did not know was there yet (apply removes an owned field it omits) or
 * taking a state machine (a collection's phase, a run in progress) a step back.
 */
export async function applyStatus<T extends KubeObject & { status?: unknown }>(
  client: KubeClient,
  type: ResourceType<T>,
  obj: T,
  status: unknown,
  owner: StatusOwner,
): Promise<boolean> {
  const { removals, apply } = statusWrites(obj, owner, ownedPart(status, owner));
  const name = obj.metadata?.name ?? '';
  const path = objectPath(type, name, obj.metadata?.namespace, 'status');
  let resourceVersion = obj.metadata?.resourceVersion;
  if (removals.length > 0) {
    const precondition = resourceVersion
      ? [{ op: 'test', path: '/metadata/resourceVersion', value: resourceVersion }]
      : [];
    const patched = await client.jsonPatch<T>(path, [...precondition, ...removals]).catch((err: unknown) => {
      if (statusCodeOf(err) !== 422) throw err;
      throw new ConflictError(`${type.kind} ${name}: its status changed since it was read`, { cause: err });
    });
    resourceVersion = patched.metadata?.resourceVersion;
  }
  if (!apply) return removals.length > 0;
  const metadata = {
    name,
    ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
    ...(resourceVersion ? { resourceVersion } : {}),
  };
  await client.apply(
    path,
    { apiVersion: apiVersionOf(type), kind: type.kind, metadata, status: apply } as T,
    owner.manager,
  );
  return true;
}

export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
): Promise<boolean> {
  if (hasFinalizer(obj, finalizer)) return false;
  await patchFinalizers(client, type, obj, [...(obj.metadata?.finalizers ?? []), finalizer]);
  return true;
}

export async function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
): Promise<boolean> {
  if (!hasFinalizer(obj, finalizer)) return false;
  await patchFinalizers(
    client,
    type,
    obj,
    (obj.metadata?.finalizers ?? []).filter((f) => f !== finalizer),
  );
  return true;
}

async function patchFinalizers(
  client: KubeClient,
  type: ResourceType,
  obj: KubeObject,
  finalizers: string[],
) {
  const path = objectPath(type, obj.metadata?.name ?? '', obj.metadata?.namespace);
  await client.mergePatch(path, { metadata: { resourceVersion: obj.metadata?.resourceVersion, finalizers } });
}
