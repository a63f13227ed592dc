// The Distribution v3 configuration (config.yml) of a berth registry, rendered from a typed input
// by a pure function. Checked against Distribution v3.1.1's configuration parser and its token
// access controller (registry/auth/token/accesscontroller.go: realm, service, issuer and at least
// one of rootcertbundle/jwks; signingalgorithms optional).
import { stringify } from 'yaml';
import { blobMediaTypes } from '../model/media-types.ts';

export class RegistryConfigError extends Error {
  override name = 'RegistryConfigError';
}

export type RegistryStorage =
  /** A local folder: a PersistentVolumeClaim's mount, or an emptyDir. */
  | { kind: 'filesystem'; rootDirectory: string }
  | { kind: 'emptyDir'; rootDirectory: string }
  /**
   * S3 or an S3-compatible store. Credentials are never written here: the registry's AWS SDK
   * reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment (set from the Secret
   * named by `spec.storage.s3.secretRef`), or uses the pod's IAM role when they are absent.
   */
  | {
      kind: 's3';
      bucket: string;
      region: string;
      regionEndpoint?: string;
      forcePathStyle?: boolean;
      rootDirectory?: string;
      /**
       * Let clients fetch blobs straight from S3 with presigned URLs. Default false: in-cluster
       * clients and nodes often cannot reach the store's endpoint, so all data goes through the
       * registry.
       */
      redirect?: boolean;
    };

export const tokenSigningAlgorithms = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
] as const;
export type TokenSigningAlgorithm = (typeof tokenSigningAlgorithms)[number];

export interface RegistryTokenAuth {
  /** The token endpoint's URL, as clients must reach it (https://<registry host>/token). */
  realm: string;
  /** The audience the token service writes, and the registry checks. */
  service: string;
  /** The issuer the token service writes, and the registry checks. */
  issuer: string;
  /** Path of the PEM bundle with the token signing certificate(s) (a rotation may list two). */
  rootCertBundle: string;
  /** Accepted JWS algorithms; default ES256 only (berth's key), which rules out algorithm confusion. */
  signingAlgorithms?: TokenSigningAlgorithm[];
}

export interface RegistryConfigInput {
  storage: RegistryStorage;
  /** Allow manifest and blob deletes (retention needs them). Default true. */
  deleteEnabled?: boolean;
  /**
   * Read-only maintenance mode: pushes and deletes are refused. Garbage collection switches it on
   * while it runs; upload purging is then off too, so the GC job is the storage's only writer.
   */
  readOnly: boolean;
  /** Purging of abandoned uploads. Default enabled, age 168h, interval 24h. */
  uploadPurging?: { enabled: boolean; age?: string; interval?: string; dryRun?: boolean };
  /** In-memory blob descriptor cache. Default true. */
  blobDescriptorCache?: boolean;
  http: {
    /** Listen address, e.g. `:5000`. */
    addr: string;
    /** Signs upload state; must be shared by every replica. */
    secret: string;
    /** Certificate and key paths; absent serves plain HTTP (tls.mode Disabled). */
    tls?: { certificate: string; key: string };
    /** Debug listener (health, Prometheus metrics), e.g. `:5001`. */
    debugAddr: string;
    /** Externally visible base URL (`https://registry.example.com`), if not derived from requests. */
    host?: string;
  };
  auth: RegistryTokenAuth;
  health?: { interval?: string; threshold?: number };
  /**
   * Push notifications to berth's operator (Repository.status.lastPushTime): the full URL of this
   * Registry's event endpoint and the bearer token the operator checks. Only manifest pushes are
   * sent: pulls, mounts, deletes and blob media types are ignored by the registry itself.
   */
  notifications?: { url: string; token: string };
  log?: {
    level?: 'error' | 'warn' | 'info' | 'debug';
    formatter?: 'json' | 'text' | 'logstash';
    accessLog?: boolean;
  };
}

const goDuration = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

function requireText(value: string | undefined, what: string): string {
  if (value === undefined || value.trim() === '') throw new RegistryConfigError(`${what} must not be empty`);
  return value;
}

function absolute(value: string, what: string): string {
  requireText(value, what);
  if (!value.startsWith('/'))
    throw new RegistryConfigError(`${what} must be an absolute path, got "${value}"`);
  return value;
}

function duration(value: string, what: string): string {
  if (!goDuration.test(value))
    throw new RegistryConfigError(`${what} must be a Go duration such as 168h or 10s, got "${value}"`);
  return value;
}

function address(value: string, what: string): string {
  if (!/^[^\s]*:\d{1,5}$/.test(value))
    throw new RegistryConfigError(`${what} must be HOST:PORT or :PORT, got "${value}"`);
  return value;
}

