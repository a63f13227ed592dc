// The operator's controllers. Each controller module exports a factory that takes the Deps, the
// Manager and the operator's configuration, asks the manager for the informers it needs and adds
// its ControllerDefinition; add it to the list below. See docs/runtime.md.
import type { OperatorConfig } from './config/config.ts';
import { garbageCollectionController } from './gc/controller.ts';
import { pullSecretController } from './pullsecrets/controller.ts';
import { registryController } from './registry/controller.ts';
import { repositoryController } from './repository/controller.ts';
import { pushEventsListener } from './repository/push-events-listener.ts';
import { retentionController } from './retention/controller.ts';
import type { Deps } from './runtime/deps.ts';
import type { Manager } from './runtime/manager.ts';
import type { HttpRoute } from './runtime/server.ts';

/** A controller factory; it may return HTTP routes it serves (the registry push-event listener). */
export type ControllerFactory = (deps: Deps, manager: Manager, config: OperatorConfig) => void | HttpRoute[];

export const controllers: ControllerFactory[] = [
  (deps, manager, config) =>
    registryController(deps, manager, {
      operatorImage: config.image,
      pollIntervalMs: 30_000,
      eventsUrl: config.registryEventsUrl || undefined,
      nodeAgentAllowedDirs: config.nodeAgentAllowedDirs,
      nodeAgentAllowedHosts: config.nodeAgentAllowedHosts,
      tokenReviewClusterRole: config.tokenReviewClusterRole,
    }),
  pullSecretController,
  repositoryController,
  pushEventsListener,
  garbageCollectionController,
  retentionController,
];

export function registerControllers(deps: Deps, manager: Manager, config: OperatorConfig): HttpRoute[] {
  return controllers.flatMap((factory) => factory(deps, manager, config) ?? []);
}
