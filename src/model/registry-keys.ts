// How an object a Registry owns (or that names it) maps to that Registry's reconcile key.
import type { KubeObject } from '../runtime/kube/client.ts';
/**
 * Children carry the label `berth.dev/registry: <name>`; those outside the Registry's namespace
 * (pull and push secrets) also `berth.dev/registry-namespace`.
 */
export function mapToRegistry(obj: KubeObject): string[] {
  const labels = obj.metadata?.labels ?? {};
  const name = labels['berth.dev/registry'];
  const ns = labels['berth.dev/registry-namespace'] ?? obj.metadata?.namespace;
  return name && ns ? [`${ns}/${name}`] : [];
}
