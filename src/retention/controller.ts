// The RetentionPolicy controller: schedules runs, creates one Job per run (berth's image running
// `berth retention-run`), reads the run's report ConfigMap when the Job finishes, and writes
// status.lastRun, status.nextRunTime and Ready. The decisions are in controller-decide.ts; the run
// itself (planning, scope, deletions) is `berth retention-run`.
import type * as k8s from '@kubernetes/client-node';
import type { RetentionPolicy } from '../api/generated/retentionpolicy.ts';
import type { Registry } from '../api/index.ts';
import type { OperatorConfig } from '../config/config.ts';
import { jobs, resources } from '../model/resources.ts';
import { jobState, terminationMessage } from '../jobs/state.ts';
import { retentionBlockedBy, retentionLabels } from '../jobs/lock.ts';
import { registryNode } from '../jobs/placement.ts';
import { refOf } from '../model/registry.ts';
import type { RegistryRef } from '../model/names.ts';
import {
  watchOf,
  type ReconcileContext,
  type ReconcileRequest,
  type ReconcileResult,
} from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { errorMessage, isNotFound, isStatus } from '../runtime/errors.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { collectionPath, core, objectPath, resourceType } from '../runtime/kube/resource.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector, liveObject } from '../runtime/objects.ts';
import { applyOwned, applyStatus } from '../runtime/writes.ts';
import { retentionStatusOwner } from '../model/status-owners.ts';
import {
  decide,
  parseSummary,
  policyStatus,
  unrecordedRun,
  type Action,
  type Decision,
  type Observed,
  type RunSummary,
  type RunView,
} from './controller-decide.ts';
import {
  reportAnnotation,
  clusterRoles,
  retentionClusterBinding,
  type RetentionClusterRoles,
  retentionJob,
  retentionReportBinding,
  retentionServiceAccountObject,
  retentionUnsupported,
} from './controller-job.ts';

export const retentionPolicies = resourceType<RetentionPolicy>({
  group: 'berth.dev',
  version: 'v1alpha1',
  plural: 'retentionpolicies',
  kind: 'RetentionPolicy',
});

export interface RetentionCaches {
  policies: Cache<RetentionPolicy>;
  registries: Cache<Registry>;
  jobs: Cache<k8s.V1Job>;
}

type RetentionDeps = Pick<Deps, 'client' | 'clock' | 'events' | 'logger'>;

/** The policy a retention Job belongs to, from its labels. */
export function mapJobToPolicy(obj: KubeObject): string[] {
  const l = obj.metadata?.labels ?? {};
  const name = l[retentionLabels.policy];
  const ns = l[retentionLabels.policyNamespace];
  return name && ns ? [`${ns}/${name}`] : [];
}

export class RetentionReconciler {
  private readonly deps: RetentionDeps;
  private readonly caches: RetentionCaches;
  private readonly image: string;
  private readonly roles: RetentionClusterRoles;

  constructor(
    deps: RetentionDeps,
    caches: RetentionCaches,
    image: string,
    roles: RetentionClusterRoles = clusterRoles,
  ) {
    this.deps = deps;
    this.caches = caches;
    this.image = image;
    this.roles = roles;
  }

  /**
   * Observes the policy's runs and its Registry, decides (`decide`), carries out the actions (a
   * Job must exist before status says it started), then writes status (`policyStatus`).
   */
  async reconcile(req: ReconcileRequest, rctx: ReconcileContext): Promise<ReconcileResult | void> {
    const live = liveObject(this.caches.policies, req);
    if (!live) return;
    const { cached, object: policy } = live;
    const policyRef = { name: req.name, namespace: req.namespace ?? '' };
    const registryRef = {
      name: policy.spec.registryRef.name,
      namespace: policy.spec.registryRef.namespace || policyRef.namespace,
    };
    const registry = this.caches.registries.get(registryRef.name, registryRef.namespace);
    const now = new Date(this.deps.clock.now());
    const observed = await this.observe(policy, req, registryRef.namespace, registry, now, rctx);
    const decision = decide(policy, observed);
    const started = await this.act(policy, policyRef, registryRef.namespace, registry, decision, rctx);
    const { status, requeueAfterMs } = policyStatus(policy, decision, started, now);
    await applyStatus(this.deps.client, retentionPolicies, cached, status, retentionStatusOwner);
    return requeueAfterMs > 0 ? { requeueAfterMs } : undefined;
  }

