// An informer: a cache of one resource kept current by a list and then a watch, made robust.
//
// A reflector lists the collection in pages (limit/continue), then watches from the list's
// resourceVersion with bookmarks. A watch that ends cleanly is resumed from the last
// resourceVersion seen; 410 Gone (expired) relists, and the relist is compared with the cache so
// handlers see add/update/delete as for watch events. Any other failure (a refused connection
// while kube-apiserver restarts, a 5xx, a failed list) is followed by a restart after a jittered
// exponential backoff (0.8 s doubling to 30 s, as client-go's reflector).
// Objects are plain JSON as the API server sends them (timestamps are strings). Before they are
// cached, `managedFields` entries are dropped except berth's own Apply entries (which applyOwned
// reads): on most objects they are the larger part.
//
// Objects in the cache are shared: never mutate them (structuredClone first).
import { Backoff } from './backoff.ts';
import type { Clock, Timer } from './clock.ts';
import { errorMessage, statusCodeOf } from './errors.ts';
import type { KubeAccess } from './kube/config.ts';
import type { KubeClient, KubeList, KubeObject, WatchEvent } from './kube/client.ts';
import { collectionPath, resourceName, type ResourceType } from './kube/resource.ts';
import type { Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { fieldManager } from './writes.ts';

export type InformerEvent = 'add' | 'update' | 'delete' | 'resync';
export type InformerHandler<T> = (event: InformerEvent, obj: T) => void;

/** Read access to an informer's cache. */
export interface Cache<T extends KubeObject> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): T[];
  hasSynced(): boolean;
}

/**
 * An informer seen without its object type (its handlers and list see KubeObjects): what the
 * manager and a controller's secondary watches use, so an Informer<T> of any T fits.
 */
export type AnyInformer = Pick<
  Informer,
  'name' | 'options' | 'addHandler' | 'list' | 'get' | 'hasSynced' | 'waitForSync' | 'start' | 'stop'
>;

export interface InformerOptions {
  resource: ResourceType;
  /** Namespaces to watch; empty or undefined: all (or the resource is cluster-scoped). */
  namespaces?: string[];
  /** Only objects with these labels, e.g. "app.kubernetes.io/managed-by=berth". */
  labelSelector?: string;
  fieldSelector?: string;
  /** Every period (with up to 10% jitter) every cached object is handed to handlers again. 0: never. */
  resyncPeriodMs?: number;
}

export interface InformerDeps {
  kubeConfig?: KubeAccess;
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  metrics: RuntimeMetrics;
}

export class Informer<T extends KubeObject = KubeObject> implements Cache<T> {
  readonly options: InformerOptions;
  readonly name: string;
  private readonly reflectors: Reflector<T>[];
  private readonly handlers = new Set<InformerHandler<T>>();
  private readonly deps: InformerDeps;
  private resyncTimer: Timer | undefined;
  private started = false;
  private syncWaiters: (() => void)[] = [];

  constructor(deps: InformerDeps, options: InformerOptions) {
    this.deps = deps;
    this.options = options;
    const namespaced = options.resource.namespaced ?? true;
    const namespaces =
      namespaced && options.namespaces?.length ? [...new Set(options.namespaces)] : [undefined];
    this.name = resourceName(options.resource) + (options.labelSelector ? `{${options.labelSelector}}` : '');
    this.reflectors = namespaces.map(
      (ns) =>
        new Reflector<T>(deps, this, collectionPath(options.resource, ns), ns, (event, obj) =>
          this.dispatch(event, obj),
        ),
    );
    deps.metrics.informerSynced.set({ resource: this.name }, 0);
  }

  /** Calls `handler` for every change; returns a function that removes it. */
  addHandler(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const r of this.reflectors) r.start();
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.started = false;
    this.resyncTimer?.cancel();
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  hasSynced(): boolean {
    return this.reflectors.every((r) => r.synced);
  }

