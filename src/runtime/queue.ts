// A keyed work queue with client-go's semantics:
// - a key is queued at most once (adds while queued are merged);
// - a key being processed is never handed to a second worker: adds during processing mark it
//   dirty and it is queued again when done() is called;
// - addRateLimited(): per-key exponential backoff with a cap, combined with an overall token
//   bucket (the larger delay wins), so a storm of failures cannot flood the API server;
// - addAfter(): time-driven work ("requeue after"); the earliest pending time wins;
// - forget(): a success clears the key's backoff;
// - shutDown(): no more keys are handed out and new adds are ignored; drain() waits for the keys
//   being processed to be done.
import { exponentialDelay, withJitter } from './backoff.ts';
import type { Clock, Timer } from './clock.ts';

export interface QueueMetrics {
  /** The number of keys waiting to be processed. */
  depth(n: number): void;
  /** A key was added (including merged adds). */
  added(): void;
  /** A key was re-added after a failure. */
  retried(): void;
  /** A key waited `seconds` between being queued and being handed out. */
  waited(seconds: number): void;
}

export interface RateLimitOptions {
  /** Per-key backoff after the first failure (default 5 ms). */
  baseDelayMs: number;
  /** Per-key backoff cap (default 5 minutes). */
  maxDelayMs: number;
  /** Overall rate of retries, in keys per second (default 10). */
  qps: number;
  /** Overall burst (default 100). */
  burst: number;
  /** Relative jitter added to per-key backoff (default 0.1). */
  jitter: number;
}

export const defaultRateLimit: RateLimitOptions = {
  baseDelayMs: 5,
  maxDelayMs: 300_000,
  qps: 10,
  burst: 100,
  jitter: 0.1,
};

export interface WorkQueueOptions {
  clock: Clock;
  rateLimit?: Partial<RateLimitOptions>;
  metrics?: QueueMetrics;
  random?: () => number;
}

const noMetrics: QueueMetrics = { depth() {}, added() {}, retried() {}, waited() {} };

export class WorkQueue {
  private readonly clock: Clock;
  private readonly limits: RateLimitOptions;
  private readonly metrics: QueueMetrics;
  private readonly random: () => number;

  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly queuedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { readyAt: number; timer: Timer }>();
  private readonly failures = new Map<string, number>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private shuttingDown = false;

  // token bucket
  private tokens: number;
  private lastRefill: number;

  constructor(options: WorkQueueOptions) {
    this.clock = options.clock;
    this.limits = { ...defaultRateLimit, ...options.rateLimit };
    this.metrics = options.metrics ?? noMetrics;
    this.random = options.random ?? Math.random;
    this.tokens = this.limits.burst;
    this.lastRefill = this.clock.now();
  }

  /** Queues `key` now (merged with a queued or dirty copy). */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.metrics.added();
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.queuedAt.has(key)) this.queuedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Queues `key` after `delayMs`; if it is already waiting, the earlier time wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const readyAt = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.readyAt <= readyAt) return;
    existing?.timer.cancel();
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { readyAt, timer });
  }

  /** Queues `key` after its backoff: the larger of its per-key delay and the overall rate limit. */
  addRateLimited(key: string): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const perKey = withJitter(
      exponentialDelay(failures, {
        initialMs: this.limits.baseDelayMs,
        maxMs: this.limits.maxDelayMs,
      }),
      this.limits.jitter,
      this.random,
    );
    const delay = Math.min(Math.max(perKey, this.reserveToken()), Math.max(this.limits.maxDelayMs, 0));
    this.metrics.retried();
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's backoff (call after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The number of failures recorded for `key` since it was last forgotten. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.handOut(key));
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks `key` as processed; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    if (this.processing.size === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  /** Stops handing out keys and ignores new adds; pending timers are cancelled. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) timer.cancel();
    this.waiting.clear();
    for (const g of this.getters.splice(0)) g(undefined);
  }

  /** Shuts down and resolves once no key is being processed (true), or at the deadline (false). */
  async drain(timeoutMs: number): Promise<boolean> {
    this.shutDown();
    if (this.processing.size === 0) return true;
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => resolve(false), timeoutMs);
      this.drainWaiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Keys queued and not yet handed out. */
  get length(): number {
    return this.queue.length;
  }

  /** Keys being processed right now. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for a delayed add. */
  get delayed(): number {
    return this.waiting.size;
  }

  private push(key: string): void {
    const getter = this.getters.shift();
    if (getter) return getter(this.handOut(key));
    this.queue.push(key);
    this.metrics.depth(this.queue.length);
  }

  private handOut(key: string): string {
    this.processing.add(key);
    this.dirty.delete(key);
    const since = this.queuedAt.get(key);
    this.queuedAt.delete(key);
    if (since !== undefined) this.metrics.waited((this.clock.now() - since) / 1000);
    this.metrics.depth(this.queue.length);
    return key;
  }

  /** Takes a token from the overall bucket; returns how long until that token is available. */
  private reserveToken(): number {
    const now = this.clock.now();
    const { qps, burst } = this.limits;
    if (qps <= 0) return 0;
    this.tokens = Math.min(burst, this.tokens + ((now - this.lastRefill) / 1000) * qps);
    this.lastRefill = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / qps) * 1000;
  }
}
