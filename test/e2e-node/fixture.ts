// Shared steps of the real-node suites: install berth with its Helm chart from the local image,
// declare a Registry and wait for it to serve, push with crane from this machine through the
// cluster gateway, and read what the kubelet reports about pods.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../harness/kube.ts';
import type { NodeGround } from '../harness/node-ground.ts';
import { binary } from '../harness/processes.ts';

const exec = promisify(execFile);
export { berthNamespace, installBerth } from '../harness/berth-install.ts';
export const group = 'berth.dev';
export const version = 'v1alpha1';

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
export interface RegistryObject {
  metadata: { name: string; namespace: string; generation?: number };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    endpoint?: string;
    caConfigMap?: string;
    adminSecret?: string;
    pullSecrets?: { lastRotationTime?: string; nextRotationTime?: string };
    garbageCollection?: {
      phase?: string;
      lastRun?: { result?: string; bytesFreed?: number; blobsDeleted?: number; trigger?: string };
    };
  };
}

export const condition = (obj: { status?: { conditions?: Condition[] } } | undefined, type: string) =>
  obj?.status?.conditions?.find((c) => c.type === type);

export function customObjects(kc: k8s.KubeConfig): k8s.CustomObjectsApi {
  return kc.makeApiClient(k8s.CustomObjectsApi);
}

export async function readRegistry(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
): Promise<RegistryObject> {
  return (await customObjects(kc).getNamespacedCustomObject({
    group,
    version,
    plural: 'registries',
    namespace,
    name,
  })) as RegistryObject;
}

/** Waits until the Registry is Ready=True for its current generation. */
export async function registryReady(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  timeoutMs = 240_000,
): Promise<RegistryObject> {
  return eventually(
    `Registry ${namespace}/${name} Ready`,
    () => readRegistry(kc, namespace, name),
    (r) =>
      condition(r, 'Ready')?.status === 'True' &&
      r.status?.observedGeneration === r.metadata.generation &&
      Boolean(r.status?.endpoint),
    timeoutMs,
  );
}

/** A crane client on this machine: the gateway as proxy, the Registry's CA, and a docker config. */
export interface Crane {
  run(args: string[]): Promise<string>;
  dir: string;
}

export async function craneFor(
  ground: NodeGround,
  namespace: string,
  secretName: string,
  caConfigMap: string,
): Promise<Crane> {
  const core = ground.kc.makeApiClient(k8s.CoreV1Api);
  // Inside the ground's folder, so the copy of the credential goes when the ground stops.
  const dir = mkdtempSync(path.join(ground.cp.dir, 'crane-'));
  const secret = await core.readNamespacedSecret({ namespace, name: secretName });
  const config = Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8');
  writeFileSync(path.join(dir, 'config.json'), config, { mode: 0o600 });
  const ca = await core.readNamespacedConfigMap({ namespace, name: caConfigMap });
  writeFileSync(path.join(dir, 'ca.crt'), ca.data?.['ca.crt'] ?? '');
  return {
    dir,
    run: async (args) =>
      (
        await exec(binary('crane'), args, {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: dir,
            DOCKER_CONFIG: dir,
            SSL_CERT_FILE: path.join(dir, 'ca.crt'),
            ...ground.clientEnv,
          },
          maxBuffer: 64 * 1024 * 1024,
        })
      ).stdout.trim(),
  };
}

/** What the kubelet says about a pod's first container: running, or why its image does not pull. */
export interface PodOutcome {
  phase?: string;
  ready: boolean;
  waitingReason?: string;
  message?: string;
}

export async function podOutcome(kc: k8s.KubeConfig, namespace: string, name: string): Promise<PodOutcome> {
  const pod = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedPod({ namespace, name });
  const status = pod.status?.containerStatuses?.[0];
  return {
    phase: pod.status?.phase,
    ready: status?.ready ?? false,
    waitingReason: status?.state?.waiting?.reason,
    message: status?.state?.waiting?.message,
  };
}

export const pullFailures = ['ErrImagePull', 'ImagePullBackOff'];

/** Waits until the pod runs, or until its image pull fails; returns what it saw. */
export async function podSettles(kc: k8s.KubeConfig, namespace: string, name: string, timeoutMs = 120_000) {
  return eventually(
    `pod ${namespace}/${name} to run or fail to pull`,
    () => podOutcome(kc, namespace, name),
    (o) => (o.phase === 'Running' && o.ready) || pullFailures.includes(o.waitingReason ?? ''),
    timeoutMs,
  );
}

/** A pod that runs the image's own entrypoint, with no imagePullSecrets of its own. */
export function appPod(name: string, image: string, pullPolicy = 'Always'): k8s.V1Pod {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image, imagePullPolicy: pullPolicy }],
    },
  };
}

/** Creates a namespace with labels. */
export async function createNamespace(kc: k8s.KubeConfig, name: string, labels: Record<string, string> = {}) {
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name, labels } } });
}

/** Creates a berth object (Registry, Repository, RetentionPolicy) in a namespace. */
export async function createBerthObject(
  kc: k8s.KubeConfig,
  kind: 'Registry' | 'Repository' | 'RetentionPolicy',
  namespace: string,
  metadata: { name: string; annotations?: Record<string, string> },
  spec: Record<string, unknown>,
): Promise<void> {
  await customObjects(kc).createNamespacedCustomObject({
    group,
    version,
    plural: `${kind.toLowerCase().replace(/y$/, 'ie')}s`,
    namespace,
    body: { apiVersion: `${group}/${version}`, kind, metadata, spec },
  });
}

/** Merge-patches a Registry (spec or metadata). */
export async function patchRegistry(kc: k8s.KubeConfig, namespace: string, name: string, body: object) {
  await customObjects(kc).patchNamespacedCustomObject(
    { group, version, plural: 'registries', namespace, name, body },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

/**
 * A Registry made Ready with an admin crane client: waits for Ready, then for the first push of
 * `archive` to `<endpoint>/<ref>` to go through (the token service may answer a moment later).
 */
export async function readyWithFirstPush(
  ground: NodeGround,
  namespace: string,
  name: string,
  archive: string,
  ref: string,
): Promise<{ registry: RegistryObject; endpoint: string; admin: Crane }> {
  const registry = await registryReady(ground.kc, namespace, name);
  const endpoint = registry.status!.endpoint!;
  const admin = await craneFor(
    ground,
    namespace,
    registry.status!.adminSecret!,
    registry.status!.caConfigMap!,
  );
  let lastError = '';
  await eventually(
    `the first push to ${endpoint}/${ref} with the admin Secret`,
    async () => {
      try {
        await admin.run(['push', archive, `${endpoint}/${ref}`]);
        return true;
      } catch (err) {
        lastError = (err as Error).message.slice(0, 300);
        return false;
      }
    },
    (ok) => ok,
    120_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast push error: ${lastError}`);
  });
  return { registry, endpoint, admin };
}

/** Progress lines of the real-node suites, printed with BERTH_TEST_VERBOSE=1. */
export const log = (line: string) =>
  process.env.BERTH_TEST_VERBOSE === '1' && console.log(`[e2e-node] ${line}`);
/** The namespace the suites' Registries live in (privileged: the node agent mounts host folders). */
export const regNs = 'registry-system';
