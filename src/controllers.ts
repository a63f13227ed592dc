// The operator's controllers. Each controller module exports a factory that takes the Deps and
// the Manager, asks the manager for the informers it needs and adds its ControllerDefinition;
// add it to the list below. See docs/runtime.md.
import type { Deps } from './runtime/deps.ts';
import type { Manager } from './runtime/manager.ts';

export type ControllerFactory = (deps: Deps, manager: Manager) => void;

export const controllers: ControllerFactory[] = [
  // registryController,       (src/registry/, issue: Registry)
  // pullSecretController,     (pull-secret fan-out)
  // retentionController,      (RetentionPolicy)
];

export function registerControllers(deps: Deps, manager: Manager): void {
  for (const factory of controllers) factory(deps, manager);
}
