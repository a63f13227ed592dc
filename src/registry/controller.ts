// The Registry controller: its informers, the mapping from children back to their Registry, and
// the reconciler.
import type { Deps } from '../runtime/deps.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import { RegistryReconciler, type RegistrySettings } from './reconciler.ts';
import { resources } from './resources.ts';

/** Children carry the label `berth.dev/registry: <name>` in their Registry's namespace. */
export function mapToRegistry(obj: KubeObject): string[] {
  const name = obj.metadata?.labels?.['berth.dev/registry'];
  const ns = obj.metadata?.namespace;
  return name && ns ? [`${ns}/${name}`] : [];
}

export function registryController(deps: Deps, manager: Manager, settings: RegistrySettings): void {
  const owned = { labelSelector: managedBySelector };
  const caches = {
    registries: manager.informer(resources.registries),
    secrets: manager.informer(resources.secrets, owned),
    configMaps: manager.informer(resources.configMaps, owned),
    services: manager.informer(resources.services, owned),
    pvcs: manager.informer(resources.pvcs, owned),
    deployments: manager.informer(resources.deployments, owned),
    networkPolicies: manager.informer(resources.networkPolicies, owned),
    ingresses: manager.informer(resources.ingresses, owned),
    pdbs: manager.informer(resources.pdbs, owned),
  };
  const reconciler = new RegistryReconciler(deps, caches, settings);
  const { registries, ...children } = caches;
  manager.add({
    name: 'registry',
    for: registries,
    watches: Object.values(children).map((informer) => ({ informer, map: mapToRegistry })),
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