function storageSection(input: RegistryConfigInput): Record<string, unknown> {
  const s = input.storage;
  const section: Record<string, unknown> = {};
  switch (s.kind) {
    case 'filesystem':
    case 'emptyDir':
      section.filesystem = { rootdirectory: absolute(s.rootDirectory, 'storage rootDirectory') };
      break;
    case 's3': {
      const s3: Record<string, unknown> = {
        bucket: requireText(s.bucket, 's3 bucket'),
        region: requireText(s.region, 's3 region'),
      };
      if (s.regionEndpoint) {
        if (!/^https?:\/\//.test(s.regionEndpoint))
          throw new RegistryConfigError(
            `s3 regionEndpoint must be an http(s) URL, got "${s.regionEndpoint}"`,
          );
        s3.regionendpoint = s.regionEndpoint;
      }
      if (s.forcePathStyle !== undefined) s3.forcepathstyle = s.forcePathStyle;
      if (s.rootDirectory) s3.rootdirectory = absolute(s.rootDirectory, 's3 rootDirectory');
      section.s3 = s3;
      section.redirect = { disable: !(s.redirect ?? false) };
      break;
    }
  }
  section.delete = { enabled: input.deleteEnabled ?? true };
  if (input.blobDescriptorCache ?? true) section.cache = { blobdescriptor: 'inmemory' };
  const purging = input.uploadPurging ?? { enabled: true };
  section.maintenance = {
    uploadpurging: {
      enabled: purging.enabled && !input.readOnly,
      age: duration(purging.age ?? '168h', 'uploadPurging age'),
      interval: duration(purging.interval ?? '24h', 'uploadPurging interval'),
      dryrun: purging.dryRun ?? false,
    },
    readonly: { enabled: input.readOnly },
  };
  return section;
}

function authSection(auth: RegistryTokenAuth): Record<string, unknown> {
  let realm: URL;
  try {
    realm = new URL(requireText(auth.realm, 'auth realm'));
  } catch (err) {
    if (err instanceof RegistryConfigError) throw err;
    throw new RegistryConfigError(`auth realm must be a URL, got "${auth.realm}"`);
  }
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:')
    throw new RegistryConfigError(`auth realm must be an http(s) URL, got "${auth.realm}"`);
  const algorithms = auth.signingAlgorithms ?? ['ES256'];
  if (algorithms.length === 0) throw new RegistryConfigError('auth signingAlgorithms must not be empty');
  for (const a of algorithms)
    if (!(tokenSigningAlgorithms as readonly string[]).includes(a))
      throw new RegistryConfigError(`auth signingAlgorithms: unsupported algorithm "${String(a)}"`);
  return {
    token: {
      realm: auth.realm,
      service: requireText(auth.service, 'auth service'),
      issuer: requireText(auth.issuer, 'auth issuer'),
      rootcertbundle: absolute(auth.rootCertBundle, 'auth rootCertBundle'),
      signingalgorithms: [...algorithms],
    },
  };
}

function notificationsSection(n: { url: string; token: string }): Record<string, unknown> {
  let url: URL;
  try {
    url = new URL(requireText(n.url, 'notifications url'));
  } catch (err) {
    if (err instanceof RegistryConfigError) throw err;
    throw new RegistryConfigError(`notifications url must be a URL, got "${n.url}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new RegistryConfigError(`notifications url must be an http(s) URL, got "${n.url}"`);
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(requireText(n.token, 'notifications token')))
    throw new RegistryConfigError('notifications token must be a bearer token (URL-safe characters)');
  return {
    events: { includereferences: false },
    endpoints: [
      {
        name: 'berth',
        url: n.url,
        headers: { Authorization: [`Bearer ${n.token}`] },
        timeout: '5s',
        // after 5 failures in a row the endpoint backs off 10s before retrying (a queue in memory)
        threshold: 5,
        backoff: '10s',
        ignoredmediatypes: [...blobMediaTypes],
        ignore: { mediatypes: [...blobMediaTypes], actions: ['pull', 'mount', 'delete'] },
      },
    ],
  };
}

/** The configuration document (before YAML), for callers that want to inspect it. */
export function registryConfigDocument(input: RegistryConfigInput): Record<string, unknown> {
  const http: Record<string, unknown> = {
    addr: address(input.http.addr, 'http addr'),
    secret: requireText(input.http.secret, 'http secret'),
    headers: { 'X-Content-Type-Options': ['nosniff'] },
    debug: {
      addr: address(input.http.debugAddr, 'http debugAddr'),
      prometheus: { enabled: true, path: '/metrics' },
    },
  };
  if (input.http.host) http.host = input.http.host;
  if (input.http.tls)
    http.tls = {
      certificate: absolute(input.http.tls.certificate, 'tls certificate'),
      key: absolute(input.http.tls.key, 'tls key'),
    };
  const log = input.log ?? {};
  const health = input.health ?? {};
  const document: Record<string, unknown> = {
    version: 0.1,
    log: {
      level: log.level ?? 'info',
      formatter: log.formatter ?? 'json',
      accesslog: { disabled: !(log.accessLog ?? true) },
      fields: { service: 'registry' },
    },
    storage: storageSection(input),
    http,
    auth: authSection(input.auth),
    health: {
      storagedriver: {
        enabled: true,
        interval: duration(health.interval ?? '10s', 'health interval'),
        threshold: health.threshold ?? 3,
      },
    },
  };
  if (input.notifications) document.notifications = notificationsSection(input.notifications);
  return document;
}

/** Renders config.yml. Deterministic: the same input gives the same text (checksum annotations). */
export function renderRegistryConfig(input: RegistryConfigInput): string {
  return stringify(registryConfigDocument(input), { lineWidth: 0 });
}
