// Exponential backoff with jitter, as client-go's wait.Backoff: each step doubles up to a cap,
// and jitter spreads replicas so that they do not retry in lockstep against the API server.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** Adds up to `jitter * delay` at random (0.1 = up to 10% more). */
  jitter?: number;
}

/** The delay before attempt `failures + 1` (failures >= 1), without jitter. */
export function exponentialDelay(failures: number, options: BackoffOptions): number {
  const factor = options.factor ?? 2;
  const exp = Math.max(0, failures - 1);
  const delay = options.initialMs * Math.pow(factor, exp);
  return Number.isFinite(delay) ? Math.min(delay, options.maxMs) : options.maxMs;
}

export function withJitter(delayMs: number, jitter: number, random: () => number = Math.random): number {
  return jitter > 0 ? delayMs + random() * jitter * delayMs : delayMs;
}

/** A stateful backoff: next() grows the delay, reset() starts over. */
export class Backoff {
  private failures = 0;
  private readonly options: BackoffOptions;
  private readonly random: () => number;

  constructor(options: BackoffOptions, random: () => number = Math.random) {
    this.options = options;
    this.random = random;
  }

  next(): number {
    this.failures++;
    return withJitter(exponentialDelay(this.failures, this.options), this.options.jitter ?? 0, this.random);
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}
