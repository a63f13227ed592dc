// How a reconciler made of steps combines their results: the soonest requeue wins. A step that
// needs nothing time-driven returns undefined (or no requeueAfterMs); 0 and negative values mean
// "nothing to wait for" and are ignored, as the controller runtime ignores them. A cap keeps a
// requeue from being pushed out indefinitely (a day by default).
import type { ReconcileResult } from './controller.ts';

export const maxRequeueMs = 24 * 3600_000;

/** The result that requeues at the soonest of `results`; undefined when none asks for one. Pure. */
export function lowestRequeue(
  results: readonly (ReconcileResult | number | undefined | void)[],
  capMs: number = maxRequeueMs,
): ReconcileResult | undefined {
  let lowest: number | undefined;
  for (const r of results) {
    const ms = typeof r === 'number' ? r : r?.requeueAfterMs;
    if (ms === undefined || !(ms > 0)) continue;
    if (lowest === undefined || ms < lowest) lowest = ms;
  }
  return lowest === undefined ? undefined : { requeueAfterMs: Math.min(lowest, capMs) };
}
