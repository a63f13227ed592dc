// The lock between garbage collection and retention runs of one Registry, held in the API server
// with no extra object:
// - the GC side of the lock is the Registry's status.garbageCollection.phase: from Pending on, no
//   retention run of a policy of this Registry may start (and none while a failed collection leaves
//   the registry read-only: its deletes would be refused anyway);
// - the retention side is the set of unfinished retention Jobs, labelled with their Registry, in
//   the Registry's namespace.
// A retention controller reads the Registry fresh from the API server (not from its cache) right
// before it creates a Job; the GC controller, once Pending is written, waits `lockSettleMs` and
// then lists retention Jobs from the API server (not from its cache). A retention controller that
// read the Registry before Pending was written creates its Job within that window, so GC sees it
// and waits for it to finish.
import type { Registry } from '../api/index.ts';
import { isActive } from '../model/gc-phase.ts';

export const retentionLabels = {
  policy: 'berth.dev/retention-policy',
  policyNamespace: 'berth.dev/retention-policy-namespace',
  registry: 'berth.dev/registry',
} as const;

/** Selects the retention Jobs of one Registry (in its namespace). */
export function retentionJobSelector(registryName: string): string {
  return `${retentionLabels.policy},${retentionLabels.registry}=${registryName}`;
}

/** Why a retention run of this Registry may not start now, or undefined when it may. */
export function retentionBlockedBy(registry: Registry): string | undefined {
  const phase = registry.status?.garbageCollection?.phase;
  if (isActive(phase))
    return `garbage collection of Registry ${registry.metadata?.name ?? ''} is running (${phase})`;
  if (phase === 'Failed') {
    return `Registry ${registry.metadata?.name ?? ''} is read-only after a failed garbage collection`;
  }
  return undefined;
}
