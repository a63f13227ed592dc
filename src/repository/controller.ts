// The Repository controller: keyed by Repository; a change of any Repository of the same Registry
// (a claim released) or of the Registry itself requeues the Repositories that refer to it.
import { resources } from '../model/resources.ts';
import type { Deps } from '../runtime/deps.ts';
import { watchOf } from '../runtime/controller.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import { labels } from '../model/credential-secret.ts';
import { registryKeyOf, repositoryKey } from '../model/claims.ts';
import { repositoryStatusOwner } from '../model/status-owners.ts';
import { RepositoryReconciler } from './reconciler.ts';
import { registryTagReader } from './tags.ts';

export function repositoryController(deps: Deps, manager: Manager): void {
  const caches = {
    repositories: manager.informer(resources.repositories),
    registries: manager.informer(resources.registries),
    secrets: manager.informer(resources.secrets, { labelSelector: managedBySelector }),
  };
  const reconciler = new RepositoryReconciler(deps, caches, registryTagReader(deps.client));
  const referring = (registryKey: string) =>
    caches.repositories
      .list()
      .filter((r) => registryKeyOf(r) === registryKey)
      .map(repositoryKey);
  manager.add({
    name: 'repository',
    for: caches.repositories,
    watches: [
      // a claim released or taken changes who holds a path
      watchOf(caches.repositories, (obj) => referring(registryKeyOf(obj))),
      watchOf(caches.registries, (obj) => referring(`${obj.metadata?.namespace}/${obj.metadata?.name}`)),
      {
        informer: caches.secrets,
        map: (obj) => {
          // A push Secret is owned by its Repository; the label may hold a shortened name.
          const owner = obj.metadata?.ownerReferences?.find(
            (o) => o.kind === 'Repository' && o.apiVersion.startsWith('berth.dev/'),
          )?.name;
          const repo = owner ?? obj.metadata?.labels?.[labels.repository];
          return repo ? [`${obj.metadata?.namespace}/${repo}`] : [];
        },
      },
    ],
    // refusals and a foreign push Secret are TerminalErrors: the runtime writes them as Ready=False
    reportTo: { type: resources.repositories, owner: repositoryStatusOwner },
    reconcile: (request, ctx) => reconciler.reconcile(request, ctx),
  });
}
