// The garbage collection controller: for each Registry, observes what the procedure needs (the
// trigger, retention Jobs, the registry workload and configuration, the Job of the current step),
// calls the pure `step`, writes the new status.garbageCollection first and then carries out the
// effects (idempotent: a Job name is fixed per run and per step, a restart stamp is recorded before
// it is applied), so a restart of the operator resumes where it was.
import type * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Registry } from '../api/index.ts';
import type { OperatorConfig } from '../config/config.ts';
import { names, selectorLabels, type RegistryRef } from '../model/names.ts';
import { refOf } from '../model/registry.ts';
import { mapToRegistry } from '../model/registry-keys.ts';
import { resources, jobs } from '../model/resources.ts';
import { rolloutOf } from '../model/status.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { errorMessage, isStatus } from '../runtime/errors.ts';
import { lowestRequeue } from '../runtime/requeue.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { collectionPath, core, objectPath, splitKey } from '../runtime/kube/resource.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector, liveObject } from '../runtime/objects.ts';
import { applyStatus } from '../runtime/writes.ts';
import { garbageCollectionStatusOwner } from '../model/status-owners.ts';
import { checksum, secretText } from '../util/secrets.ts';
import { collectJob, probeJob, verifyJob } from './jobs.ts';
import { triggerOf, withNextRunTime } from './trigger.ts';
import { configChecksumAnnotation, stalePods } from './stale-pods.ts';
import { isFinished, jobState, terminationMessage, type JobState } from '../jobs/state.ts';
import { retentionJobSelector } from '../jobs/lock.ts';
import { needsSameNode, registryNode, unsupported } from '../jobs/placement.ts';
import { restartAnnotation } from '../model/maintenance.ts';
import {
  defaultSettings,
  step,
  type Effect,
  type GCStatus,
  type Observed,
  type Settings,
  type WorkloadView,
} from './procedure.ts';

/** Field manager of the restart stamp, apart from `berth` so the Registry controller's apply leaves it. */
export const restartFieldManager = 'berth-gc';

export interface GCCaches {
  registries: Cache<Registry>;
  deployments: Cache<k8s.V1Deployment>;
  secrets: Cache<k8s.V1Secret>;
  jobs: Cache<k8s.V1Job>;
}

type GCDeps = Pick<Deps, 'client' | 'clock' | 'events' | 'logger'>;

export class GarbageCollectionReconciler {
  private readonly deps: GCDeps;
  private readonly caches: GCCaches;
  private readonly operatorImage: string;
  private readonly settings: Settings;

  constructor(deps: GCDeps, caches: GCCaches, operatorImage: string, settings: Settings = defaultSettings) {
    this.deps = deps;
    this.caches = caches;
    this.operatorImage = operatorImage;
    this.settings = settings;
  }

  /**
   * Observes, decides one step of the procedure (`step`), writes status.garbageCollection, then
   * carries out the effects; requeues at the soonest of the step's wait and the next scheduled run.
   */
  async reconcile(req: ReconcileRequest, rctx: ReconcileContext): Promise<ReconcileResult | void> {
    const live = liveObject(this.caches.registries, req);
    if (!live) return;
    const { cached, object: registry } = live;
    const now = new Date(this.deps.clock.now());
    const current: GCStatus = registry.status?.garbageCollection ?? {};
    const when = triggerOf(registry, current, now);
    if (when.scheduleProblem) {
      this.deps.events.event(registry, 'Warning', 'InvalidSchedule', 'GarbageCollect', when.scheduleProblem);
    }
    const observed = await this.observe(registry, current, now, when.trigger);
    const result = step(registry.metadata?.name ?? '', current, observed, this.settings);
    const status = withNextRunTime(result.status, when.nextRunTime);
    // Status first: the effects are derived again from it if anything below fails.
    await this.writeStatus(cached, status);
    for (const effect of result.effects) await this.perform(registry, effect, rctx);
    if (status.phase !== current.phase) {
      rctx.log.info('Garbage collection moved on', {
        from: current.phase,
        to: status.phase,
        message: status.message,
      });
    }
    const untilNextRun = when.nextRunTime
      ? new Date(when.nextRunTime).getTime() - now.getTime() + 1000
      : undefined;
    // No cap: the next scheduled run may be a week away.
    return lowestRequeue([result.requeueAfterMs, untilNextRun], Number.POSITIVE_INFINITY);
  }

