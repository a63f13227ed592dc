// The Registry controller: its informers, the mapping from children back to their Registry, and
// the reconciler.
import type * as k8s from '@kubernetes/client-node';
import { coalescedWatch, type CoalesceOptions } from '../runtime/coalesce.ts';
import { watchOf } from '../runtime/controller.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { splitKey } from '../runtime/kube/resource.ts';
import { names } from '../model/names.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import { RegistryReconciler, type RegistrySettings } from './reconciler.ts';
import { resources } from '../model/resources.ts';
import { daemonSets } from './node-access-step.ts';
import { registryKeyOf } from '../model/claims.ts';
import { hostClaimants } from '../model/hosts.ts';
import { mapToRegistry } from '../model/registry-keys.ts';
import { registryStatusOwner } from '../model/status-owners.ts';

/**
 * Pull and push Secrets (in other namespaces) and Namespaces matter to a Registry only through its
 * credential store, which is built from all of them: a fan-out to n namespaces sends n such events,
 * so they reach the Registry coalesced (src/runtime/coalesce.ts), at most one reconcile per
 * `maxWaitMs` while the burst lasts and `quietMs` after a lone event.
 */
export const credentialEventsCoalescing = { quietMs: 1000, maxWaitMs: 10_000 };

/**
 * The credential store's own Secrets (`<name>-credentials`, `-credentials-1` …): each store the
 * Registry writes during a fan-out changes several of them, and their echoes would start the next
 * rebuild at once; they go with the credentials (a store Secret changed by someone else is put
 * back within `maxWaitMs`).
 */
function isStoreSecret(obj: KubeObject, key: string): boolean {
  const { name } = splitKey(key);
  const store = names.credentialStore({ name, namespace: '' });
  const secret = obj.metadata?.name ?? '';
  return secret === store || (secret.startsWith(`${store}-`) && /^\d+$/.test(secret.slice(store.length + 1)));
}

const inOwnNamespace = (obj: KubeObject, key: string) => key.startsWith(`${obj.metadata?.namespace ?? ''}/`);

/** mapToRegistry for a child in the Registry's own namespace (its workload, config, certificates). */
export function ownNamespaceChild(obj: KubeObject): string[] {
  return mapToRegistry(obj).filter((key) => inOwnNamespace(obj, key) && !isStoreSecret(obj, key));
}

/** mapToRegistry for what the store is built from or written to: credentials elsewhere, the store's Secrets. */
export function credentialElsewhere(obj: KubeObject): string[] {
  return mapToRegistry(obj).filter((key) => !inOwnNamespace(obj, key) || isStoreSecret(obj, key));
}

/**
 * The store reads a namespace's labels only (Registry and Repository namespace selectors), and
 * its Secrets come and go as Secret events: a Namespace event matters when its labels changed.
 */
export function namespaceLabelsChanged(): (ns: k8s.V1Namespace) => boolean {
  const seen = new Map<string, Record<string, string>>();
  return (ns) => {
    const name = ns.metadata?.name ?? '';
    // a terminating namespace's Secrets go as Secret events
    if (ns.metadata?.deletionTimestamp) {
      seen.delete(name);
      return false;
    }
    const labels = ns.metadata?.labels ?? {};
    const before = seen.get(name);
    seen.set(name, labels);
    if (!before) return true;
    const keys = Object.keys(labels);
    return keys.length !== Object.keys(before).length || keys.some((k) => before[k] !== labels[k]);
  };
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
    daemonSets: manager.informer(daemonSets, owned), // node agents
    repositories: manager.informer(resources.repositories),
    namespaces: manager.informer(resources.namespaces),
  };
  const reconciler = new RegistryReconciler(deps, caches, settings);
  const { registries, repositories, namespaces, ...children } = caches;
  const allRegistries = () => registries.list().map((r) => `${r.metadata?.namespace}/${r.metadata?.name}`);
  const coalescing: CoalesceOptions = { clock: deps.clock, ...credentialEventsCoalescing };
  const labelsChanged = namespaceLabelsChanged();
  manager.add({
    name: 'registry',
    for: registries,
    watches: [
      ...Object.values(children).map((informer) => ({ informer, map: ownNamespaceChild })),
      // the credential store holds every pull and push credential, and grants pulls by
      // Repository and by namespace label
      coalescedWatch(children.secrets, credentialElsewhere, coalescing),
      watchOf(repositories, (obj) => [registryKeyOf(obj)]),
      coalescedWatch(
        namespaces,
        (ns: k8s.V1Namespace) => (labelsChanged(ns) ? allRegistries() : []),
        coalescing,
      ),
      // Ingress host claims (src/model/hosts.ts): a change of one Registry can take a host from,
      // or give it back to, another; those are the ones with that host and the ones in HostConflict.
      watchOf(registries, (obj) => hostClaimants(registries.list(), obj)),
    ],
    // what it cannot go on from (CredentialStoreTooLarge) is a TerminalError: the runtime writes
    // Ready=False with its reason; everything else the reconciler reports itself
    reportTo: { type: resources.registries, owner: registryStatusOwner },
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