  /**
   * What `decide` reads: the policy's Jobs (from the cache, in the Registry's namespace), and for
   * the newest unrecorded finished run its report's summary and, if it failed, its container's
   * termination message; whether the Registry exists, is locked by a garbage collection, or has
   * storage a run cannot read.
   */
  private async observe(
    policy: RetentionPolicy,
    req: ReconcileRequest,
    jobNamespace: string,
    registry: Registry | undefined,
    now: Date,
    rctx: ReconcileContext,
  ): Promise<Observed> {
    const runs: RunView[] = this.caches.jobs
      .list(jobNamespace)
      .filter((j) => mapJobToPolicy(j)[0] === req.key)
      .map((j) => ({
        job: j.metadata?.name ?? '',
        report: j.metadata?.annotations?.[reportAnnotation] ?? '',
        created: String(j.metadata?.creationTimestamp ?? ''),
        state: jobState(j),
      }));
    rctx.log.debug('Observed retention runs', { runs: runs.map((r) => `${r.job}:${r.state.state}`) });
    const unrecorded = unrecordedRun(policy, runs);
    const summary = unrecorded ? await this.readSummary(req.namespace ?? '', unrecorded.report) : undefined;
    const failure =
      unrecorded?.state.state === 'Failed' ? await this.failureOf(jobNamespace, unrecorded.job) : undefined;
    const unsupported = registry ? retentionUnsupported(registry) : undefined;
    const blockedBy = registry ? retentionBlockedBy(registry) : undefined;
    return {
      now,
      registryFound: !!registry,
      ...(blockedBy ? { blockedBy } : {}),
      runs,
      ...(summary ? { summary } : {}),
      ...(failure ? { failure } : {}),
      ...(unsupported ? { unsupported } : {}),
    };
  }

  /**
   * Carries out the decision's actions; a retry derives them again, and the Job name is fixed per
   * second, so a retry within it finds the Job already there. False when a run was to start but a
   * garbage collection took the lock meanwhile.
   */
  private async act(
    policy: RetentionPolicy,
    policyRef: { name: string; namespace: string },
    jobNamespace: string,
    registry: Registry | undefined,
    decision: Decision,
    rctx: ReconcileContext,
  ): Promise<boolean> {
    let started = true;
    for (const action of decision.actions) {
      if (action.kind === 'createJob' && registry) {
        started = await this.startRun(policy, policyRef, registry, action, rctx);
      } else await this.perform(policy, policyRef, jobNamespace, action);
    }
    return started;
  }

