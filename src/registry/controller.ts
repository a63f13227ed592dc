// The Registry controller: its informers, the mapping from children back to their Registry, and
// the reconciler.
import { watchOf } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import { RegistryReconciler, type RegistrySettings } from './reconciler.ts';
import { resources } from '../model/resources.ts';
import { daemonSets } from './node-access-step.ts';
import { registryKeyOf } from '../model/claims.ts';
import { hostClaimants } from '../model/hosts.ts';
import { mapToRegistry } from '../model/registry-keys.ts';

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
    daemonSets: manager.informer(daemonSets, owned), // node agents
    repositories: manager.informer(resources.repositories),
    namespaces: manager.informer(resources.namespaces),
  };
  const reconciler = new RegistryReconciler(deps, caches, settings);
  const { registries, repositories, namespaces, ...children } = caches;
  const allRegistries = () => registries.list().map((r) => `${r.metadata?.namespace}/${r.metadata?.name}`);
  manager.add({
    name: 'registry',
    for: registries,
    watches: [
      ...Object.values(children).map((informer) => ({ informer, map: mapToRegistry })),
      // the credential store grants pulls by Repository and by namespace label
      watchOf(repositories, (obj) => [registryKeyOf(obj)]),
      { informer: namespaces, map: allRegistries },
      // Ingress host claims (src/model/hosts.ts): a change of one Registry can take a host from,
      // or give it back to, another; those are the ones with that host and the ones in HostConflict.
      watchOf(registries, (obj) => hostClaimants(registries.list(), obj)),
    ],
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
