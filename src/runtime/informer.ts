// An informer: a cache of one resource kept current by client-node's ListWatch, made robust.
//
// client-node's ListWatch relists by itself on 410 Gone and reconnects after a clean close, but it
// stops for good on any other error (a refused connection while kube-apiserver restarts, a 5xx,
// a failed list). Here every such stop is followed by a restart after a jittered exponential
// backoff (0.8 s doubling to 30 s, as client-go's reflector), which resumes the watch from the last
// resourceVersion; if that has expired meanwhile, the API server answers 410 and ListWatch relists.
// List results and watch events are both plain JSON as the API server sends them (timestamps
// are strings), so the cache never mixes typed models with wire objects.
//
// Objects in the cache are shared: never mutate them (structuredClone first).
import * as k8s from '@kubernetes/client-node';
import { Backoff } from './backoff.ts';
import type { Clock, Timer } from './clock.ts';
import { errorMessage, statusCodeOf } from './errors.ts';
import type { KubeClient, KubeObject } from './kube/client.ts';
import { collectionPath, resourceName, type ResourceType } from './kube/resource.ts';
import type { Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';

export type InformerEvent = 'add' | 'update' | 'delete' | 'resync';
export type InformerHandler<T> = (event: InformerEvent, obj: T) => void;

/** Read access to an informer's cache. */
export interface Cache<T extends KubeObject> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): T[];
  hasSynced(): boolean;
}

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
  kubeConfig: k8s.KubeConfig;
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
      const found = r.cache.get(name, namespace);
      if (found) return found as unknown as T;
    }
    return undefined;
  }

  list(namespace?: string): T[] {
    return this.reflectors
      .filter((r) => namespace === undefined || r.namespace === undefined || r.namespace === namespace)
      .flatMap((r) => r.cache.list(namespace) as unknown as T[]);
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

/** One ListWatch (one namespace or all), restarted with backoff whenever it stops on an error. */
class Reflector<T extends KubeObject> {
  readonly namespace: string | undefined;
  /** The ListWatch holds wire objects; `T` is the caller's view of them. */
  readonly cache: k8s.ListWatch<k8s.KubernetesObject>;
  synced = false;
  private readonly deps: InformerDeps;
  private readonly owner: Informer<T>;
  private readonly path: string;
  private readonly backoff = new Backoff({ initialMs: 800, maxMs: 30_000, factor: 2, jitter: 1 });
  private restartTimer: Timer | undefined;
  private running = false;
  private lists = 0;
  private expired = false;
  private connectedAt = 0;

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
    const { labelSelector, fieldSelector } = owner.options;
    this.cache = new k8s.ListWatch<k8s.KubernetesObject>(
      path,
      this.instrumentedWatch(),
      () => this.list(),
      false,
      labelSelector,
      fieldSelector,
    );
    this.cache.on('add', (o) => emit('add', o as unknown as T));
    this.cache.on('update', (o) => emit('update', o as unknown as T));
    this.cache.on('delete', (o) => emit('delete', o as unknown as T));
    this.cache.on('error', (err) => this.onError(err));
  }

  start(): void {
    this.running = true;
    this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.restartTimer?.cancel();
    await this.cache.stop();
  }

  private run(): void {
    if (!this.running) return;
    this.cache.start().catch((err: unknown) => this.onError(err));
  }

  private log(): Record<string, unknown> {
    return { resource: this.owner.name, ...(this.namespace ? { namespace: this.namespace } : {}) };
  }

  private onError(err: unknown): void {
    if (!this.running) return;
    const ranMs = this.deps.clock.now() - this.connectedAt;
    if (this.connectedAt && ranMs > 30_000) this.backoff.reset();
    const delay = this.backoff.next();
    this.deps.metrics.informerRestarts.inc({ resource: this.owner.name });
    this.deps.logger.warn('Stopped watching after an error; restarting', {
      ...this.log(),
      error: errorMessage(err),
      code: statusCodeOf(err),
      retryInMs: Math.round(delay),
      attempt: this.backoff.attempts,
    });
    this.restartTimer?.cancel();
    this.restartTimer = this.deps.clock.setTimeout(() => this.run(), delay);
  }

  private async list(): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> {
    const { labelSelector, fieldSelector } = this.owner.options;
    const list = await this.deps.client.list<T>(this.path, { labelSelector, fieldSelector });
    if (this.lists > 0) {
      const reason = this.expired ? 'expired' : 'restart';
      this.deps.metrics.informerRelists.inc({ resource: this.owner.name, reason });
      this.deps.logger.info('Relisted objects', { ...this.log(), reason, objects: list.items.length });
    }
    this.lists++;
    this.expired = false;
    const items = list.items as unknown as k8s.KubernetesObject[];
    return { apiVersion: 'v1', kind: 'List', metadata: list.metadata ?? {}, items };
  }

  /** client-node's Watch, observed: first watch after a list means synced; 410s are noted. */
  private instrumentedWatch(): k8s.Watch {
    const watch = new k8s.Watch(this.deps.kubeConfig);
    const original = watch.watch.bind(watch);
    watch.watch = async (path, query, callback, done) => {
      if (!this.synced && this.cache.latestResourceVersion() !== '') {
        this.synced = true;
        this.owner.noteSynced();
      }
      this.connectedAt = this.deps.clock.now();
      return original(
        path,
        query,
        (phase: string, apiObj: unknown, watchObj?: unknown) => {
          if (phase === 'ERROR' && statusCodeOf(apiObj) === 410) {
            this.expired = true;
            this.deps.logger.info('Watch resource version expired; relisting', this.log());
          } else if (phase !== 'ERROR') {
            this.backoff.reset();
          }
          callback(phase, apiObj, watchObj);
        },
        (err: unknown) => {
          if (statusCodeOf(err) === 410) this.expired = true;
          done(err);
        },
      );
    };
    return watch;
  }
}
