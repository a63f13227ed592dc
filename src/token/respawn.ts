// When to replace a worker that ended without being asked to: at once the first time, then with
// a doubling delay while it keeps ending (a crash loop must not spin the primary), capped.

/** Exits within this window count towards the delay. */
export const respawnWindowMs = 60_000;
export const respawnFirstDelayMs = 100;
export const respawnMaxDelayMs = 10_000;

/**
 * The delay before replacing a worker, given the times (ms) of the unrequested exits so far,
 * the latest included, and now.
 */
export function respawnDelayMs(exitTimes: readonly number[], now: number): number {
  const recent = exitTimes.filter((t) => now - t < respawnWindowMs).length;
  if (recent <= 1) return 0;
  return Math.min(respawnMaxDelayMs, respawnFirstDelayMs * 2 ** (recent - 2));
}

/** The exit times worth keeping (those still inside the window). */
export function recentExits(exitTimes: readonly number[], now: number): number[] {
  return exitTimes.filter((t) => now - t < respawnWindowMs);
}

/** Why a worker ended, as the metrics and the logs name it: its signal, else its exit code. */
export function exitReason(code: number | null, signal: string | null): string {
  return signal ?? `exit ${code}`;
}

/** What the primary does when a serving worker ends. */
export type WorkerExitDecision = { replace: false } | { replace: true; reason: string };

/**
 * A serving worker ended: while the service stops it was asked to, so nothing is done; else it
 * is counted by its reason and replaced (after `nextRespawn`'s delay).
 */
export function workerExitDecision(
  stopping: boolean,
  code: number | null,
  signal: string | null,
): WorkerExitDecision {
  if (stopping) return { replace: false };
  return { replace: true, reason: exitReason(code, signal) };
}

/**
 * The next replacement, one more unrequested exit (or failed replacement) at `now`: the exit
 * times to keep, and the delay before forking.
 */
export function nextRespawn(
  exitTimes: readonly number[],
  now: number,
): { exitTimes: number[]; delayMs: number } {
  const kept = recentExits([...exitTimes, now], now);
  return { exitTimes: kept, delayMs: respawnDelayMs(kept, now) };
}
