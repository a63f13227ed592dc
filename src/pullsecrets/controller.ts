// The pull-secret controller: keyed by Registry, it watches namespaces (selection by label),
// ServiceAccounts (one created later gets the entry at once) and berth's pull secrets.
import type { OperatorConfig } from '../config/config.ts';
import { resources } from '../registry/resources.ts';
import type { Deps } from '../runtime/deps.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import { labels } from './credential-secret.ts';
import { PullSecretReconciler } from './reconciler.ts';

export function pullSecretController(deps: Deps, manager: Manager, config: OperatorConfig): void {
  const caches = {
    registries: manager.informer(resources.registries),
    namespaces: manager.informer(resources.namespaces),
    serviceAccounts: manager.informer(resources.serviceAccounts),
    secrets: manager.informer(resources.secrets, { labelSelector: managedBySelector }),
  };
  const reconciler = new PullSecretReconciler(deps, caches, {
    propagationMs: config.credentialPropagationMs,
  });
  const withPullSecrets = () =>
    caches.registries
      .list()
      .filter(
        (r) =>
          (r.spec as { pullSecrets?: unknown } | undefined)?.pullSecrets || r.metadata?.finalizers?.length,
      )
      .map((r) => `${r.metadata?.namespace}/${r.metadata?.name}`);
  const bySecret = (obj: KubeObject) => {
    const l = obj.metadata?.labels ?? {};
    return l[labels.credential] === 'pull' && l[labels.registry] && l[labels.registryNamespace]
      ? [`${l[labels.registryNamespace]}/${l[labels.registry]}`]
      : withPullSecrets(); // a foreign Secret of the same name may have come or gone
  };
  manager.add({
    name: 'pullsecrets',
    for: caches.registries,
    watches: [
      { informer: caches.namespaces, map: withPullSecrets },
      { informer: caches.serviceAccounts, map: withPullSecrets },
      { informer: caches.secrets, map: bySecret },
    ],
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
