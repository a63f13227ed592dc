// How berth's registry client backs off when the registry (or a proxy in front of it) says it is busy:
// - `retryAfterMs` reads a Retry-After header (delta-seconds or an HTTP date) against a clock;
// - `retryDelay` decides the wait before the next attempt: what Retry-After says (capped), or an
//   exponential backoff with jitter when the answer gave none;
// - a `Throttle` is shared by every request of one client: a Retry-After pauses all of them until
//   then, not only the one that was told, so a pool of workers stops as one instead of each
//   learning the limit with a request of its own.
// Decisions are pure and take the clock and the random source; the Throttle takes the clock and
// the sleep, so tests drive it without waiting.

/** Statuses that mean "busy, try again": rate limited, unavailable, or a gateway that gave up. */
export const retryableStatus = (status: number): boolean => status === 429 || status >= 500;

/**
 * What the distribution client reads the time from: the shape of the runtime's Clock (which
 * this layer does not import), so one Clock serves both.
 */
export interface NowClock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The wait a Retry-After header asks for, in ms from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now: number): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date (IMF-fixdate and the obsolete forms Date.parse reads); a date in the past is 0.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export interface RetryDelayOptions {
  /** First backoff delay without Retry-After (ms), doubled per attempt. */
  baseMs: number;
  /** Longest wait, whatever Retry-After says (ms). */
  maxMs: number;
}

/**
 * The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed. With a
 * Retry-After, exactly what it asks (at most `maxMs`): the server knows when it will take more.
 * Without, `baseMs · 2^(attempt-1)` scaled by a jitter factor in [0.5, 1) from `random` (0..1).
 */
export function retryDelay(
  attempt: number,
  retryAfter: number | undefined,
  options: RetryDelayOptions,
  random: number,
): { ms: number; source: 'retry-after' | 'backoff' } {
  if (retryAfter !== undefined) return { ms: Math.min(retryAfter, options.maxMs), source: 'retry-after' };
  const backoff = options.baseMs * 2 ** Math.max(0, attempt - 1) * (0.5 + random / 2);
  return { ms: Math.min(Math.round(backoff), options.maxMs), source: 'backoff' };
}

export interface ThrottleDeps {
  clock: NowClock;
  sleep: (ms: number) => Promise<void>;
}

/** A pause shared by every request of a client. */
export interface Throttle {
  /** Resolves once no pause is in force (at once when none is). */
  ready(): Promise<void>;
  /** Holds every request until `until` (epoch ms); a later pause extends it, an earlier one does not shorten it. */
  pauseUntil(until: number): void;
  /** When the current pause ends (0: none was ever set). */
  readonly pausedUntil: number;
  /** How many pauses were set, and how long requests waited in total (ms), for the report and the bench. */
  readonly stats: { pauses: number; waitedMs: number };
}

export function createThrottle(deps: ThrottleDeps): Throttle {
  let pausedUntil = 0;
  const stats = { pauses: 0, waitedMs: 0 };
  return {
    get pausedUntil() {
      return pausedUntil;
    },
    stats,
    pauseUntil(until: number) {
      stats.pauses++;
      if (until > pausedUntil) pausedUntil = until;
    },
    async ready() {
      // A pause may be extended while this waits: look again after each sleep.
      for (;;) {
        const wait = pausedUntil - deps.clock.now();
        if (wait <= 0) return;
        stats.waitedMs += wait;
        await deps.sleep(wait);
      }
    },
  };
}