  /**
   * What the procedure needs: retention Jobs (from the API server, only while Pending), the
   * workload (stale pods only while ReadOnly), the current step's Job, and whether the storage
   * can be collected at all.
   */
  private async observe(
    registry: Registry,
    current: GCStatus,
    now: Date,
    trigger: Observed['trigger'],
  ): Promise<Observed> {
    const ref = refOf(registry);
    const why = unsupported(registry);
    return {
      now,
      ...(trigger ? { trigger } : {}),
      retentionJobsRunning:
        current.phase === 'Pending' ? await this.retentionJobsRunning(ref.namespace, ref.name) : 0,
      workload: await this.workload(ref, current.phase === 'ReadOnly'),
      job: await this.currentJob(ref.namespace, current),
      ...(why ? { unsupported: why } : {}),
    };
  }

  /** Writes status.garbageCollection (the GC controller's part of the status), only when it changed. */
  private async writeStatus(cached: Registry, status: GCStatus): Promise<void> {
    await applyStatus(
      this.deps.client,
      resources.registries,
      cached,
      Object.keys(status).length > 0 ? { garbageCollection: status } : {},
      garbageCollectionStatusOwner,
    );
  }

  private async workload(ref: RegistryRef, countStale: boolean): Promise<WorkloadView> {
    const deployment = this.caches.deployments.get(names.workload(ref), ref.namespace);
    const secret = this.caches.secrets.get(names.configSecret(ref), ref.namespace);
    const config = secretText(secret, 'config.yml');
    let configReadOnly: boolean;
    try {
      const doc = config
        ? (parse(config) as { storage?: { maintenance?: { readonly?: { enabled?: boolean } } } })
        : {};
      configReadOnly = doc.storage?.maintenance?.readonly?.enabled === true;
    } catch {
      configReadOnly = false;
    }
    const annotations = deployment?.spec?.template?.metadata?.annotations ?? {};
    const restartedAt = annotations[restartAnnotation];
    const current = config ? checksum(config) : '';
    return {
      rolledOut: rolloutOf(deployment).complete,
      runsCurrentConfig: !!config && annotations[configChecksumAnnotation] === current,
      configReadOnly,
      ...(restartedAt ? { restartedAt } : {}),
      // From the API server, terminating pods included: only while going read-only.
      stalePods: countStale && config ? stalePods(await this.registryPods(ref), current).length : 0,
    };
  }

  private async registryPods(ref: RegistryRef): Promise<k8s.V1Pod[]> {
    const selector = Object.entries(selectorLabels(ref, 'registry'))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const list = await this.deps.client.list<k8s.V1Pod>(collectionPath(core.pods, ref.namespace), {
      labelSelector: selector,
    });
    return list.items;
  }

  /** Unfinished retention Jobs of this Registry, from the API server (the lock must not trust a cache). */
  private async retentionJobsRunning(namespace: string, registry: string): Promise<number> {
    const list = await this.deps.client.list<k8s.V1Job>(collectionPath(jobs, namespace), {
      labelSelector: retentionJobSelector(registry),
    });
    return list.items.filter((j) => !isFinished(j)).length;
  }