  /** Resolves once synced, or when `signal` aborts (then returns false). */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      });
    });
  }

  get(name: string, namespace?: string): T | undefined {
    for (const r of this.reflectors) {
      if (r.namespace !== undefined && r.namespace !== namespace) continue;
      const found = r.get(name, namespace);
      if (found) return found;
    }
    return undefined;
  }

  list(namespace?: string): T[] {
    return this.reflectors
      .filter((r) => namespace === undefined || r.namespace === undefined || r.namespace === namespace)
      .flatMap((r) => r.list(namespace));
  }

  /** Called by a reflector after its first successful list. */
  noteSynced(): void {
    if (!this.hasSynced()) return;
    this.deps.metrics.informerSynced.set({ resource: this.name }, 1);
    this.deps.logger.info('Synced informer cache', { resource: this.name, objects: this.list().length });
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    waiters.forEach((w) => w());
  }

  private dispatch(event: InformerEvent, obj: T): void {
    for (const handler of this.handlers) {
      try {
        handler(event, obj);
      } catch (err) {
        // A handler must never break the watch (for example a mapping that meets a malformed object).
        this.deps.logger.error('Failed to handle informer event', {
          resource: this.name,
          event,
          namespace: obj?.metadata?.namespace,
          name: obj?.metadata?.name,
          error: errorMessage(err),
        });
      }
    }
  }

  private scheduleResync(): void {
    const period = this.options.resyncPeriodMs ?? 0;
    if (!this.started || period <= 0) return;
    this.resyncTimer = this.deps.clock.setTimeout(
      () => {
        if (!this.started) return;
        if (this.hasSynced()) for (const obj of this.list()) this.dispatch('resync', obj);
        this.scheduleResync();
      },
      period * (1 + Math.random() * 0.1),
    );
  }
}

/**
 * Drops other managers' managedFields. berth's own Apply entries stay: applyOwned reads `berth`'s,
 * applyStatus those of the status owners (`berth-<controller>`).
 */
export function slim<T extends KubeObject>(obj: T): T {
  const mf = obj.metadata?.managedFields;
  if (mf) {
    const kept = mf.filter((m) => m.operation === 'Apply' && isBerthManager(m.manager));
    if (kept.length) obj.metadata!.managedFields = kept;
    else delete obj.metadata!.managedFields;
  }
  return obj;
}

const pageSize = 500;

/** One list-then-watch (one namespace or all), restarted with backoff whenever it stops on an error. */
class Reflector<T extends KubeObject> {
  readonly namespace: string | undefined;
  synced = false;
  /** namespace ("" when cluster-scoped) → name → object */
  private store = new Map<string, Map<string, T>>();
  private size = 0;
  private readonly deps: InformerDeps;
  private readonly owner: Informer<T>;
  private readonly path: string;
  private readonly emit: (event: InformerEvent, obj: T) => void;
  private readonly backoff = new Backoff({ initialMs: 800, maxMs: 30_000, factor: 2, jitter: 1 });
  private running = false;
  private abort = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private resourceVersion: string | undefined;
  private lists = 0;
  private expired = false;
  private wake: (() => void) | undefined;
  private sleepTimer: Timer | undefined;

