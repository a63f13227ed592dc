// Pure: what the registry's configuration (src/registry/config.ts) is rendered from, for one
// Registry: its storage, its token realm, the push notifications and the maintenance mode.
import type { Registry } from '../api/index.ts';
import { ports, registryEventsUrl, serviceHostNames, type RegistryRef } from '../model/names.ts';
import { registryPaths } from '../model/workload.ts';
import type { RegistryConfigInput, RegistryStorage } from './config.ts';
import { tokenIdentity } from './desired/token-service.ts';

export interface ConfigFacts {
  registry: Registry;
  ref: RegistryRef;
  /** Serve TLS (false only for tls.mode Disabled). */
  tls: boolean;
  /** Garbage collection in progress: pushes and deletes refused (src/model/maintenance.ts). */
  readOnly: boolean;
  /** The operator's push-event listener (`--registry-events-url`), if any. */
  eventsUrl?: string;
  /** The registry's HTTP secret and the bearer token of its notifications (src/registry/material.ts). */
  httpSecret: string;
  eventsToken: string;
}

export function registryConfigInput(f: ConfigFacts): RegistryConfigInput {
  const { ref, registry, tls } = f;
  return {
    storage: storageConfig(registry),
    ...(f.eventsUrl
      ? { notifications: { url: registryEventsUrl(f.eventsUrl, ref), token: f.eventsToken } }
      : {}),
    readOnly: f.readOnly,
    http: {
      addr: `:${ports.registryContainer}`,
      debugAddr: `:${ports.debugContainer}`,
      secret: f.httpSecret,
      ...(tls
        ? { tls: { certificate: `${registryPaths.tlsDir}/tls.crt`, key: `${registryPaths.tlsDir}/tls.key` } }
        : {}),
    },
    auth: {
      realm: tokenRealm(ref, registry, tls),
      ...tokenIdentity({ ref }),
      rootCertBundle: `${registryPaths.tokenDir}/token.crt`,
    },
  };
}

/** The token endpoint, on the registry's own host name: the Ingress host, or the Service. */
export function tokenRealm(ref: RegistryRef, registry: Registry, tls: boolean): string {
  const ingress = registry.spec.expose?.ingress?.host;
  if (ingress) return `https://${ingress}/token`;
  return `${tls ? 'https' : 'http'}://${serviceHostNames(ref)[0]}:${ports.tokenService}/token`;
}

export function storageConfig(registry: Registry): RegistryStorage {
  const s = registry.spec.storage;
  if (s.s3) {
    return {
      kind: 's3',
      bucket: s.s3.bucket,
      region: s.s3.region,
      ...(s.s3.regionEndpoint ? { regionEndpoint: s.s3.regionEndpoint } : {}),
      ...(s.s3.forcePathStyle !== undefined ? { forcePathStyle: s.s3.forcePathStyle } : {}),
      ...(s.s3.rootDirectory ? { rootDirectory: s.s3.rootDirectory } : {}),
    };
  }
  return { kind: s.emptyDir ? 'emptyDir' : 'filesystem', rootDirectory: registryPaths.storage };
}
