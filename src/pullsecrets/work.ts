// Which namespaces a Registry's pull-secret reconcile must look at, so that one event costs work
// for one namespace, not for the whole fan-out.
//
// The reconcile is keyed by Registry (its status sums up every namespace), but a Namespace,
// ServiceAccount or Secret event marks only its namespace as dirty for the Registries it concerns.
// A reconcile takes the dirty namespaces, plus those whose credential is due (rotation, grace
// period, a foreign Secret to look at again), and keeps each namespace's outcome for the status.
// Everything is looked at again (a full pass) the first time a Registry is seen, when its
// generation (spec) changes, and when its informer resyncs: the safety net for missed events.
// Pure bookkeeping: the caller brings the time; nothing here reads or writes the API. The due
// namespaces and the next recheck come from a queue of recheck times (O(log n) per namespace due
// or recorded), not from a scan of every namespace kept.
import { RecheckQueue, type Recheck } from './recheck-queue.ts';

/** What the status needs to know about one selected namespace. */
export interface NamespaceOutcome {
  ready: boolean;
  failure?: { namespace: string; reason: string; message: string };
  /** When this namespace needs looking at again even if nothing changes (ms since the epoch). */
  recheckAt?: number;
  /** When its current credential is due for rotation. */
  dueAt?: number;
  /** When it last rotated (the current credential's issue time, if it replaced another). */
  lastRotation?: number;
  overdue?: boolean;
}

export interface WorkBatch {
  /** True when every namespace must be looked at (the caller computes which ones exist). */
  full: boolean;
  /** The namespaces to look at (besides every namespace, on a full pass). */
  namespaces: Set<string>;
}

interface RegistryWork {
  fingerprint: string | undefined;
  full: boolean;
  dirty: Set<string>;
  outcomes: Map<string, NamespaceOutcome>;
  /** Holds an entry for the recheckAt of every kept outcome that has one (and stale ones). */
  rechecks: RecheckQueue;
}

/** The queue is rebuilt from the kept outcomes when stale entries outnumber current ones this much. */
const staleSlack = 64;

export class FanoutWork {
  private readonly registries = new Map<string, RegistryWork>();

  private entry(registry: string): RegistryWork {
    let w = this.registries.get(registry);
    if (!w) {
      w = {
        fingerprint: undefined,
        full: true,
        dirty: new Set(),
        outcomes: new Map(),
        rechecks: new RecheckQueue(),
      };
      this.registries.set(registry, w);
    }
    return w;
  }

  /** A change in `namespace` that may concern `registry` (or every Registry known, if omitted). */
  markNamespace(namespace: string, registry?: string): void {
    if (registry !== undefined) {
      const w = this.registries.get(registry);
      if (w && !w.full) w.dirty.add(namespace);
      return; // a Registry not seen yet gets a full pass anyway
    }
    for (const w of this.registries.values()) if (!w.full) w.dirty.add(namespace);
  }

  /** Everything of `registry` must be looked at again (a resync, or a change of its own). */
  markAll(registry: string): void {
    const w = this.registries.get(registry);
    if (w) {
      w.full = true;
      w.dirty.clear();
    }
  }

  /**
   * The namespaces to look at now. `fingerprint` identifies what the Registry asks for (its
   * generation): a different one than last time means a full pass.
   */
  take(registry: string, fingerprint: string, now: number): WorkBatch {
    const w = this.entry(registry);
    if (w.fingerprint !== fingerprint) {
      w.fingerprint = fingerprint;
      w.full = true;
    }
    if (w.full) {
      w.full = false;
      w.dirty.clear();
      return { full: true, namespaces: new Set() };
    }
    const namespaces = w.dirty;
    w.dirty = new Set();
    for (const ns of dueNamespaces(w, now)) namespaces.add(ns);
    return { full: false, namespaces };
  }

  /** A namespace whose work failed: it is looked at again on the next reconcile. */
  retry(registry: string, namespace: string): void {
    this.registries.get(registry)?.dirty.add(namespace);
  }

  /** A failed full pass is repeated whole. */
  retryAll(registry: string): void {
    const w = this.registries.get(registry);
    if (w) w.full = true;
  }

  record(registry: string, namespace: string, outcome: NamespaceOutcome | undefined): void {
    const w = this.entry(registry);
    const before = w.outcomes.get(namespace)?.recheckAt;
    if (outcome) w.outcomes.set(namespace, outcome);
    else w.outcomes.delete(namespace);
    const at = outcome?.recheckAt;
    if (at !== undefined && at !== before) w.rechecks.push(at, namespace); // an unchanged one is held
    if (w.rechecks.size > 2 * w.outcomes.size + staleSlack) w.rechecks.rebuild(currentRechecks(w));
  }

  /** The kept outcome of every namespace looked at (only selected ones are kept). */
  outcomes(registry: string): ReadonlyMap<string, NamespaceOutcome> {
    return this.registries.get(registry)?.outcomes ?? new Map();
  }

  /** The earliest recheck of any namespace of `registry`. */
  nextRecheck(registry: string): number | undefined {
    const w = this.registries.get(registry);
    return w?.rechecks.peek((r) => isCurrent(w, r))?.at;
  }

  /** The Registry is gone or has no pullSecrets: forget it. */
  forget(registry: string): void {
    this.registries.delete(registry);
  }

  /** Registries known, for mapping an event to keys. */
  known(): string[] {
    return [...this.registries.keys()];
  }
}

/**
 * The requeue that brings a Registry back at its earliest namespace recheck (`next`), at least a
 * second away; undefined when no namespace has one. Pure.
 */
export function recheckRequeueMs(next: number | undefined, now: number): number | undefined {
  return next !== undefined ? Math.max(1000, next - now) : undefined;
}

/** Whether a queued recheck is still the namespace's (its kept outcome has this recheckAt). */
function isCurrent(w: RegistryWork, r: Recheck): boolean {
  return w.outcomes.get(r.namespace)?.recheckAt === r.at;
}

/**
 * The namespaces whose kept recheck time is at or before `now`. Their entries stay queued (a
 * namespace not written again stays due), each once.
 */
function dueNamespaces(w: RegistryWork, now: number): string[] {
  const due: string[] = [];
  const seen = new Set<string>();
  for (
    let r = w.rechecks.peek((e) => isCurrent(w, e));
    r && r.at <= now;
    r = w.rechecks.peek((e) => isCurrent(w, e))
  ) {
    w.rechecks.pop();
    if (seen.has(r.namespace)) continue;
    seen.add(r.namespace);
    due.push(r.namespace);
  }
  for (const ns of due) w.rechecks.push(w.outcomes.get(ns)!.recheckAt!, ns);
  return due;
}

/** The recheck of every kept outcome that has one. */
function* currentRechecks(w: RegistryWork): Iterable<Recheck> {
  for (const [namespace, o] of w.outcomes)
    if (o.recheckAt !== undefined) yield { at: o.recheckAt, namespace };
}
