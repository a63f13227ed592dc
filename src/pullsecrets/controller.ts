// The pull-secret controller: keyed by Registry (its status sums up the fan-out), it watches
// namespaces (selection by label), ServiceAccounts (one created later gets the entry at once) and
// berth's pull secrets. An event marks only its namespace for the Registries it concerns
// (src/pullsecrets/work.ts), so the reconcile it causes looks at that namespace alone: one
// ServiceAccount created costs reads from the caches of one namespace and at most one write.
import { Counter } from 'prom-client';
import type { OperatorConfig } from '../config/config.ts';
import { resources } from '../model/resources.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Registry } from '../api/index.ts';
import type { AnyInformer, Cache, InformerEvent } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { keyOf } from '../runtime/kube/resource.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import { labels } from '../model/credential-secret.ts';
import { PullSecretReconciler, type PullSecretCaches } from './reconciler.ts';
import { FanoutWork } from './work.ts';

/** The Registry a pull Secret of berth's belongs to ("namespace/name"), if it is one. */
function registryOfSecret(obj: KubeObject): string | undefined {
  const l = obj.metadata?.labels ?? {};
  return l[labels.credential] === 'pull' && l[labels.registry] && l[labels.registryNamespace]
    ? `${l[labels.registryNamespace]}/${l[labels.registry]}`
    : undefined;
}

/**
 * Marks the namespace of every change for the Registries it concerns. Marking runs whether or not
 * this replica leads, so no change is missed between terms. A resync of a secondary informer marks
 * nothing: the Registry's own resync is a full pass.
 */
function markChanges(caches: Record<keyof PullSecretCaches, AnyInformer>, work: FanoutWork): void {
  const mark =
    (
      namespaceOf: (obj: KubeObject) => string | undefined,
      registryOf?: (obj: KubeObject) => string | undefined,
    ) =>
    (event: InformerEvent, obj: KubeObject) => {
      if (event === 'resync') return;
      const ns = namespaceOf(obj);
      if (ns) work.markNamespace(ns, registryOf?.(obj));
    };
  caches.namespaces.addHandler(mark((o) => o.metadata?.name));
  caches.serviceAccounts.addHandler(mark((o) => o.metadata?.namespace));
  caches.secrets.addHandler(mark((o) => o.metadata?.namespace, registryOfSecret));
  caches.registries.addHandler((event, obj) => {
    if (event === 'resync') work.markAll(keyOf(obj));
  });
}

/** The keys of the Registries that ask for pull secrets or still hold a finalizer. */
function withPullSecrets(registries: Cache<Registry>): string[] {
  return registries
    .list()
    .filter((r) => r.spec?.pullSecrets || r.metadata?.finalizers?.length)
    .map((r) => `${r.metadata?.namespace}/${r.metadata?.name}`);
}

export function pullSecretController(deps: Deps, manager: Manager, config: OperatorConfig): void {
  const caches = {
    registries: manager.informer(resources.registries),
    namespaces: manager.informer(resources.namespaces),
    serviceAccounts: manager.informer(resources.serviceAccounts),
    secrets: manager.informer(resources.secrets, { labelSelector: managedBySelector }),
  };
  const work = new FanoutWork();
  const looked = new Counter({
    name: 'berth_pullsecret_namespaces_reconciled_total',
    help: 'Namespaces the pull-secret controller looked at (one event should cost one).',
    registers: [deps.registry],
  });
  const reconciler = new PullSecretReconciler(deps, caches, {
    propagationMs: config.credentialPropagationMs,
    work,
    onNamespace: () => looked.inc(),
  });
  markChanges(caches, work);

  const all = () => withPullSecrets(caches.registries);
  const bySecret = (obj: KubeObject) => {
    const registry = registryOfSecret(obj);
    return registry ? [registry] : all(); // another berth Secret of the same name may have come or gone
  };
  manager.add({
    name: 'pullsecrets',
    for: caches.registries,
    watches: [
      { informer: caches.namespaces, map: all },
      { informer: caches.serviceAccounts, map: all },
      { informer: caches.secrets, map: bySecret },
    ],
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
