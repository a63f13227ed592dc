// Coalescing a burst of secondary events into one reconcile: a secondary watch whose keys are
// handed to the controller only once the burst is over (no event for that key for `quietMs`), or
// at the latest `maxWaitMs` after the burst began. For a controller whose reconcile costs O(n)
// (the Registry's credential store is built from every pull Secret), a fan-out to n namespaces
// then costs O(n × duration / maxWaitMs) instead of O(n²). Primary events are not delayed.
import type { Clock } from './clock.ts';
import type { SecondaryWatch } from './controller.ts';
import type { AnyInformer, InformerHandler } from './informer.ts';
import type { KubeObject } from './kube/client.ts';

export interface CoalesceOptions {
  clock: Clock;
  /** A key is handed on once it has seen no event for this long. */
  quietMs: number;
  /** … or this long after its first event, whichever comes first. */
  maxWaitMs: number;
}

interface Burst {
  first: number;
  last: number;
}

/** Per key: holds `add`s back until the burst is over, then calls `flush(key)` once. */
export class Coalescer {
  private readonly options: CoalesceOptions;
  private readonly flush: (key: string) => void;
  private readonly bursts = new Map<string, Burst>();
  private readonly timers = new Map<string, { cancel(): void }>();

  constructor(options: CoalesceOptions, flush: (key: string) => void) {
    this.options = options;
    this.flush = flush;
  }

  add(key: string): void {
    const now = this.options.clock.now();
    const burst = this.bursts.get(key);
    if (burst) {
      burst.last = now;
      return;
    }
    this.bursts.set(key, { first: now, last: now });
    this.arm(key, this.options.quietMs);
  }

  /** Keys held back now. */
  pending(): string[] {
    return [...this.bursts.keys()];
  }

  /** Drops every held key without handing it on. */
  cancel(): void {
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
    this.bursts.clear();
  }

  private arm(key: string, ms: number): void {
    this.timers.set(
      key,
      this.options.clock.setTimeout(() => this.due(key), ms),
    );
  }

  /** The timer fired: hand the key on if the burst is over, else wait for the rest of it. */
  private due(key: string): void {
    const burst = this.bursts.get(key);
    if (!burst) return;
    const { quietMs, maxWaitMs } = this.options;
    const at = Math.min(burst.last + quietMs, burst.first + maxWaitMs);
    const now = this.options.clock.now();
    if (now < at) return this.arm(key, at - now);
    this.bursts.delete(key);
    this.timers.delete(key);
    this.flush(key);
  }
}

/**
 * A secondary watch like `{ informer, map }` whose keys reach the controller coalesced (see
 * Coalescer). `map` may return no key for an event that cannot change the outcome.
 */
export function coalescedWatch<T extends KubeObject>(
  informer: AnyInformer,
  map: (obj: T) => string[],
  options: CoalesceOptions,
): SecondaryWatch {
  // What the controller's handler receives: one stand-in object per key handed on.
  const keyOf = new WeakMap<KubeObject, string>();
  const delayed: AnyInformer = {
    get name() {
      return informer.name;
    },
    get options() {
      return informer.options;
    },
    list: () => informer.list(),
    get: (name, namespace) => informer.get(name, namespace),
    hasSynced: () => informer.hasSynced(),
    waitForSync: (signal) => informer.waitForSync(signal),
    start: () => informer.start(),
    stop: () => informer.stop(),
    addHandler(handler: InformerHandler<KubeObject>) {
      const coalescer = new Coalescer(options, (key) => {
        const standIn: KubeObject = { metadata: { name: key } };
        keyOf.set(standIn, key);
        handler('update', standIn);
      });
      const unsubscribe = informer.addHandler((_event, obj) => {
        for (const key of map(obj as T)) coalescer.add(key);
      });
      return () => {
        unsubscribe();
        coalescer.cancel();
      };
    },
  };
  return {
    informer: delayed,
    map: (obj) => {
      const key = keyOf.get(obj);
      return key === undefined ? [] : [key];
    },
  };
}
