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
