// A Registry's data plane as berth generated it, run on loopback: the Secrets the Registry
// controller wrote into the control plane are mounted (as the kubelet would, `..data` swaps) into
// folders, and the real registry binary and berth's token service (started with exactly the
// arguments of the token Deployment) run with them. `sync()` plays the kubelet's Secret refresh.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { SecretVolume } from '../token/fixture.ts';
import { eventually } from './kube.ts';
import { freePort, waitFor } from './net.ts';
import { ProcessGroup, repoRoot } from './processes.ts';
import { RegistryClient, startRegistry, type RunningRegistry } from './registry.ts';

export interface DataPlane {
  registry: RunningRegistry;
  /** The host clients use: localhost:<port> (the serving certificate must name localhost). */
  host: string;
  caPem: string;
  volumes: Record<'tls' | 'tokenCert' | 'tokenKey' | 'credentials', SecretVolume>;
  /** Copies the current credential store from the control plane into the token service's folder. */
  syncStore(): Promise<void>;
  /** A client with the credentials of a dockerconfigjson Secret (re-targeted at `host`). */
  clientFor(secretText: string | undefined): RegistryClient;
  /** Reads a Secret's decoded data. */
  secretFiles(namespace: string, name: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startDataPlane(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
): Promise<DataPlane> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const secretFiles = async (ns: string, secret: string) => {
    const s = await core.readNamespacedSecret({ name: secret, namespace: ns });
    return Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
  };
  const token = await eventually(
    'the token Deployment',
    () => apps.readNamespacedDeployment({ name: `${name}-token`, namespace }).catch(() => undefined),
    (d) => d !== undefined,
  );
  const bundle = await eventually(
    'the CA ConfigMap',
    () => core.readNamespacedConfigMap({ name: `${name}-ca`, namespace }).catch(() => undefined),
    (c) => c !== undefined,
  );
  const caPem = bundle?.data?.['ca.crt'] ?? '';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-dataplane-'));
  const keyFiles = await secretFiles(namespace, `${name}-token-key`);
  const volumes = {
    tls: new SecretVolume(path.join(dir, 'tls'), await secretFiles(namespace, `${name}-tls`)),
    tokenCert: new SecretVolume(path.join(dir, 'token-cert'), { 'token.crt': keyFiles['tls.crt'] ?? '' }),
    tokenKey: new SecretVolume(path.join(dir, 'token-key'), keyFiles),
    credentials: new SecretVolume(
      path.join(dir, 'credentials'),
      await secretFiles(namespace, `${name}-credentials`),
    ),
  };
  const mapPaths = (text: string) =>
    text
      .replaceAll('/etc/distribution/tls', volumes.tls.dir)
      .replaceAll('/etc/distribution/token', volumes.tokenCert.dir)
      .replaceAll('/etc/berth/tls', volumes.tls.dir)
      .replaceAll('/etc/berth/token', volumes.tokenKey.dir)
      .replaceAll('/etc/berth/credentials', volumes.credentials.dir);

  const tokenPort = await freePort();
  const healthPort = await freePort();
  const args = (token?.spec?.template.spec?.containers[0]?.args ?? []).map((a) =>
    a.startsWith('--listen=')
      ? `--listen=127.0.0.1:${tokenPort}`
      : a.startsWith('--health-listen=')
        ? `--health-listen=127.0.0.1:${healthPort}`
        : mapPaths(a),
  );
  const group = new ProcessGroup(path.join(dir, 'token-service'));
  const proc = group.start('token-service', process.execPath, [
    path.join(repoRoot, 'src/main.ts'),
    ...args,
    '--store-poll=1s',
  ]);
  await waitFor(
    'the token service',
    async () => (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).ok && (await tlsUp(tokenPort)),
    { timeoutMs: 30_000, describe: () => ProcessGroup.tail(proc.logFile) },
  );
  const configDir = path.join(dir, 'registry');
  mkdirSync(configDir);
  writeFileSync(
    path.join(configDir, 'config.yml'),
    mapPaths((await secretFiles(namespace, `${name}-registry-config`))['config.yml'] ?? ''),
  );
  let registry: RunningRegistry;
  try {
    registry = await startRegistry({
      configDir,
      tls: true,
      // The realm names the Service's host; here the token service listens on loopback.
      env: { REGISTRY_AUTH_TOKEN_REALM: `https://localhost:${tokenPort}/token` },
    });
  } catch (err) {
    await group.stopAll();
    throw err;
  }
  const host = registry.host.replace('127.0.0.1', 'localhost');
  const clients: RegistryClient[] = [];
  return {
    registry,
    host,
    caPem,
    volumes,
    secretFiles,
    syncStore: async () => volumes.credentials.write(await secretFiles(namespace, `${name}-credentials`)),
    clientFor: (text) => {
      const auths = Object.values(
        (JSON.parse(text ?? '{"auths":{}}') as { auths: Record<string, { auth?: string }> }).auths,
      );
      const c = new RegistryClient({
        caPem,
        dockerConfig: { auths: auths[0] ? { [host]: { auth: auths[0].auth } } : {} },
      });
      clients.push(c);
      return c;
    },
    stop: async () => {
      await registry.stop();
      await group.stopAll();
      for (const c of clients) await c.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function tlsUp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
