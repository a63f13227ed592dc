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
    const registers = [registry];
    this.reconcileTotal = new Counter({
      name: 'berth_reconcile_total',
      help: 'Reconciles per controller, by result (success, requeue, waiting, terminal, conflict, error).',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'berth_reconcile_duration_seconds',
      help: 'Time spent in one reconcile.',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'berth_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      labelNames: ['name'],
      registers,
    });
    this.queueAdds = new Counter({
      name: 'berth_workqueue_adds_total',
      help: 'Keys added to the work queue.',
      labelNames: ['name'],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'berth_workqueue_retries_total',
      help: 'Keys re-added to the work queue with backoff after a failure.',
      labelNames: ['name'],
      registers,
    });
    this.queueWait = new Histogram({
      name: 'berth_workqueue_queue_duration_seconds',
      help: 'Time a key waited in the work queue before a worker took it.',
      labelNames: ['name'],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60, 300],
      registers,
    });
    this.leader = new Gauge({
      name: 'berth_leader_is_leader',
      help: '1 while this replica holds the leader-election Lease, else 0.',
      labelNames: ['lease'],
      registers,
    });
    this.informerRestarts = new Counter({
      name: 'berth_informer_restarts_total',
      help: 'Informer list/watch restarts after an error.',
      labelNames: ['resource'],
      registers,
    });
    this.informerRelists = new Counter({
      name: 'berth_informer_relists_total',
      help: 'Full relists of an informer after its first list, by reason (expired = 410 Gone, restart).',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.informerSynced = new Gauge({
      name: 'berth_informer_synced',
      help: '1 once the informer has listed its objects.',
      labelNames: ['resource'],
      registers,
    });
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
