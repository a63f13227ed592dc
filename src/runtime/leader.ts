// Leader election with a coordination.k8s.io/v1 Lease, with client-go's semantics:
// - a candidate takes the Lease when it is free, released, or has not been renewed for
//   leaseDuration as measured on the candidate's own clock from when it last saw the record
//   change (so clocks need not agree);
// - the leader renews every retryPeriod; if it cannot renew within renewDeadline it stops leading
//   (renewDeadline < leaseDuration, so it stops before anyone else may take over);
// - on shutdown the leader releases the Lease (empty holder), so a successor starts at once.
// Unlike client-go, losing the Lease does not exit the process: the callbacks stop the
// controllers and the elector campaigns again, so an API-server outage does not kill the operator.
// writeRefusal() is the write fence (src/runtime/fence.ts): the client refuses writes once the
// renew deadline has passed since the last successful renewal started, so a replica that was
// frozen or cut off stops writing before another can take the Lease. The elector's own Lease
// requests are the only unfenced ones.
import { sleep, type Clock } from './clock.ts';
import { errorMessage, isConflict, isNotFound } from './errors.ts';
import { writeRefusal } from './fence.ts';
import type { KubeClient, KubeObject } from './kube/client.ts';
import { core, objectPath, collectionPath } from './kube/resource.ts';
import type { Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface LeaderCallbacks {
  /** Called when this replica becomes the leader. */
  onStartedLeading(): void;
  /** Called when it stops (lost the Lease or shutting down); resolves when work has stopped. */
  onStoppedLeading(): Promise<void>;
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorDeps {
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  metrics: RuntimeMetrics;
}

/** RFC 3339 with microseconds, as the API server's MicroTime wants it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The spec of a Lease that `identity` acquires at `now`. Pure. */
export function leaseSpecFor(identity: string, leaseDurationMs: number, now: number): LeaseSpec {
  return {
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    acquireTime: microTime(now),
    renewTime: microTime(now),
    leaseTransitions: 0,
  };
}

/**
 * The spec `identity` writes over the Lease's `current` one at `now`, or undefined while another
 * holder's lease has not expired, measured from `observedAt` (when this replica saw the record
 * change, on its own clock). Renewing keeps the acquire time and the transitions; taking over a
 * free, released or expired Lease counts a transition. Pure.
 */
export function nextLeaseSpec(
  current: LeaseSpec,
  observedAt: number,
  identity: string,
  leaseDurationMs: number,
  now: number,
): LeaseSpec | undefined {
  const holder = current.holderIdentity ?? '';
  const durationMs = (current.leaseDurationSeconds ?? 0) * 1000;
  if (holder !== '' && holder !== identity && observedAt + durationMs > now) return undefined;
  const desired = leaseSpecFor(identity, leaseDurationMs, now);
  if (holder === identity) {
    desired.acquireTime = current.acquireTime ?? desired.acquireTime;
    desired.leaseTransitions = current.leaseTransitions ?? 0;
  } else {
    desired.leaseTransitions = (current.leaseTransitions ?? 0) + 1;
  }
  return desired;
}

export class LeaderElector {
  private readonly deps: LeaderElectorDeps;
  private readonly options: LeaderElectionOptions;
  private readonly callbacks: LeaderCallbacks;
  private observed: { record: string; at: number } | undefined;
  private lease: Lease | undefined;
  private leading = false;
  /** When the last successful acquire or renew attempt started (clock time). */
  private renewedAt: number | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(deps: LeaderElectorDeps, options: LeaderElectionOptions, callbacks: LeaderCallbacks) {
    this.deps = deps;
    this.options = options;
    this.callbacks = callbacks;
    if (!(options.renewDeadlineMs < options.leaseDurationMs))
      throw new Error('leader election: the renew deadline must be shorter than the lease duration');
    if (!(options.retryPeriodMs * 1.2 < options.renewDeadlineMs))
      throw new Error(
        'leader election: the retry period (x1.2 jitter) must be shorter than the renew deadline',
      );
    deps.metrics.leader.set({ lease: options.name }, 0);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Why this replica must not write now (see src/runtime/fence.ts), or undefined when it may. */
  writeRefusal(): string | undefined {
    return writeRefusal(
      { leading: this.leading, renewedAt: this.renewedAt },
      this.deps.clock.now(),
      this.options.renewDeadlineMs,
    );
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops campaigning; a leader stops its work and then releases the Lease. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private log(): Record<string, unknown> {
    return { lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity };
  }

  private async run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.options;
    while (!this.signal.aborted) {
      // campaign
      this.deps.logger.info('Started campaigning for the leader Lease', this.log());
      while (!this.signal.aborted && !(await this.tryAcquireOrRenew())) {
        await sleep(this.deps.clock, retryPeriodMs * (1 + Math.random() * 0.2), this.signal);
      }
      if (this.signal.aborted) break;
      this.setLeading(true);
      this.deps.logger.info('Acquired the leader Lease', this.log());
      this.callbacks.onStartedLeading();
      // renew
      while (!this.signal.aborted) {
        await sleep(this.deps.clock, retryPeriodMs, this.signal);
        if (this.signal.aborted) break;
        if (
          !(await this.tryAcquireOrRenew()) &&
          this.deps.clock.now() - (this.renewedAt ?? 0) >= renewDeadlineMs
        )
          break;
      }
      this.setLeading(false);
      if (this.signal.aborted) {
        await this.callbacks.onStoppedLeading();
        await this.release();
        return;
      }
      this.deps.logger.error('Lost the leader Lease; stopped reconciling and campaigning again', this.log());
      await this.callbacks.onStoppedLeading();
    }
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    if (!leading) this.renewedAt = undefined;
    this.deps.metrics.leader.set({ lease: this.options.name }, leading ? 1 : 0);
  }

  private path(): string {
    return objectPath(core.leases, this.options.name, this.options.namespace);
  }

  /** Each call is bounded well within the renew deadline, so a hanging API server cannot stall renewal. */
  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const timeoutMs = Math.max(
      1000,
      Math.min(this.options.retryPeriodMs * 2, this.options.renewDeadlineMs / 2),
    );
    return this.deps.client.request<T>(method, path, { body, timeoutMs, unfenced: true });
  }

  /**
   * One attempt, as client-go's tryAcquireOrRenew: creates the Lease if there is none, else takes
   * or renews it unless another holder's has not expired (nextLeaseSpec). True when this replica
   * holds it now; a failed request is logged (a conflict quietly) and is false.
   */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { clock } = this.deps;
    const now = clock.now();
    const { identity, leaseDurationMs } = this.options;
    try {
      const current = await this.findLease();
      if (!current) {
        this.lease = await this.call<Lease>('POST', collectionPath(core.leases, this.options.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.name, namespace: this.options.namespace },
          spec: leaseSpecFor(identity, leaseDurationMs, now),
        });
      } else {
        const spec = current.spec ?? {};
        const record = JSON.stringify(spec);
        if (!this.observed || this.observed.record !== record) this.observed = { record, at: now };
        const desired = nextLeaseSpec(spec, this.observed.at, identity, leaseDurationMs, now);
        if (!desired) return false;
        this.lease = await this.call<Lease>('PUT', this.path(), { ...current, spec: desired });
      }
      this.observed = { record: JSON.stringify(this.lease.spec), at: clock.now() };
      this.renewedAt = now;
      return true;
    } catch (err) {
      const level = isConflict(err) ? 'debug' : 'warn';
      this.deps.logger.log(level, 'Failed to acquire or renew the leader Lease', {
        ...this.log(),
        error: errorMessage(err),
      });
      return false;
    }
  }

  /** The Lease, or undefined when there is none (404); other errors are thrown. */
  private async findLease(): Promise<Lease | undefined> {
    try {
      return await this.call<Lease>('GET', this.path());
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return undefined;
    }
  }

  /** Gives the Lease up (client-go's ReleaseOnCancel), so that another replica takes over at once. */
  private async release(): Promise<void> {
    if (!this.lease || this.lease.spec?.holderIdentity !== this.options.identity) return;
    const now = this.deps.clock.now();
    try {
      await this.call<Lease>('PUT', this.path(), {
        ...this.lease,
        spec: {
          ...this.lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(now),
          acquireTime: microTime(now),
        },
      });
      this.deps.logger.info('Released the leader Lease', this.log());
    } catch (err) {
      this.deps.logger.warn('Failed to release the leader Lease', {
        ...this.log(),
        error: errorMessage(err),
      });
    }
  }
}
