// The Registry controller's node-access step: keep the node agents' ConfigMap and DaemonSet as
// spec.nodeAccess asks, and take them away safely.
//
// Removal (nodeAccess turned off, or the Registry deleted): the DaemonSet is switched to cleanup
// mode (its pods restart with --cleanup, remove exactly what they wrote, and only then report
// ready); once every scheduled pod runs that template and is ready, the operator deletes the
// DaemonSet and the ConfigMap and drops the finalizer `berth.dev/node-access` that kept a deleted
// Registry around meanwhile. A node that never cleans up (down, unreachable) holds a deleted
// Registry for at most `cleanupDeadlineMs`; then berth gives up with a Warning Event.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import {
  nodeAccessConfig,
  nodeAccessConfigMap,
  nodeAccessFinalizer,
  nodeAgentDaemonSet,
  nodeAgentModeOf,
  nodeAgentNames,
  nodesReadyCondition,
  rolledOut,
  type NodesCondition,
} from '../registry/desired/node-agent.ts';
import type { RegistryRef } from '../registry/names.ts';
import type { ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { isNotFound } from '../runtime/errors.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { objectPath, type ResourceType } from '../runtime/kube/resource.ts';
import { applyOwned } from '../runtime/writes.ts';

export const daemonSets = {
  group: 'apps',
  version: 'v1',
  plural: 'daemonsets',
  kind: 'DaemonSet',
} as const satisfies ResourceType;
const configMaps = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' } as const;
const registries = {
  group: 'berth.dev',
  version: 'v1alpha1',
  plural: 'registries',
  kind: 'Registry',
} as const;

export const cleanupDeadlineMs = 10 * 60_000;

export interface NodeAccessCaches {
  daemonSets: Cache<KubeObject>;
  configMaps: Cache<KubeObject>;
}

export interface NodeAccessInput {
  registry: Registry;
  ref: RegistryRef;
  operatorImage: string;
  /** The Service's first cluster IP (none yet: the agents wait). */
  clusterIP?: string;
  tls: boolean;
  caPem?: string;
}

export interface NodeAccessOutcome {
  /** NodesReady, or undefined when node access is off and cleaned up (the condition goes). */
  condition?: NodesCondition;
  requeueAfterMs?: number;
}

type StepDeps = Pick<Deps, 'client' | 'clock' | 'events'>;

export class NodeAccessStep {
  private readonly deps: StepDeps;
  private readonly caches: NodeAccessCaches;

  constructor(deps: StepDeps, caches: NodeAccessCaches) {
    this.deps = deps;
    this.caches = caches;
  }

  /** A live Registry: apply (enabled) or wind down (disabled). */
  async reconcile(input: NodeAccessInput): Promise<NodeAccessOutcome> {
    const { registry, ref } = input;
    if (!registry.spec.nodeAccess?.enabled) return this.windDown(registry, ref, input.operatorImage, false);
    await this.setFinalizer(registry, true);
    if (!input.clusterIP) {
      return {
        condition: {
          type: 'NodesReady',
          status: 'False',
          reason: 'NoClusterIP',
          message: `Service ${ref.name} has no cluster IP yet for the nodes to connect to`,
        },
      };
    }
    const config = nodeAccessConfig(ref, registry, input.clusterIP, input.tls);
    await this.apply(configMaps, nodeAccessConfigMap(ref, config, input.caPem), this.caches.configMaps);
    const ds = (await this.apply(
      daemonSets,
      nodeAgentDaemonSet(ref, registry, input.operatorImage, 'sync'),
      this.caches.daemonSets,
    )) as k8s.V1DaemonSet;
    return { condition: nodesReadyCondition(ds, 'sync') };
  }

  /** A Registry being deleted: clean the nodes, then let it go (a reconcile result). */
  async finalize(
    registry: Registry,
    ref: RegistryRef,
    operatorImage: string,
  ): Promise<ReconcileResult | undefined> {
    if (!registry.metadata?.finalizers?.includes(nodeAccessFinalizer)) return undefined;
    const out = await this.windDown(registry, ref, operatorImage, true);
    return out.requeueAfterMs ? { requeueAfterMs: out.requeueAfterMs } : undefined;
  }

  /**
   * Adds or removes the finalizer (with a resourceVersion precondition), and keeps `registry`, the
   * reconciler's copy, current, so its status write that follows does not conflict.
   */
  private async setFinalizer(registry: Registry, hold: boolean): Promise<void> {
    const finalizers = registry.metadata?.finalizers ?? [];
    if (finalizers.includes(nodeAccessFinalizer) === hold) return;
    const next = hold
      ? [...finalizers, nodeAccessFinalizer]
      : finalizers.filter((f) => f !== nodeAccessFinalizer);
    const patched = await this.deps.client.mergePatch<KubeObject>(
      objectPath(registries, registry.metadata?.name ?? '', registry.metadata?.namespace),
      { metadata: { resourceVersion: registry.metadata?.resourceVersion, finalizers: next } },
    );
    registry.metadata = {
      ...registry.metadata,
      resourceVersion: patched.metadata?.resourceVersion,
      finalizers: patched.metadata?.finalizers ?? [],
    };
  }

  /** The Registry is gone (its finalizer was removed by hand): delete what it left. */
  orphaned(ref: RegistryRef): Promise<void> {
    return this.deleteAgentObjects(ref);
  }

  private async deleteAgentObjects(ref: RegistryRef): Promise<void> {
    await this.deleteIfCached(
      daemonSets,
      this.caches.daemonSets,
      nodeAgentNames.daemonSet(ref),
      ref.namespace,
    );
    await this.deleteIfCached(
      configMaps,
      this.caches.configMaps,
      nodeAgentNames.configMap(ref),
      ref.namespace,
    );
  }

  private async windDown(
    registry: Registry,
    ref: RegistryRef,
    operatorImage: string,
    deleting: boolean,
  ): Promise<NodeAccessOutcome> {
    const ds = this.caches.daemonSets.get(nodeAgentNames.daemonSet(ref), ref.namespace) as
      k8s.V1DaemonSet | undefined;
    if (ds) {
      const cleaning = nodeAgentModeOf(ds) === 'cleanup';
      const done = cleaning && rolledOut(ds);
      const overdue = deleting && this.deletionAge(registry) > cleanupDeadlineMs;
      if (!done && !overdue) {
        const applied = cleaning
          ? ds
          : ((await this.apply(
              daemonSets,
              nodeAgentDaemonSet(ref, registry, operatorImage, 'cleanup'),
              this.caches.daemonSets,
            )) as k8s.V1DaemonSet);
        return {
          condition: nodesReadyCondition(applied, 'cleanup'),
          requeueAfterMs: deleting
            ? Math.max(1000, cleanupDeadlineMs - this.deletionAge(registry))
            : undefined,
        };
      }
      if (!done)
        this.deps.events.event(
          registry as KubeObject,
          'Warning',
          'NodeCleanupIncomplete',
          'Delete',
          `not every node agent reported its cleanup within ${cleanupDeadlineMs / 60_000} minutes; files of berth may remain in certs.d on those nodes (see docs/node-access.md)`,
        );
    }
    await this.deleteAgentObjects(ref);
    await this.setFinalizer(registry, false);
    return {};
  }

  private deletionAge(registry: Registry): number {
    const ts = registry.metadata?.deletionTimestamp;
    if (!ts) return 0;
    return this.deps.clock.now() - new Date(ts as unknown as string).getTime();
  }

  private async apply(type: ResourceType, desired: object, cache: Cache<KubeObject>): Promise<KubeObject> {
    const obj = desired as KubeObject;
    const current = cache.get(obj.metadata?.name ?? '', obj.metadata?.namespace);
    return (await applyOwned(this.deps.client, type, obj, current)).object;
  }

  private async deleteIfCached(
    type: ResourceType,
    cache: Cache<KubeObject>,
    name: string,
    namespace: string,
  ): Promise<void> {
    if (!cache.get(name, namespace)) return;
    try {
      await this.deps.client.delete(objectPath(type, name, namespace));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
