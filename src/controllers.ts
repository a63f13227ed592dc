// The operator's controllers. Each controller module exports a factory that takes the Deps, the
// Manager and the operator's configuration, asks the manager for the informers it needs and adds
// its ControllerDefinition; add it to the list below. See docs/runtime.md.
import type { OperatorConfig } from './config/config.ts';
import { garbageCollectionController } from './gc/controller.ts';
import { pullSecretController } from './pullsecrets/controller.ts';
import { registryController } from './registry/controller.ts';
import { repositoryController } from './repository/controller.ts';
import { retentionController } from './retention/controller.ts';
import type { Deps } from './runtime/deps.ts';
import type { Manager } from './runtime/manager.ts';

export type ControllerFactory = (deps: Deps, manager: Manager, config: OperatorConfig) => void;

export const controllers: ControllerFactory[] = [
  (deps, manager, config) =>
    registryController(deps, manager, { operatorImage: config.image, pollIntervalMs: 30_000 }),
  pullSecretController,
  repositoryController,
  garbageCollectionController,
  retentionController,
];

export function registerControllers(deps: Deps, manager: Manager, config: OperatorConfig): void {
  for (const factory of controllers) factory(deps, manager, config);
}
