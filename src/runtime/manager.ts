// The manager runs the pieces in order: informers on every replica (so every replica is ready
// and serves metrics), leader election, and the controllers only while leading and only once
// their caches have synced. With leader election every write of deps.client is fenced by the
// elector (src/runtime/fence.ts): a replica whose Lease may have passed to another writes nothing.
// stop() is the graceful shutdown: controllers stop taking keys, in-flight reconciles get until the
// deadline while the elector keeps renewing (so their writes stay inside this replica's term),
// then the elector stops and releases the Lease, and the informers stop.
import type { Deps } from './deps.ts';
import { Controller, type AnyController, type ControllerDefinition } from './controller.ts';
import { Informer, type InformerOptions } from './informer.ts';
import type { KubeObject } from './kube/client.ts';
import type { ResourceType } from './kube/resource.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader.ts';

export interface ManagerOptions {
  /** Namespaces to watch (namespaced resources); empty: all. */
  namespaces: string[];
  /** Default workers per controller. */
  workers: number;
  resyncPeriodMs: number;
  shutdownTimeoutMs: number;
  /** Leader election; undefined: this replica always leads. */
  leaderElection?: Omit<LeaderElectionOptions, 'identity'>;
}

export interface InformerRequest {
  /** One namespace only (overrides the operator's watched namespaces). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export class Manager {
  readonly deps: Deps;
  readonly options: ManagerOptions;
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly controllers: AnyController[] = [];
  private elector: LeaderElector | undefined;
  private leading = false;
  private leadAbort = new AbortController();
  private starting: Promise<void> = Promise.resolve();
  private started = false;
  private stopping = false;

  constructor(deps: Deps, options: ManagerOptions) {
    this.deps = deps;
    this.options = options;
  }

  /** A shared informer: asking twice for the same resource and selectors returns the same cache. */
  informer<T extends KubeObject>(resource: ResourceType<T>, request: InformerRequest = {}): Informer<T> {
    const namespaces = request.namespace ? [request.namespace] : this.options.namespaces;
    const id = JSON.stringify([
      resource.group,
      resource.version,
      resource.plural,
      namespaces,
      request.labelSelector,
      request.fieldSelector,
    ]);
    let informer = this.informers.get(id);
    if (!informer) {
      const options: InformerOptions = {
        resource,
        namespaces,
        labelSelector: request.labelSelector,
        fieldSelector: request.fieldSelector,
        resyncPeriodMs: this.options.resyncPeriodMs,
      };
      informer = new Informer<KubeObject>(this.deps, options);
      this.informers.set(id, informer);
      if (this.started) informer.start();
    }
    return informer as unknown as Informer<T>;
  }

  add<T extends KubeObject>(definition: ControllerDefinition<T>): void {
    this.controllers.push(new Controller<T>(this.deps, definition, this.options.workers));
  }

  /** What keeps /readyz from answering 200: informers that have not synced yet. */
  notReady(): string[] {
    return [...this.informers.values()].filter((i) => !i.hasSynced()).map((i) => `informer ${i.name}`);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.started = true;
    for (const informer of this.informers.values()) informer.start();
    const le = this.options.leaderElection;
    if (!le) {
      this.startLeading();
      return;
    }
    const elector = new LeaderElector(
      this.deps,
      { ...le, identity: this.deps.identity },
      {
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: async () => {
          if (this.leading) await this.stopLeading();
        },
      },
    );
    this.elector = elector;
    this.deps.client.fenceWrites(() => elector.writeRefusal());
    elector.start();
  }

  /** Graceful shutdown; resolves true when every in-flight reconcile finished within the deadline. */
  async stop(): Promise<boolean> {
    const log = this.deps.logger;
    log.info('Stopping the manager', { shutdownTimeoutMs: this.options.shutdownTimeoutMs });
    this.stopping = true;
    let drained: boolean;
    if (this.elector) {
      // drain while the elector still renews (writes stay fenced by the Lease), then release it
      drained = this.leading ? await this.stopLeading() : (this.drainedFlag ?? true);
      await this.elector.stop();
    } else {
      drained = await this.stopLeading();
    }
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    log.info('Stopped the manager', { drained });
    return drained;
  }

  private drainedFlag: boolean | undefined;

  private startLeading(): void {
    if (this.stopping) return;
    this.leading = true;
    this.leadAbort = new AbortController();
    const signal = this.leadAbort.signal;
    this.starting = (async () => {
      for (const controller of this.controllers) {
        const synced = await Promise.all(controller.informers().map((i) => i.waitForSync(signal)));
        if (signal.aborted || !synced.every(Boolean)) return;
        controller.start();
      }
    })();
  }

  private async stopLeading(): Promise<boolean> {
    this.leading = false;
    this.leadAbort.abort();
    await this.starting;
    const results = await Promise.all(this.controllers.map((c) => c.stop(this.options.shutdownTimeoutMs)));
    this.drainedFlag = results.every(Boolean);
    return this.drainedFlag;
  }
}
