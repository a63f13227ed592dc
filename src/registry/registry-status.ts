// Pure: the Registry's next status from what the reconcile observed. Conditions keep their
// lastTransitionTime unless they flip (src/runtime/conditions.ts); the pull-secret controller's
// PullSecretsReady is read back (an overdue rotation makes the Registry Degraded).
import type { Registry } from '../api/index.ts';
import { names, type RegistryRef } from '../model/names.ts';
import { endpoint } from '../model/registry.ts';
import { registryConditions, type Observed } from '../model/status.ts';
import { readConditions, setCondition, type Condition } from '../runtime/conditions.ts';

export function nextRegistryStatus(
  registry: Registry,
  ref: RegistryRef,
  observed: Observed,
  hasCA: boolean,
  now: number,
): Record<string, unknown> {
  const generation = registry.metadata?.generation;
  let conditions: Condition[] = readConditions(registry.status);
  const pullSecrets = conditions.find((c) => c.type === 'PullSecretsReady');
  for (const c of registryConditions({ ...observed, pullSecrets }))
    conditions = setCondition(conditions, c, generation, now);
  if (!observed.nodes) conditions = conditions.filter((c) => c.type !== 'NodesReady'); // node access off
  const previous = (registry.status ?? {}) as Record<string, unknown>;
  const status: Record<string, unknown> = {
    ...previous,
    observedGeneration: generation,
    conditions,
    endpoint: endpoint(ref, registry),
    adminSecret: names.adminSecret(ref),
  };
  if (hasCA) status.caConfigMap = names.caConfigMap(ref);
  else delete status.caConfigMap;
  return status;
}