  private async readSummary(namespace: string, name: string): Promise<RunSummary | undefined> {
    if (!name) return undefined;
    try {
      const cm = await this.deps.client.get<k8s.V1ConfigMap>(objectPath(core.configMaps, name, namespace));
      return parseSummary(cm.data?.['summary.json']);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The termination message of a failed run's container, read once when the run is recorded. */
  private async failureOf(namespace: string, job: string): Promise<string | undefined> {
    const pods = await this.deps.client.list<k8s.V1Pod>(collectionPath(core.pods, namespace), {
      labelSelector: `batch.kubernetes.io/job-name=${job}`,
    });
    return terminationMessage(pods.items);
  }

  /**
   * Creates the run's Job, unless a garbage collection took the lock since the cache was read:
   * reads the Registry fresh (the lock, src/jobs/lock.ts), applies the run's identity, creates the
   * Job (placed beside the registry pod when it must be) and emits RunStarted. False when locked.
   */
  private async startRun(
    policy: RetentionPolicy,
    policyRef: { name: string; namespace: string },
    cachedRegistry: Registry,
    action: Extract<Action, { kind: 'createJob' }>,
    rctx: ReconcileContext,
  ): Promise<boolean> {
    const ref = refOf(cachedRegistry);
    // The lock (src/jobs/lock.ts): read the Registry from the API server right before creating.
    const registry = await this.deps.client.get<Registry>(
      objectPath(resources.registries, ref.name, ref.namespace),
    );
    const blocked = retentionBlockedBy(registry);
    if (blocked) {
      rctx.log.info('Retention run waits for the garbage collection', { reason: blocked });
      return false;
    }
    await this.applyIdentity(ref, policyRef.namespace);
    const nodeName = await registryNode(this.deps.client, ref);
    const job = retentionJob({
      policy: policyRef,
      registry,
      ref,
      job: action.job,
      report: action.report,
      mode: action.mode,
      image: this.image,
      ...(nodeName ? { nodeName } : {}),
    });
    try {
      await this.deps.client.create(collectionPath(jobs, ref.namespace), job);
    } catch (err) {
      if (!isStatus(err, 409))
        throw new Error(`creating Job ${action.job}: ${errorMessage(err)}`, { cause: err });
    }
    this.deps.events.event(
      policy,
      'Normal',
      'RunStarted',
      'Run',
      `started ${action.mode} run: Job ${ref.namespace}/${action.job}, report ConfigMap ${action.report}`,
    );
    return true;
  }

  /**
   * The runs' identity in the Registry's namespace: the ServiceAccount, its cluster-wide binding
   * and its binding to write reports in the policy's namespace.
   */
  private async applyIdentity(ref: RegistryRef, policyNamespace: string): Promise<void> {
    const { client } = this.deps;
    await applyOwned(client, core.serviceAccounts, retentionServiceAccountObject(ref), undefined);
    await applyOwned(
      client,
      resources.clusterRoleBindings,
      retentionClusterBinding(ref, this.roles),
      undefined,
    );
    await applyOwned(
      client,
      resources.roleBindings,
      retentionReportBinding(ref, policyNamespace, this.roles),
      undefined,
    );
  }

  private async perform(
    policy: RetentionPolicy,
    policyRef: { name: string; namespace: string },
    jobNamespace: string,
    action: Action,
  ): Promise<void> {
    // As a query parameter: a DELETE body is sent without a length by the runtime's client.
    const background = { query: { propagationPolicy: 'Background' } };
    const ignoreMissing = (err: unknown) => {
      if (!isNotFound(err)) throw err;
    };
    switch (action.kind) {
      case 'event':
        this.deps.events.event(policy, action.type, action.reason, 'Run', action.message);
        return;
      case 'deleteJob':
        await this.deps.client
          .request('DELETE', objectPath(jobs, action.job, jobNamespace), background)
          .catch(ignoreMissing);
        return;
      case 'deleteReport':
        if (action.report) {
          await this.deps.client
            .request('DELETE', objectPath(core.configMaps, action.report, policyRef.namespace), background)
            .catch(ignoreMissing);
        }
        return;
      case 'createJob':
        return;
    }
  }
}

export function retentionController(deps: Deps, manager: Manager, config: OperatorConfig): void {
  const policies = manager.informer(retentionPolicies);
  const registries = manager.informer(resources.registries);
  const jobInformer = manager.informer(jobs, { labelSelector: managedBySelector });
  const reconciler = new RetentionReconciler(
    deps,
    { policies, registries, jobs: jobInformer },
    config.image,
    {
      cluster: config.retentionClusterRole,
      report: config.retentionReportClusterRole,
    },
  );
  manager.add({
    name: 'retention',
    for: policies,
    watches: [
      { informer: jobInformer, map: mapJobToPolicy },
      // A Registry's change (created, GC over) concerns the policies that name it.
      watchOf(registries, (reg) =>
        policies
          .list()
          .filter((p) => {
            const spec = p.spec;
            return (
              spec.registryRef.name === reg.metadata?.name &&
              (spec.registryRef.namespace || p.metadata?.namespace) === reg.metadata?.namespace
            );
          })
          .map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`),
      ),
    ],
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
