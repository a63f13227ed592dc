// Where the API server is and how to authenticate to it, without client-node's model layer
// (importing @kubernetes/client-node alone costs a bare Node about 80 MiB of RSS).
//
// Reads a kubeconfig (KUBECONFIG, several files merged as kubectl does; else ~/.kube/config) or,
// without one, the in-cluster ServiceAccount (its projected token is read again once a minute, so
// a rotated token is picked up). It handles what berth meets in practice: client certificates,
// bearer tokens (inline or tokenFile), basic auth, CA bundles, insecure-skip-tls-verify and
// tls-server-name. A user with an `exec` or `auth-provider` plugin (cloud CLIs on a laptop) is
// handed to client-node's KubeConfig, loaded only then.
//
// client-node's KubeConfig has the same shape (getCurrentCluster, applyToHTTPSOptions), so tests
// may pass one wherever a KubeAccess is expected.
import { existsSync, readFileSync, statSync } from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface KubeAccess {
  getCurrentCluster(): { server: string } | null;
  /** Sets the CA, client certificate or Authorization header of one request. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export const inClusterRoot = '/var/run/secrets/kubernetes.io/serviceaccount';

interface NamedEntry<T> {
  name: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}
interface ClusterEntry {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
}
interface UserEntry {
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}
interface ContextEntry {
  cluster?: string;
  user?: string;
}
interface KubeconfigFile {
  'current-context'?: string;
  clusters?: NamedEntry<ClusterEntry>[];
  users?: NamedEntry<UserEntry>[];
  contexts?: NamedEntry<ContextEntry>[];
}

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

/** A file's contents, or base64 data inline; paths are relative to the kubeconfig's folder. */
function material(dir: string, file: string | undefined, data: string | undefined): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (file) return readFileSync(path.resolve(dir, file));
  return undefined;
}

/** A token file read again when older than a minute (projected tokens rotate). */
function tokenReader(file: string): () => string {
  let token = '';
  let readAt = 0;
  return () => {
    if (!token || Date.now() - readAt > 60_000) {
      token = readFileSync(file, 'utf8').trim();
      readAt = Date.now();
    }
    return token;
  };
}

class StaticAccess implements KubeAccess {
  private readonly cluster: { server: string };
  private readonly tls: Pick<
    https.RequestOptions,
    'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'
  >;
  private readonly authorization: (() => string) | undefined;

  constructor(
    server: string,
    tls: Pick<https.RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>,
    authorization: (() => string) | undefined,
  ) {
    this.cluster = { server };
    this.tls = tls;
    this.authorization = authorization;
  }

  getCurrentCluster(): { server: string } {
    return this.cluster;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    for (const [k, v] of Object.entries(this.tls))
      if (v !== undefined) (opts as Record<string, unknown>)[k] = v;
    if (this.authorization) opts.headers = { ...(opts.headers ?? {}), authorization: this.authorization() };
  }
}

/** The in-cluster configuration, or undefined outside a pod. */
export function inClusterAccess(root = inClusterRoot): KubeAccess | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !existsSync(path.join(root, 'token'))) return undefined;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const token = tokenReader(path.join(root, 'token'));
  return new StaticAccess(
    `https://${hostPart}:${port}`,
    { ca: readFileSync(path.join(root, 'ca.crt')) },
    () => `Bearer ${token()}`,
  );
}

/** Merges kubeconfig files as kubectl does: the first file to name an entry (or the context) wins. */
function mergeFiles(files: string[]): { config: KubeconfigFile; dirOf: Map<unknown, string> } {
  const config: KubeconfigFile = { clusters: [], users: [], contexts: [] };
  const dirOf = new Map<unknown, string>();
  for (const file of files) {
    const parsed = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as KubeconfigFile;
    const dir = path.dirname(path.resolve(file));
    config['current-context'] ??= parsed['current-context'] || undefined;
    for (const list of ['clusters', 'users', 'contexts'] as const)
      for (const entry of parsed[list] ?? []) {
        if (config[list]!.some((e) => e.name === entry.name)) continue;
        config[list]!.push(entry as never);
        dirOf.set(entry, dir);
      }
  }
  return { config, dirOf };
}

/** A kubeconfig's current context; exec and auth-provider users go through client-node. */
export function kubeconfigAccess(files: string[]): KubeAccess {
  const { config, dirOf } = mergeFiles(files);
  const contextName = config['current-context'];
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new KubeConfigError(`kubeconfig ${files.join(':')}: no current context`);
  const clusterEntry = config.clusters?.find((c) => c.name === context.cluster);
  const cluster = clusterEntry?.cluster;
  if (!cluster?.server) throw new KubeConfigError(`kubeconfig: context ${contextName} has no cluster server`);
  const userEntry = config.users?.find((u) => u.name === context.user);
  const user = userEntry?.user ?? {};
  if (user.exec || user['auth-provider'] || cluster['proxy-url'])
    return new ClientNodeAccess(files, cluster.server);
  const cdir = dirOf.get(clusterEntry) ?? '.';
  const udir = dirOf.get(userEntry) ?? '.';
  const tls = {
    ca: material(cdir, cluster['certificate-authority'], cluster['certificate-authority-data']),
    cert: material(udir, user['client-certificate'], user['client-certificate-data']),
    key: material(udir, user['client-key'], user['client-key-data']),
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] ? false : undefined,
    servername: cluster['tls-server-name'],
  };
  let authorization: (() => string) | undefined;
  if (user.token) authorization = () => `Bearer ${user.token}`;
  else if (user.tokenFile) {
    const read = tokenReader(path.resolve(udir, user.tokenFile));
    authorization = () => `Bearer ${read()}`;
  } else if (user.username !== undefined)
    authorization = () =>
      `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}`;
  return new StaticAccess(cluster.server, tls, authorization);
}

/** For auth plugins: client-node's KubeConfig, imported on first use. */
class ClientNodeAccess implements KubeAccess {
  private readonly files: string[];
  private readonly server: string;
  private loaded: Promise<KubeAccess> | undefined;

  constructor(files: string[], server: string) {
    this.files = files;
    this.server = server;
  }

  getCurrentCluster(): { server: string } {
    return { server: this.server };
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    this.loaded ??= import('@kubernetes/client-node').then((k8s) => {
      const kc = new k8s.KubeConfig();
      const previous = process.env.KUBECONFIG;
      process.env.KUBECONFIG = this.files.join(path.delimiter);
      try {
        kc.loadFromDefault();
      } finally {
        if (previous === undefined) delete process.env.KUBECONFIG;
        else process.env.KUBECONFIG = previous;
      }
      return kc;
    });
    await (await this.loaded).applyToHTTPSOptions(opts);
  }
}

/**
 * Loads access as client-node's loadFromDefault does: `file` if given; else the files in
 * KUBECONFIG; else ~/.kube/config; else in-cluster.
 */
export function loadKubeAccess(file?: string): KubeAccess {
  if (file) return kubeconfigAccess([file]);
  const env = (process.env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f && existsSync(f));
  if (env.length) return kubeconfigAccess(env);
  const home = path.join(os.homedir(), '.kube', 'config');
  if (existsSync(home) && statSync(home).isFile()) return kubeconfigAccess([home]);
  const inCluster = inClusterAccess();
  if (inCluster) return inCluster;
  throw new KubeConfigError('no kubeconfig (KUBECONFIG, ~/.kube/config) and not running in a cluster');
}
