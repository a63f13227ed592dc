// Reads a Repository's tag count from its registry, with the Registry's admin credential, trusting
// the Registry's CA. The operator reaches the registry through its Service (status.endpoint).
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { names } from '../model/names.ts';
import { resources } from '../model/resources.ts';
import { RegistryClient, type RegistryAccess } from '../distribution/client.ts';
import type { KubeClient } from '../runtime/kube/client.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { parseDockerConfig } from '../util/dockerconfig.ts';
import { secretText } from '../util/secrets.ts';

/** The number of tags of `path`, or undefined when the registry cannot be asked now. */
export type TagReader = (registry: Registry, path: string) => Promise<number | undefined>;

/** Counts the tags of `path` on a registry (following pagination). */
export async function countTags(access: RegistryAccess, path: string): Promise<number> {
  const client = new RegistryClient({ ...access, attempts: 2 });
  return (await client.tags(path)).length;
}

/** The production reader: the registry's Service, its CA ConfigMap and its admin Secret. */
export function registryTagReader(client: KubeClient): TagReader {
  return async (registry, path) => {
    const ref = { name: registry.metadata?.name ?? '', namespace: registry.metadata?.namespace ?? '' };
    const endpoint = registry.status?.endpoint;
    if (!endpoint) return undefined;
    try {
      const admin = await client.get<k8s.V1Secret>(
        objectPath(resources.secrets, names.adminSecret(ref), ref.namespace),
      );
      const credential = parseDockerConfig(secretText(admin, '.dockerconfigjson'));
      if (!credential) return undefined;
      let caPem: string | undefined;
      if (registry.status?.caConfigMap) {
        const cm = await client.get<k8s.V1ConfigMap>(
          objectPath(resources.configMaps, registry.status.caConfigMap, ref.namespace),
        );
        caPem = cm.data?.['ca.crt'];
      }
      const scheme = registry.spec.tls?.mode === 'Disabled' ? 'http' : 'https';
      return await countTags({ url: `${scheme}://${endpoint}`, caPem, credential }, path);
    } catch {
      return undefined; // unreachable now (or not yet serving): the count is refreshed later
    }
  };
}
