// A controller: a primary informer, optional secondary informers mapped to primary keys, a work
// queue and N workers calling reconcile(key). Reconcile a key, never an event: the handlers only
// enqueue keys; reconcile reads the current state from the caches.
import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';
import { classifyError, errorMessage, type ErrorOutcome } from './errors.ts';
import type { EventRecorder } from './events.ts';
import type { AnyInformer, Informer } from './informer.ts';
import type { KubeClient, KubeObject } from './kube/client.ts';
import { keyOf, splitKey } from './kube/resource.ts';
import type { Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { WorkQueue, type RateLimitOptions } from './queue.ts';
import { afterFailure, afterSuccess, type Backoff, type ReconcileDecision } from './reconcile-outcome.ts';
import { reportOf, type ReportTo } from './report.ts';
import { applyStatus } from './writes.ts';

export interface ReconcileRequest {
  /** "namespace/name", or "name" for cluster-scoped objects. */
  key: string;
  namespace: string | undefined;
  name: string;
}

export interface ReconcileContext {
  /** A logger with controller, namespace, name and reconcileID set. */
  log: Logger;
  reconcileId: string;
  /** Aborted when the operator shuts down or loses leadership; in-flight work should finish soon. */
  signal: AbortSignal;
}

export interface ReconcileResult {
  /** Reconcile this key again after this long (time-driven work: rotations, schedules). */
  requeueAfterMs?: number;
}

export interface SecondaryWatch {
  informer: AnyInformer;
  /** The primary keys affected by a change of `obj` (for example mapToOwner(...)). */
  map(obj: KubeObject): string[];
}

/** A secondary watch whose `map` sees the informer's own object type. */
export function watchOf<T extends KubeObject>(
  informer: Informer<T>,
  map: (obj: T) => string[],
): SecondaryWatch {
  return { informer, map };
}

export interface ControllerDefinition<T extends KubeObject = KubeObject> {
  name: string;
  /** The primary informer: its objects' keys are what reconcile receives. */
  for: Informer<T>;
  watches?: SecondaryWatch[];
  /** Concurrent reconciles (default: the operator's --concurrency). Never two for one key. */
  workers?: number;
  rateLimit?: Partial<RateLimitOptions>;
  /**
   * When set, a TerminalError or WaitingError thrown by reconcile is reported on the object: the
   * runtime writes the condition False with the error's reason and message (and the status
   * fields the error carries) as `owner`, and emits a terminal error's Warning Event only when
   * the condition did not already say so. A reconcile that throws one writes no status itself.
   */
  reportTo?: ReportTo<T>;
  reconcile(request: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult | void>;
}

export interface ControllerDeps {
  /** Writes the conditions of reported outcomes (reportTo). */
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
}

/** A controller seen without its object type: what the manager runs. */
export type AnyController = Pick<
  Controller,
  'name' | 'informers' | 'hasSynced' | 'running' | 'start' | 'stop'
>;

/** Runs one ControllerDefinition; start() and stop() may alternate (leadership comes and goes). */
export class Controller<T extends KubeObject = KubeObject> {
  readonly definition: ControllerDefinition<T>;
  private readonly deps: ControllerDeps;
  private readonly defaultWorkers: number;
  private queue: WorkQueue | undefined;
  private workers: Promise<void>[] = [];
  private unsubscribe: (() => void)[] = [];
  private abort = new AbortController();

  constructor(deps: ControllerDeps, definition: ControllerDefinition<T>, defaultWorkers: number) {
    this.deps = deps;
    this.definition = definition;
    this.defaultWorkers = definition.workers ?? defaultWorkers;
    deps.metrics.queue(definition.name);
    for (const result of [
      'success',
      'requeue',
      'waiting',
      'terminal',
      'conflict',
      'fenced',
      'error',
    ] as const)
      deps.metrics.reconcileTotal.inc({ controller: definition.name, result }, 0);
  }

  get name(): string {
    return this.definition.name;
  }

  informers(): AnyInformer[] {
    return [this.definition.for, ...(this.definition.watches ?? []).map((w) => w.informer)];
  }

  hasSynced(): boolean {
    return this.informers().every((i) => i.hasSynced());
  }

  get running(): boolean {
    return this.queue !== undefined && !this.queue.isShuttingDown;
  }

  /** Subscribes to the informers, queues every cached primary object, and starts the workers. */
  start(): void {
    if (this.running) return;
    const { name } = this.definition;
    const queue = new WorkQueue({
      clock: this.deps.clock,
      rateLimit: this.definition.rateLimit,
      metrics: this.deps.metrics.queue(name),
    });
    this.queue = queue;
    this.abort = new AbortController();
    this.unsubscribe = [
      this.definition.for.addHandler((_event, obj) => queue.add(keyOf(obj))),
      ...(this.definition.watches ?? []).map((w) =>
        w.informer.addHandler((_event, obj) => {
          for (const key of w.map(obj)) queue.add(key);
        }),
      ),
    ];
    for (const obj of this.definition.for.list()) queue.add(keyOf(obj));
    this.workers = Array.from({ length: Math.max(1, this.defaultWorkers) }, () => this.work(queue));
    this.deps.logger.info('Started controller', { controller: name, workers: this.workers.length });
  }

  /** Stops taking keys and waits up to `timeoutMs` for in-flight reconciles; true if they all finished. */
  async stop(timeoutMs: number): Promise<boolean> {
    const queue = this.queue;
    if (!queue) return true;
    this.unsubscribe.forEach((u) => u());
    this.unsubscribe = [];
    this.abort.abort();
    const drained = await queue.drain(timeoutMs);
    if (drained) await Promise.all(this.workers);
    this.deps.logger.info('Stopped controller', { controller: this.name, drained });
    return drained;
  }

  private async work(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileOne(queue, key);
      } finally {
        queue.done(key);
      }
    }
  }

  /** Reconciles `key` once, applies the decision on its outcome, and counts it in the metrics. */
  private async reconcileOne(queue: WorkQueue, key: string): Promise<void> {
    const { name: controller } = this.definition;
    const { namespace, name } = splitKey(key);
    const reconcileId = randomBytes(8).toString('hex');
    const log = this.deps.logger.child({ controller, namespace, name, reconcileID: reconcileId });
    const started = this.deps.clock.now();
    const request = { key, namespace, name };
    const { decision: outcome, failure } = await this.outcomeOf(request, {
      log,
      reconcileId,
      signal: this.abort.signal,
    });
    const decision = failure ? await this.report(request, outcome, failure, log) : outcome;
    this.apply(queue, request, decision, log);
    this.deps.metrics.reconcileTotal.inc({ controller, result: decision.result });
    this.deps.metrics.reconcileDuration.observe({ controller }, (this.deps.clock.now() - started) / 1000);
  }

  /** Runs the reconcile; what it returned or threw, as a decision (never throws). */
  private async outcomeOf(
    request: ReconcileRequest,
    ctx: ReconcileContext,
  ): Promise<{ decision: ReconcileDecision; failure?: ErrorOutcome }> {
    try {
      return { decision: afterSuccess(await this.definition.reconcile(request, ctx)) };
    } catch (err) {
      const failure = classifyError(err);
      return { decision: afterFailure(failure), failure };
    }
  }

  /**
   * For a controller with reportTo, writes a terminal or waiting outcome as the object's
   * condition; its Event stays only when the problem is new. A failed write backs off.
   */
  private async report(
    request: ReconcileRequest,
    decision: ReconcileDecision,
    failure: ErrorOutcome,
    log: Logger,
  ): Promise<ReconcileDecision> {
    const reportTo = this.definition.reportTo;
    if (!reportTo || (failure.kind !== 'terminal' && failure.kind !== 'waiting')) return decision;
    const obj = this.definition.for.get(request.name, request.namespace);
    if (!obj || obj.metadata?.deletionTimestamp) return decision;
    const { status, isNew } = reportOf(obj, failure, reportTo.condition ?? 'Ready', this.deps.clock.now());
    try {
      await applyStatus(this.deps.client, reportTo.type, obj, status, reportTo.owner);
    } catch (err) {
      // a conflict (the object changed since it was read) is retried quietly, like any other
      log.info('Could not write the condition of the outcome yet; retrying', {
        reason: failure.reason,
        error: errorMessage(err),
      });
      return { ...afterFailure(classifyError(err)), event: undefined };
    }
    return isNew ? decision : { ...decision, event: undefined };
  }

  /** Does what `decision` says: the queue action first, then the log line, then the Event. */
  private apply(queue: WorkQueue, request: ReconcileRequest, decision: ReconcileDecision, log: Logger): void {
    const { key } = request;
    let backoff: Backoff | undefined;
    const action = decision.queue;
    if (action.kind === 'backoff') {
      const delayMs = queue.addRateLimited(key);
      backoff = { delayMs, retries: queue.numRequeues(key) };
    } else {
      queue.forget(key);
      if (action.kind === 'requeue') queue.addAfter(key, action.afterMs);
    }
    const line = decision.log(backoff);
    log[line.level](line.message, line.fields);
    if (!decision.event) return;
    const obj = this.definition.for.get(request.name, request.namespace);
    if (obj)
      this.deps.events.event(obj, 'Warning', decision.event.reason, 'Reconcile', decision.event.message);
  }
}