  private async currentJob(namespace: string, gc: GCStatus): Promise<JobState> {
    const name = gc.run?.job;
    if (!name) return { state: 'Absent' };
    const job = this.caches.jobs.get(name, namespace);
    const state = jobState(job);
    if (state.state === 'Absent') {
      // The cache may lag behind a Job created a moment ago: ask the API server before re-creating.
      try {
        return jobState(await this.deps.client.get<k8s.V1Job>(objectPath(jobs, name, namespace)));
      } catch (err) {
        if (isStatus(err, 404)) return state;
        throw err;
      }
    }
    if (state.state !== 'Succeeded' && state.state !== 'Failed') return state;
    const podList = await this.deps.client.list<k8s.V1Pod>(collectionPath(core.pods, namespace), {
      labelSelector: `batch.kubernetes.io/job-name=${name}`,
    });
    const message = terminationMessage(podList.items);
    if (state.state === 'Succeeded') return message ? { state: 'Succeeded', output: message } : state;
    return message
      ? { state: 'Failed', message: `${state.message}: ${message.trim().slice(0, 1000)}` }
      : state;
  }

  private async perform(registry: Registry, effect: Effect, rctx: ReconcileContext): Promise<void> {
    const ref = refOf(registry);
    switch (effect.kind) {
      case 'event':
        this.deps.events.event(registry, effect.type, effect.reason, 'GarbageCollect', effect.message);
        return;
      case 'createCollectJob': {
        const nodeName = needsSameNode(registry) ? await registryNode(this.deps.client, ref) : undefined;
        await this.createJob(collectJob(registry, ref, effect.name, nodeName ? { nodeName } : {}), rctx);
        return;
      }
      case 'createProbeJob':
        await this.createJob(probeJob(registry, ref, effect.name, this.operatorImage), rctx);
        return;
      case 'createVerifyJob':
        await this.createJob(verifyJob(registry, ref, effect.name, this.operatorImage), rctx);
        return;
      case 'restart':
        await this.deps.client.apply(
          objectPath(resources.deployments, names.workload(ref), ref.namespace),
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: names.workload(ref), namespace: ref.namespace },
            spec: { template: { metadata: { annotations: { [restartAnnotation]: effect.stamp } } } },
          },
          restartFieldManager,
        );
        return;
    }
  }

  private async createJob(job: k8s.V1Job, rctx: ReconcileContext): Promise<void> {
    try {
      await this.deps.client.create(collectionPath(jobs, job.metadata?.namespace), job);
      rctx.log.info('Created garbage collection Job', { job: job.metadata?.name });
    } catch (err) {
      if (!isStatus(err, 409))
        throw new Error(`creating Job ${job.metadata?.name}: ${errorMessage(err)}`, { cause: err });
    }
  }
}

/** mapToRegistry for the one child named `nameOf(registry)` in the Registry's namespace. */
export function mapNamed(obj: KubeObject, nameOf: (ref: RegistryRef) => string): string[] {
  return mapToRegistry(obj).filter((key) => {
    const { namespace, name } = splitKey(key);
    return (
      namespace === obj.metadata?.namespace &&
      obj.metadata?.name === nameOf({ namespace: namespace ?? '', name })
    );
  });
}

export function garbageCollectionController(deps: Deps, manager: Manager, config: OperatorConfig): void {
  const owned = { labelSelector: managedBySelector };
  const registries = manager.informer(resources.registries);
  const deployments = manager.informer(resources.deployments, owned);
  const secrets = manager.informer(resources.secrets, owned);
  const jobInformer = manager.informer(jobs, owned);
  const caches: GCCaches = { registries, deployments, secrets, jobs: jobInformer };
  const reconciler = new GarbageCollectionReconciler(deps, caches, config.image);
  manager.add({
    name: 'garbage-collection',
    for: registries,
    watches: [
      // of the Registry's Deployments and Secrets, the procedure reads its workload and its config
      // (not its pull Secrets, which a fan-out creates by the thousand)
      { informer: deployments, map: (obj) => mapNamed(obj, names.workload) },
      { informer: secrets, map: (obj) => mapNamed(obj, names.configSecret) },
      { informer: jobInformer, map: mapToRegistry },
    ],
    workers: 1,
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
