// Issue #16 on the real node: a Pod whose ServiceAccount a Repository names in spec.push pushes an
// image with its projected ServiceAccount token, with no Secret mounted and no imagePullSecrets.
// The push client is a minimal OCI distribution script (oci-push.mjs, run by the node of berth's own
// image), not crane; everything else is real: the kubelet projects the token for the Registry's
// audience, the Pod resolves the registry by its in-cluster name through CoreDNS and kube-proxy,
// and the token service asks the API server with a TokenReview. The test checks the tag with
// crane and the admin Secret from this machine, and that a ServiceAccount with no grant is refused.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../harness/kube.ts';
import { startNodeGround, type NodeGround } from '../harness/node-ground.ts';
import { binDir, binary } from '../harness/processes.ts';
import {
  createBerthObject,
  createNamespace,
  craneFor,
  installBerth,
  log,
  readyWithFirstPush,
  regNs,
  type Crane,
} from './fixture.ts';

const exec = promisify(execFile);
const reg = 'sa';
const ci = 'ci';
const audience = `berth.dev/${regNs}/${reg}`;
const repository = `${ci}/app`;

let ground: NodeGround;
let core: k8s.CoreV1Api;
let endpoint: string;
let admin: Crane;

/** A Pod that runs oci-push.mjs as `serviceAccount` with only a projected token and the CA. */
function pushPod(name: string, serviceAccount: string, tag: string): k8s.V1Pod {
  const berth = '/var/run/secrets/berth';
  return {
    metadata: { name },
    spec: {
      serviceAccountName: serviceAccount,
      automountServiceAccountToken: false, // no API token: only the registry's
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 },
      containers: [
        {
          name: 'push',
          image: ground.images.berth,
          imagePullPolicy: 'IfNotPresent',
          command: ['node', '/push/oci-push.mjs'],
          env: [
            { name: 'REGISTRY', value: endpoint },
            { name: 'REPOSITORY', value: repository },
            { name: 'TAG', value: tag },
            { name: 'TOKEN_FILE', value: `${berth}/token` },
            { name: 'NODE_EXTRA_CA_CERTS', value: `${berth}/ca.crt` },
          ],
          volumeMounts: [
            { name: 'berth', mountPath: berth, readOnly: true },
            { name: 'push', mountPath: '/push', readOnly: true },
          ],
        },
      ],
      volumes: [
        {
          name: 'berth',
          projected: {
            sources: [
              { serviceAccountToken: { audience, expirationSeconds: 600, path: 'token' } },
              { configMap: { name: 'registry-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
        { name: 'push', configMap: { name: 'oci-push' } },
      ],
    },
  };
}

/** Waits until the pod's container has exited; returns its phase, exit code and log. */
async function podFinishes(name: string) {
  const pod = await eventually(
    `pod ${ci}/${name} to finish`,
    () => core.readNamespacedPod({ namespace: ci, name }),
    (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed',
    180_000,
  );
  const logs = await core.readNamespacedPodLog({ namespace: ci, name });
  const exitCode = pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode;
  log(`pod ${name}: ${pod.status?.phase}, exit ${exitCode}: ${logs.trim()}`);
  return { phase: pod.status?.phase, exitCode, logs, pod };
}

/**
 * The actions a registry token for `serviceAccount` grants on the repository, asked from this
 * machine with a TokenRequest token: the grant reaches the token service's store a moment after
 * the Repository is created.
 */
async function grantedActions(serviceAccount: string): Promise<string[]> {
  const request = await core.createNamespacedServiceAccountToken({
    namespace: ci,
    name: serviceAccount,
    body: { spec: { audiences: [audience], expirationSeconds: 600 } },
  });
  const basic = Buffer.from(`serviceaccount:${request.status!.token}`).toString('base64');
  // A docker config of its own next to the admin's, in the ground's folder (gone when it stops).
  const dir = path.join(admin.dir, `sa-${serviceAccount}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [endpoint]: { auth: basic } } }), {
    mode: 0o600,
  });
  const { stdout } = await exec(binary('crane'), ['auth', 'token', '--push', `${endpoint}/${repository}`], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      DOCKER_CONFIG: dir,
      SSL_CERT_FILE: path.join(admin.dir, 'ca.crt'),
      ...ground.clientEnv,
    },
  });
  const answer = stdout.trim();
  const token = answer.startsWith('{') ? (JSON.parse(answer) as { token: string }).token : answer;
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
    access?: { type: string; name: string; actions: string[] }[];
  };
  return claims.access?.find((a) => a.name === repository)?.actions ?? [];
}

beforeAll(async () => {
  ground = await startNodeGround({ log });
  core = ground.kc.makeApiClient(k8s.CoreV1Api);
  await installBerth(ground, ['extraArgs={--credential-propagation=20s}']);
  log('berth installed');
  await createNamespace(ground.kc, regNs, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  await createNamespace(ground.kc, ci);
  await createBerthObject(
    ground.kc,
    'Registry',
    regNs,
    { name: reg },
    { storage: { persistentVolumeClaim: { size: '1Gi' } }, tls: { mode: 'SelfSigned' } },
  );
  for (const name of ['builder', 'intruder'])
    await core.createNamespacedServiceAccount({ namespace: ci, body: { metadata: { name } } });
  const registryRef = { name: reg, namespace: regNs };
  await createBerthObject(
    ground.kc,
    'Repository',
    ci,
    { name: 'app' },
    { registryRef, push: { serviceAccounts: [{ name: 'builder' }] } },
  );
  const pause = path.join(binDir, 'images', 'pause.tar');
  // The admin's first push goes to another path: ci/app is the Pod's to write.
  const ready = await readyWithFirstPush(ground, regNs, reg, pause, 'admin/probe:v1');
  const registry = ready.registry;
  endpoint = ready.endpoint;
  admin = await craneFor(ground, regNs, registry.status!.adminSecret!, registry.status!.caConfigMap!);
  log(`registry ready at ${endpoint}`);
  // The team's copy of the Registry's CA, as trust distribution would make it.
  const ca = await core.readNamespacedConfigMap({ namespace: regNs, name: registry.status!.caConfigMap! });
  await core.createNamespacedConfigMap({
    namespace: ci,
    body: { metadata: { name: 'registry-ca' }, data: { 'ca.crt': ca.data!['ca.crt']! } },
  });
  const script = readFileSync(path.join(import.meta.dirname, 'oci-push.mjs'), 'utf8');
  await core.createNamespacedConfigMap({
    namespace: ci,
    body: { metadata: { name: 'oci-push' }, data: { 'oci-push.mjs': script } },
  });
  await eventually(
    'the grant of ci/builder at the token service',
    () => grantedActions('builder').catch((err: Error) => [err.message.slice(0, 200)]),
    (a) => a.includes('push'),
    120_000,
  );
}, 900_000);

afterAll(async () => {
  await ground?.stop();
}, 120_000);

describe('a Pod pushes with its ServiceAccount token on a real node', () => {
  test('the Pod of a ServiceAccount the Repository names pushes with its projected token, no Secret mounted', async () => {
    await core.createNamespacedPod({ namespace: ci, body: pushPod('push', 'builder', 'v1') });
    const { phase, exitCode, logs, pod } = await podFinishes('push');
    expect(pod.spec?.imagePullSecrets ?? []).toEqual([]);
    expect(pod.spec?.volumes?.filter((v) => v.secret)).toEqual([]);
    expect({ phase, exitCode }).toEqual({ phase: 'Succeeded', exitCode: 0 });
    const pushed = /pushed \S+ (sha256:[0-9a-f]{64})/.exec(logs)?.[1];
    expect(pushed).toBeDefined();
    // The tag is there for anyone who may read it: the admin sees the digest the Pod pushed.
    expect(await admin.run(['digest', `${endpoint}/${repository}:v1`])).toBe(pushed);
    expect(await admin.run(['ls', `${endpoint}/${repository}`])).toBe('v1');
  });

  test('the Pod of a ServiceAccount with no grant is refused, and writes no tag', async () => {
    expect(await grantedActions('intruder')).toEqual([]);
    await core.createNamespacedPod({ namespace: ci, body: pushPod('intrude', 'intruder', 'stolen') });
    const { phase, exitCode, logs } = await podFinishes('intrude');
    expect(phase).toBe('Failed');
    expect(exitCode).not.toBe(0);
    expect(logs).toMatch(/HTTP (401|403)|denied|unauthorized/i);
    expect(await admin.run(['ls', `${endpoint}/${repository}`])).toBe('v1');
  });
});
