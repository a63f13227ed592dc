// The runtime's Prometheus metrics, registered on the Registry that Deps carries (no global
// registry): reconcile counters and durations, work-queue depth, adds, retries and wait, the
// leader gauge, informer restarts and relists, plus Node's default process metrics.
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QueueMetrics } from './queue.ts';

export type ReconcileResult =
  'success' | 'requeue' | 'waiting' | 'terminal' | 'conflict' | 'fenced' | 'error';

export class RuntimeMetrics {
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly queueDepth: Gauge<'name'>;
  readonly queueAdds: Counter<'name'>;
  readonly queueRetries: Counter<'name'>;
  readonly queueWait: Histogram<'name'>;
  readonly leader: Gauge<'lease'>;
  readonly informerRestarts: Counter<'resource'>;
  readonly informerRelists: Counter<'resource' | 'reason'>;
  readonly informerSynced: Gauge<'resource'>;

  constructor(registry: Registry, options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
    const on = [registry];
    this.reconcileTotal = counter(
      on,
      'berth_reconcile_total',
      ['controller', 'result'],
      'Reconciles per controller, by result (success, requeue, waiting, terminal, conflict, error).',
    );
    this.reconcileDuration = histogram(
      on,
      'berth_reconcile_duration_seconds',
      ['controller'],
      'Time spent in one reconcile.',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    );
    this.queueDepth = gauge(on, 'berth_workqueue_depth', ['name'], 'Keys waiting in the work queue.');
    this.queueAdds = counter(on, 'berth_workqueue_adds_total', ['name'], 'Keys added to the work queue.');
    this.queueRetries = counter(
      on,
      'berth_workqueue_retries_total',
      ['name'],
      'Keys re-added to the work queue with backoff after a failure.',
    );
    this.queueWait = histogram(
      on,
      'berth_workqueue_queue_duration_seconds',
      ['name'],
      'Time a key waited in the work queue before a worker took it.',
      [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60, 300],
    );
    this.leader = gauge(
      on,
      'berth_leader_is_leader',
      ['lease'],
      '1 while this replica holds the leader-election Lease, else 0.',
    );
    this.informerRestarts = counter(
      on,
      'berth_informer_restarts_total',
      ['resource'],
      'Informer list/watch restarts after an error.',
    );
    this.informerRelists = counter(
      on,
      'berth_informer_relists_total',
      ['resource', 'reason'],
      'Full relists of an informer after its first list, by reason (expired = 410 Gone, restart).',
    );
    this.informerSynced = gauge(
      on,
      'berth_informer_synced',
      ['resource'],
      '1 once the informer has listed its objects.',
    );
  }

  queue(name: string): QueueMetrics {
    const labels = { name };
    this.queueDepth.set(labels, 0);
    this.queueAdds.inc(labels, 0);
    this.queueRetries.inc(labels, 0);
    return {
      depth: (n) => this.queueDepth.set(labels, n),
      added: () => this.queueAdds.inc(labels),
      retried: () => this.queueRetries.inc(labels),
      waited: (s) => this.queueWait.observe(labels, s),
    };
  }
}

// The metrics' constructors, registered on `registers` (the Deps' Registry, never the global one).
function counter<L extends string>(
  registers: Registry[],
  name: string,
  labelNames: L[],
  help: string,
): Counter<L> {
  return new Counter({ name, help, labelNames, registers });
}

function gauge<L extends string>(
  registers: Registry[],
  name: string,
  labelNames: L[],
  help: string,
): Gauge<L> {
  return new Gauge({ name, help, labelNames, registers });
}

function histogram<L extends string>(
  registers: Registry[],
  name: string,
  labelNames: L[],
  help: string,
  buckets: number[],
): Histogram<L> {
  return new Histogram({ name, help, labelNames, buckets, registers });
}
