// An Event recorder on events.k8s.io/v1 that aggregates repeats: the first occurrence creates an
// Event; identical ones (same object, type, reason, action and note) within the series window
// update its `series` (count, lastObservedTime) at most once per `minUpdateIntervalMs`, so a
// failing reconcile that retries every few seconds does not flood the API server with Events.
// Recording never throws: a failure to record is logged.
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from './clock.ts';
import { errorMessage } from './errors.ts';
import type { KubeClient, KubeJson, KubeObject } from './kube/client.ts';
import { collectionPath, core, objectPath } from './kube/resource.ts';
import type { Logger } from './logger.ts';
import { microTime } from './leader.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /** Records an Event about `regarding`. `action` is what berth did or tried ("Reconcile", "Apply"). */
  event(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void;
}

export interface EventRecorderOptions {
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  /** reportingController, e.g. "berth.dev/operator". */
  controller: string;
  /** reportingInstance: this replica's identity. */
  instance: string;
  /** A repeat after this long starts a new Event (default 6 min, as client-go). */
  seriesWindowMs?: number;
  /** Minimum time between two series updates of one Event (default 30 s). */
  minUpdateIntervalMs?: number;
}

interface Series {
  name: string;
  namespace: string;
  count: number;
  written: number;
  lastObserved: number;
  lastWrite: number;
  flush: Timer | undefined;
  pending: Promise<void>;
}

/** Which Event a repeat belongs to: the same object (uid, else namespace/name), type, reason, action and note. */
export function seriesKey(
  regarding: KubeObject,
  type: EventType,
  reason: string,
  action: string,
  note: string,
): string {
  const meta = regarding.metadata ?? {};
  return JSON.stringify([meta.uid ?? `${meta.namespace}/${meta.name}`, type, reason, action, note]);
}

/** What one Event says: its name and namespace, when, and what happened. */
export interface EventFacts {
  name: string;
  namespace: string;
  now: number;
  type: EventType;
  reason: string;
  action: string;
  note: string;
}

/**
 * The events.k8s.io/v1 Event about `regarding` (the instance cut to 128 characters and the note to
 * 1024, as the API server allows). Pure.
 */
export function eventObject(
  regarding: KubeObject,
  e: EventFacts,
  reporting: Pick<EventRecorderOptions, 'controller' | 'instance'>,
): KubeJson {
  const meta = regarding.metadata ?? {};
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: e.name, namespace: e.namespace },
    eventTime: microTime(e.now),
    reportingController: reporting.controller,
    reportingInstance: reporting.instance.slice(0, 128),
    action: e.action,
    reason: e.reason,
    note: e.note.slice(0, 1024),
    type: e.type,
    regarding: {
      apiVersion: regarding.apiVersion,
      kind: regarding.kind,
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    },
  };
}

export class KubeEventRecorder implements EventRecorder {
  private readonly options: EventRecorderOptions;
  private readonly series = new Map<string, Series>();

  constructor(options: EventRecorderOptions) {
    this.options = options;
  }

  event(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    const meta = regarding.metadata ?? {};
    const key = seriesKey(regarding, type, reason, action, note);
    const now = this.options.clock.now();
    const window = this.options.seriesWindowMs ?? 6 * 60_000;
    const existing = this.series.get(key);
    if (existing && now - existing.lastObserved < window) {
      existing.count++;
      existing.lastObserved = now;
      this.scheduleUpdate(existing);
      return;
    }
    existing?.flush?.cancel();
    this.prune(now, window);
    const namespace = meta.namespace || 'default';
    const name = `${meta.name ?? 'object'}.${randomBytes(8).toString('hex')}`;
    const s: Series = {
      name,
      namespace,
      count: 1,
      written: 1,
      lastObserved: now,
      lastWrite: now,
      flush: undefined,
      pending: Promise.resolve(),
    };
    this.series.set(key, s);
    const body = eventObject(regarding, { name, namespace, now, type, reason, action, note }, this.options);
    s.pending = this.options.client
      .create(collectionPath(core.events, namespace), body)
      .then(() => undefined)
      .catch((err: unknown) => this.failed(reason, err));
  }

  /** Waits for writes in progress (for shutdown and tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.series.values()].map((s) => s.pending));
  }

  private scheduleUpdate(s: Series): void {
    if (s.flush) return;
    const interval = this.options.minUpdateIntervalMs ?? 30_000;
    const wait = Math.max(0, s.lastWrite + interval - this.options.clock.now());
    s.flush = this.options.clock.setTimeout(() => {
      s.flush = undefined;
      if (s.count === s.written) return;
      s.written = s.count;
      s.lastWrite = this.options.clock.now();
      const patch = { series: { count: s.count, lastObservedTime: microTime(s.lastObserved) } };
      s.pending = s.pending
        .then(() => this.options.client.mergePatch(objectPath(core.events, s.name, s.namespace), patch))
        .then(() => undefined)
        .catch((err: unknown) => this.failed('series', err));
    }, wait);
  }

  private prune(now: number, window: number): void {
    for (const [k, s] of this.series) if (now - s.lastObserved >= window && !s.flush) this.series.delete(k);
  }

  private failed(reason: string, err: unknown): void {
    this.options.logger.warn('Failed to record an Event', { reason, error: errorMessage(err) });
  }
}

/** A recorder that keeps Events in memory (for unit tests of controllers). */
export class MemoryEventRecorder implements EventRecorder {
  readonly events: { regarding: string; type: EventType; reason: string; action: string; note: string }[] =
    [];

  event(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    const m = regarding.metadata ?? {};
    this.events.push({ regarding: `${m.namespace ?? ''}/${m.name ?? ''}`, type, reason, action, note });
  }
}
