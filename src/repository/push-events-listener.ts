// Wiring of the push-event listener: the shared informers it reads, the leader check, and the
// route the operator serves on --events-bind-address. Nothing listens when the address is "0".
import type { OperatorConfig } from '../config/config.ts';
import { resources } from '../model/resources.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Manager } from '../runtime/manager.ts';
import { managedBySelector } from '../runtime/objects.ts';
import type { HttpRoute } from '../runtime/server.ts';
import { pushEventsRouter } from './push-events-handler.ts';

export function pushEventsListener(deps: Deps, manager: Manager, config: OperatorConfig): HttpRoute[] {
  if (config.eventsBindAddress === '0' || config.eventsBindAddress === '') return [];
  // the same informers the Registry and Repository controllers use (shared by the manager)
  const repositories = manager.informer(resources.repositories);
  const secrets = manager.informer(resources.secrets, { labelSelector: managedBySelector });
  const router = pushEventsRouter(
    deps,
    { repositories, secrets },
    {
      isLeader: () => manager.isLeader,
      synced: () => repositories.hasSynced() && secrets.hasSynced(),
    },
  );
  return [{ name: 'registry-events', address: config.eventsBindAddress, router }];
}
