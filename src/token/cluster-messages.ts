// What the token service's cluster primary and its workers say to each other over the IPC
// channel (JSON). Nothing here carries a secret: configuration paths, health, metric figures.
import type { Registry } from 'prom-client';
import type { StoreHealthBody } from './server.ts';

/** A registry's figures as `getMetricsAsJSON()` gives them (what AggregatorRegistry.aggregate takes). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Worker → primary. */
export type WorkerMessage =
  | { type: 'berth:ready'; url: string; port: number; keyId: string }
  | { type: 'berth:failed'; error: string }
  | { type: 'berth:metrics-req'; id: number }
  | { type: 'berth:health-res'; id: number; status: number; body: StoreHealthBody }
  | { type: 'berth:metrics-json-res'; id: number; metrics: MetricsJson };

/** Primary → worker. */
export type PrimaryMessage =
  | { type: 'berth:health-req'; id: number }
  | { type: 'berth:metrics-json-req'; id: number }
  | { type: 'berth:metrics-res'; id: number; contentType: string; text: string }
  | { type: 'berth:metrics-res'; id: number; error: string }
  | { type: 'berth:shutdown'; graceMs: number };

function hasType(v: unknown): v is { type: string } {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

const workerTypes = new Set<string>([
  'berth:ready',
  'berth:failed',
  'berth:metrics-req',
  'berth:health-res',
  'berth:metrics-json-res',
]);
const primaryTypes = new Set<string>([
  'berth:health-req',
  'berth:metrics-json-req',
  'berth:metrics-res',
  'berth:shutdown',
]);

/** A message from a worker (other messages on the channel, e.g. node:cluster's own, are not). */
export function isWorkerMessage(v: unknown): v is WorkerMessage {
  return hasType(v) && workerTypes.has(v.type);
}

export function isPrimaryMessage(v: unknown): v is PrimaryMessage {
  return hasType(v) && primaryTypes.has(v.type);
}

/** The answers a side is waiting for, by request id, each with a deadline. */
export class PendingRequests<T> {
  private next = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: T | undefined) => void; timer: NodeJS.Timeout }
  >();

  /** Sends a request made from a fresh id; resolves with the answer, or undefined after `timeoutMs`. */
  ask(send: (id: number) => void, timeoutMs: number): Promise<T | undefined> {
    const id = this.next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, { resolve, timer });
      try {
        send(id);
      } catch {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(undefined);
      }
    });
  }

  /** Delivers an answer; false when nobody waits for this id (any more). */
  answer(id: number, value: T): boolean {
    const w = this.waiting.get(id);
    if (!w) return false;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(value);
    return true;
  }

  /** Gives up on every request (the other side is gone). */
  abandon(): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.resolve(undefined);
      this.waiting.delete(id);
    }
  }
}
