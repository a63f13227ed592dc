// What the Registry controller needs from a garbage collection in progress: whether to render the
// read-only configuration (pushes and deletes refused), and the problem to report after a failure
// (Degraded=True, and Ready=False: the registry serves pulls but refuses pushes until a retry).
import type { Registry } from '../api/index.ts';
import type { Check } from './status.ts';
import { isReadOnly } from './gc-phase.ts';

/** The on-demand trigger: a new value (by convention the current time, RFC 3339) requests a run. */
export const gcRequestAnnotation = 'berth.dev/gc-requested-at';
/** The restart stamp the procedure puts on the registry pod template. */
export const restartAnnotation = 'berth.dev/restarted-at';

export function maintenanceOf(registry: Registry): { readOnly: boolean; problem?: Check } {
  const gc = registry.status?.garbageCollection;
  const readOnly = isReadOnly(gc?.phase);
  if (gc?.phase !== 'Failed') return { readOnly };
  return {
    readOnly,
    problem: {
      ok: false,
      reason: 'GarbageCollectionFailed',
      message:
        `garbage collection failed (${gc.message ?? 'no reason recorded'}); the registry is read-only ` +
        `(pulls work, pushes are refused) until a retry succeeds: kubectl annotate registry ` +
        `${registry.metadata?.name ?? ''} ${gcRequestAnnotation}=$(date -u +%FT%TZ) --overwrite`,
    },
  };
}
