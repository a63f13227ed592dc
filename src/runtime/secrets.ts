// The one Secret reader of the controllers: a Secret from berth's cache when it is there, else read
// from the API server. berth caches only the Secrets it manages (label-selected); a user's Secret
// (TLS, S3 credentials) or a foreign Secret that holds the name berth wants is read directly.
import type * as k8s from '@kubernetes/client-node';
import type { KubeClient } from './kube/client.ts';
import { core, objectPath } from './kube/resource.ts';

export interface SecretCache {
  get(name: string, namespace?: string): k8s.V1Secret | undefined;
}

/** The Secret `namespace/name`: cached if `cache` holds it, else live; undefined when it does not exist. */
export async function findSecret(
  client: KubeClient,
  namespace: string,
  name: string,
  cache?: SecretCache,
): Promise<k8s.V1Secret | undefined> {
  return (
    cache?.get(name, namespace) ??
    (await client.find<k8s.V1Secret>(objectPath(core.secrets, name, namespace)))
  );
}
