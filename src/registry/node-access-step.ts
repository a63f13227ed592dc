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
  certsDirOf,
  mountedCertsDir,
  nodeAccessConfig,
  nodeAccessConfigMap,
  nodeAccessFinalizer,
  nodeAgentDaemonSet,
  nodeAgentModeOf,
  nodeAgentNames,
  nodesReadyCondition,
  rolledOut,
  type NodesCondition,
} from './desired/node-agent.ts';
import { checkCertsDir, defaultAllowedDirs } from '../model/node-dirs.ts';
import type { RegistryRef } from '../model/names.ts';
import type { ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { isNotFound } from '../runtime/errors.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { objectPath, resourceType, type ResourceType } from '../runtime/kube/resource.ts';
import { applyOwned } from '../runtime/writes.ts';

export const daemonSets = resourceType<k8s.V1DaemonSet>({
  group: 'apps',
  version: 'v1',
  plural: 'daemonsets',
  kind: 'DaemonSet',
});
const configMaps = resourceType<k8s.V1ConfigMap>({
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
});
const registries = resourceType<Registry>({
  group: 'berth.dev',
  version: 'v1alpha1',
  plural: 'registries',
  kind: 'Registry',
});

export const cleanupDeadlineMs = 10 * 60_000;

export interface NodeAccessCaches {
  daemonSets: Cache<k8s.V1DaemonSet>;
  configMaps: Cache<k8s.V1ConfigMap>;
}

export interface NodeAccessInput {
  registry: Registry;
  ref: RegistryRef;
  operatorImage: string;
  /** The Service's first cluster IP (none yet: the agents wait). */
  clusterIP?: string;
  tls: boolean;
  caPem?: string;
  /**
   * The Ingress host decision (src/model/hosts.ts): the agents write the Ingress host only when
   * `nodes` is true; otherwise `reason`/`message` say why in NodesReady. Absent: no Ingress host.
   */
  ingressHost?: { nodes: true } | { nodes: false; reason: string; message: string };
}

export interface NodeAccessPolicy {
  /** Host folders the agents may mount (`--node-agent-allowed-dirs`). */
  allowedDirs: readonly string[];
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
  private readonly policy: NodeAccessPolicy;

  constructor(
    deps: StepDeps,
    caches: NodeAccessCaches,
    policy: NodeAccessPolicy = { allowedDirs: defaultAllowedDirs },
  ) {
    this.deps = deps;
    this.caches = caches;
    this.policy = policy;
  }

  /** A live Registry: apply (enabled) or wind down (disabled, or a certsDir the install forbids). */
  async reconcile(input: NodeAccessInput): Promise<NodeAccessOutcome> {
    const { registry, ref } = input;
    if (!registry.spec.nodeAccess?.enabled) return this.windDown(registry, ref, input.operatorImage, false);
    const dir = checkCertsDir(certsDirOf(registry), this.policy.allowedDirs);
    if (!dir.ok) {
      // No agent mounts a folder the install does not allow: none is created, and one that runs
      // (certsDir changed) cleans up the folder it already mounts, then goes.
      this.deps.events.event(registry, 'Warning', dir.reason, 'Reconcile', dir.message);
      const out = await this.windDown(registry, ref, input.operatorImage, false);
      return {
        ...out,
        condition: { type: 'NodesReady', status: 'False', reason: dir.reason, message: dir.message },
      };
    }
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
    const host = input.ingressHost;
    const config = nodeAccessConfig(ref, registry, input.clusterIP, input.tls, host?.nodes !== false);
    await this.apply(configMaps, nodeAccessConfigMap(ref, config, input.caPem), this.caches.configMaps);
    const ds = await this.apply(
      daemonSets,
      nodeAgentDaemonSet(ref, dir.dir, input.operatorImage, 'sync'),
      this.caches.daemonSets,
    );
    const condition = nodesReadyCondition(ds, 'sync');
    if (host && !host.nodes) {
      // The agents serve the Service names; what the spec asks beyond them is refused, visibly.
      this.deps.events.event(registry, 'Warning', host.reason, 'Reconcile', host.message);
      return {
        condition: {
          type: 'NodesReady',
          status: 'False',
          reason: host.reason,
          message: `${host.message} (${condition.message})`,
        },
      };
    }
    return { condition };
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
    const ds = this.caches.daemonSets.get(nodeAgentNames.daemonSet(ref), ref.namespace);
    // Cleanup runs on the folder the agents already mount, and only when the install allows it:
    // a DaemonSet on any other folder (made before the allow-list) is deleted without a cleanup.
    const mounted = mountedCertsDir(ds);
    const cleanable = mounted !== undefined && checkCertsDir(mounted, this.policy.allowedDirs).ok;
    if (ds && !cleanable)
      this.deps.events.event(
        registry,
        'Warning',
        'NodeCleanupSkipped',
        'Delete',
        `the node agent DaemonSet mounts ${mounted ?? 'no certs.d folder'}, which this installation does not allow: deleted without a cleanup; files of berth may remain there on the nodes (see docs/node-access.md)`,
      );
    if (ds && cleanable) {
      const cleaning = nodeAgentModeOf(ds) === 'cleanup';
      const done = cleaning && rolledOut(ds);
      const overdue = deleting && this.deletionAge(registry) > cleanupDeadlineMs;
      if (!done && !overdue) {
        const applied = cleaning
          ? ds
          : await this.apply(
              daemonSets,
              nodeAgentDaemonSet(ref, mounted, operatorImage, 'cleanup'),
              this.caches.daemonSets,
            );
        return {
          condition: nodesReadyCondition(applied, 'cleanup'),
          requeueAfterMs: deleting
            ? Math.max(1000, cleanupDeadlineMs - this.deletionAge(registry))
            : undefined,
        };
      }
      if (!done)
        this.deps.events.event(
          registry,
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
    return this.deps.clock.now() - new Date(ts).getTime(); // a string in the cache, though typed Date
  }

  private async apply<T extends KubeObject>(type: ResourceType<T>, desired: T, cache: Cache<T>): Promise<T> {
    const current = cache.get(desired.metadata?.name ?? '', desired.metadata?.namespace);
    return (await applyOwned(this.deps.client, type, desired, current)).object;
  }

  private async deleteIfCached<T extends KubeObject>(
    type: ResourceType<T>,
    cache: Cache<T>,
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
