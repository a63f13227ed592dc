// Which namespaces a Registry's pull-secret reconcile must look at, so that one event costs work
// for one namespace, not for the whole fan-out.
//
// The reconcile is keyed by Registry (its status sums up every namespace), but a Namespace,
// ServiceAccount or Secret event marks only its namespace as dirty for the Registries it concerns.
// A reconcile takes the dirty namespaces, plus those whose credential is due (rotation, grace
// period, a foreign Secret to look at again), and keeps each namespace's outcome for the status.
// Everything is looked at again (a full pass) the first time a Registry is seen, when its
// generation (spec) changes, and when its informer resyncs: the safety net for missed events.
// Pure bookkeeping: the caller brings the time; nothing here reads or writes the API.

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
}

export class FanoutWork {
  private readonly registries = new Map<string, RegistryWork>();

  private entry(registry: string): RegistryWork {
    let w = this.registries.get(registry);
    if (!w) {
      w = { fingerprint: undefined, full: true, dirty: new Set(), outcomes: new Map() };
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
    for (const [ns, o] of w.outcomes) if (o.recheckAt !== undefined && o.recheckAt <= now) namespaces.add(ns);
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
    if (outcome) w.outcomes.set(namespace, outcome);
    else w.outcomes.delete(namespace);
  }

  /** The kept outcome of every namespace looked at (only selected ones are kept). */
  outcomes(registry: string): ReadonlyMap<string, NamespaceOutcome> {
    return this.registries.get(registry)?.outcomes ?? new Map();
  }

  /** The earliest recheck of any namespace of `registry`. */
  nextRecheck(registry: string): number | undefined {
    let min: number | undefined;
    for (const o of this.outcomes(registry).values())
      if (o.recheckAt !== undefined && (min === undefined || o.recheckAt < min)) min = o.recheckAt;
    return min;
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