  constructor(
    deps: InformerDeps,
    owner: Informer<T>,
    path: string,
    namespace: string | undefined,
    emit: (event: InformerEvent, obj: T) => void,
  ) {
    this.deps = deps;
    this.owner = owner;
    this.path = path;
    this.namespace = namespace;
    this.emit = emit;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.store.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.store.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const byName of this.store.values()) for (const o of byName.values()) out.push(o);
    return out;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.sleepTimer?.cancel();
    this.wake?.();
    await this.loop;
  }

  private log(): Record<string, unknown> {
    return { resource: this.owner.name, ...(this.namespace ? { namespace: this.namespace } : {}) };
  }

  private async run(): Promise<void> {
    while (this.running) {
      let connectedAt = 0;
      try {
        if (this.resourceVersion === undefined) await this.relist();
        if (!this.synced) {
          this.synced = true;
          this.owner.noteSynced();
        }
        connectedAt = this.deps.clock.now();
        const { labelSelector, fieldSelector } = this.owner.options;
        await this.deps.client.watch(
          this.path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            // as client-go: a random 5 to 10 minutes, so watches do not all end together
            timeoutSeconds: Math.floor(300 + Math.random() * 300),
            labelSelector,
            fieldSelector,
          },
          (event) => this.onEvent(event),
          this.abort.signal,
        );
      } catch (err) {
        if (!this.running) return;
        if (statusCodeOf(err) === 410) {
          this.expired = true;
          this.resourceVersion = undefined;
          this.deps.logger.info('Watch resource version expired; relisting', this.log());
          continue;
        }
        if (connectedAt && this.deps.clock.now() - connectedAt > 30_000) this.backoff.reset();
        const delay = this.backoff.next();
        this.deps.metrics.informerRestarts.inc({ resource: this.owner.name });
        this.deps.logger.warn('Stopped watching after an error; restarting', {
          ...this.log(),
          error: errorMessage(err),
          code: statusCodeOf(err),
          retryInMs: Math.round(delay),
          attempt: this.backoff.attempts,
        });
        await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = this.deps.clock.setTimeout(resolve, ms);
    });
  }

  private onEvent(event: WatchEvent): void {
    const obj = event.object as T;
    const rv = obj.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    this.backoff.reset();
    slim(obj);
    if (rv) this.resourceVersion = rv;
    if (event.type === 'DELETED') {
      this.remove(obj);
      this.emit('delete', obj);
    } else {
      const had = this.put(obj);
      this.emit(had ? 'update' : 'add', obj);
    }
  }

  /** Stores `obj`; true if an object of its name was there. */
  private put(obj: T): boolean {
    const ns = obj.metadata?.namespace ?? '';
    let byName = this.store.get(ns);
    if (!byName) this.store.set(ns, (byName = new Map()));
    const name = obj.metadata?.name ?? '';
    const had = byName.has(name);
    byName.set(name, obj);
    if (!had) this.size++;
    return had;
  }

  private remove(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const byName = this.store.get(ns);
    if (byName?.delete(obj.metadata?.name ?? '')) {
      this.size--;
      if (byName.size === 0) this.store.delete(ns);
    }
  }

  /** Lists every page, swaps the cache, and tells handlers what changed since the last one. */
  private async relist(): Promise<void> {
    const { labelSelector, fieldSelector } = this.owner.options;
    const previous = this.store;
    this.store = new Map();
    this.size = 0;
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    try {
      do {
        const page = await this.deps.client.request<KubeList<T>>('GET', this.path, {
          query: { labelSelector, fieldSelector, limit: pageSize, continue: cont },
        });
        for (const item of page.items ?? []) this.put(slim(item));
        cont = page.metadata?.continue || undefined;
        resourceVersion = page.metadata?.resourceVersion;
      } while (cont);
    } catch (err) {
      this.store = previous; // keep serving the last known state
      this.size = [...previous.values()].reduce((n, m) => n + m.size, 0);
      throw err;
    }
    if (this.lists > 0) {
      const reason = this.expired ? 'expired' : 'restart';
      this.deps.metrics.informerRelists.inc({ resource: this.owner.name, reason });
      this.deps.logger.info('Relisted objects', { ...this.log(), reason, objects: this.size });
    }
    this.lists++;
    this.expired = false;
    this.resourceVersion = resourceVersion ?? '';
    for (const [ns, byName] of this.store)
      for (const [name, obj] of byName) {
        const old = previous.get(ns)?.get(name);
        if (!old) this.emit('add', obj);
        else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj);
      }
    for (const [ns, byName] of previous)
      for (const [name, obj] of byName) if (!this.store.get(ns)?.has(name)) this.emit('delete', obj);
  }
}

const isBerthManager = (manager: string | undefined): boolean =>
  manager === fieldManager || (manager?.startsWith(`${fieldManager}-`) ?? false);
