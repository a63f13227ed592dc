// The user's story on the real node, with nothing played by the test: the kubelet, containerd,
// kube-proxy and CoreDNS run (test/harness/node.ts), berth is installed with its Helm chart and its
// operator is a pod from the image built by hack/images.sh, and the registry, the token service and
// the node agent are the pods berth creates. An image is pushed from this machine with the admin
// Secret, and pods pull it by its in-cluster name with the pull secret berth fanned out: kubelet →
// containerd → the agent's certs.d → the token service → the registry.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../harness/kube.ts';
import { startNodeGround, type NodeGround } from '../harness/node-ground.ts';
import { binDir } from '../harness/processes.ts';
import {
  appPod,
  berthNamespace,
  condition,
  createBerthObject,
  createNamespace,
  installBerth,
  podSettles,
  pullFailures,
  readRegistry,
  readyWithFirstPush,
  type Crane,
  log,
  regNs,
} from './fixture.ts';

const reg = 'e2e';
const teamA = 'team-a';
const teamB = 'team-b';
const outsider = 'outsider';

let ground: NodeGround;
let core: k8s.CoreV1Api;
let endpoint: string;
let admin: Crane;

beforeAll(async () => {
  ground = await startNodeGround({ log });
  core = ground.kc.makeApiClient(k8s.CoreV1Api);
  // New credentials reach the token service's mounted store within the kubelet's sync period.
  await installBerth(ground, ['extraArgs={--credential-propagation=20s}']);
  log('berth installed');
  await createNamespace(ground.kc, regNs, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  await createNamespace(ground.kc, teamA, { 'berth.dev/pull': reg });
  await createNamespace(ground.kc, teamB, { 'berth.dev/pull': reg });
  await createNamespace(ground.kc, outsider);
  await createBerthObject(
    ground.kc,
    'Registry',
    regNs,
    { name: reg },
    {
      storage: { persistentVolumeClaim: { size: '5Gi' } },
      tls: { mode: 'SelfSigned' },
      nodeAccess: { enabled: true },
      pullSecrets: {
        namespaceSelector: { matchLabels: { 'berth.dev/pull': reg } },
        secretName: 'e2e-pull',
        rotation: { interval: '1m', gracePeriod: '40s' },
      },
    },
  );
  const registryRef = { name: reg, namespace: regNs };
  await createBerthObject(ground.kc, 'Repository', teamA, { name: 'web' }, { registryRef });
  await createBerthObject(ground.kc, 'Repository', teamB, { name: 'api' }, { registryRef });
  const pause = path.join(binDir, 'images', 'pause.tar');
  ({ endpoint, admin } = await readyWithFirstPush(ground, regNs, reg, pause, 'team-a/web:v1'));
  log(`registry ready at ${endpoint}`);
  await admin.run(['push', pause, `${endpoint}/team-b/api:v1`]);
  log('pushed team-a/web:v1 and team-b/api:v1');
}, 900_000);

afterAll(async () => {
  await ground?.stop();
}, 120_000);

describe('berth on a real node', () => {
  test('the operator runs from the local image, admitted under the restricted Pod Security Standard, Ready through its probes', async () => {
    const ns = await core.readNamespace({ name: berthNamespace });
    expect(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const pods = await core.listNamespacedPod({ namespace: berthNamespace });
    const operators = pods.items.filter((p) => p.metadata?.labels?.['app.kubernetes.io/name'] === 'berth');
    expect(operators.length).toBeGreaterThan(0);
    for (const pod of operators) {
      expect(pod.spec?.nodeName).toBe(ground.node.name);
      expect(pod.status?.phase).toBe('Running');
      const status = pod.status?.containerStatuses?.[0];
      expect(status?.ready).toBe(true);
      expect(status?.image).toContain(ground.images.berth.split('/').pop()!.split(':')[0]!);
      expect(pod.spec?.containers[0]?.readinessProbe?.httpGet?.path).toBe('/readyz');
    }
    // restricted is enforced here: a privileged pod is refused by admission.
    await expect(
      core.createNamespacedPod({
        namespace: berthNamespace,
        body: {
          metadata: { name: 'privileged' },
          spec: {
            containers: [{ name: 'c', image: ground.images.berth, securityContext: { privileged: true } }],
          },
        },
      }),
    ).rejects.toThrow(/violates PodSecurity\W+restricted/);
  });

  test('the registry and token-service pods run on the node, Ready, with the claim bound to a local volume', async () => {
    for (const component of ['registry', 'token-service']) {
      const pods = await core.listNamespacedPod({
        namespace: regNs,
        labelSelector: `berth.dev/registry=${reg},app.kubernetes.io/component=${component}`,
      });
      expect(pods.items.length).toBeGreaterThan(0);
      for (const pod of pods.items) {
        expect(pod.spec?.nodeName).toBe(ground.node.name);
        expect(pod.status?.containerStatuses?.every((s) => s.ready)).toBe(true);
      }
    }
    const claim = await core.readNamespacedPersistentVolumeClaim({ namespace: regNs, name: `${reg}-data` });
    expect(claim.status?.phase).toBe('Bound');
    // NodesReady follows the agent pods' readiness, which can trail Ready by a probe period.
    await eventually(
      'NodesReady',
      () => readRegistry(ground.kc, regNs, reg),
      (r) => condition(r, 'NodesReady')?.status === 'True',
      60_000,
    );
  });

  test('the node agent wrote certs.d for the registry on the node', async () => {
    const host = endpoint;
    const hosts = await ground.node.readFile(`/etc/containerd/certs.d/${host}/hosts.toml`);
    expect(hosts).toMatch(/^server = "https:\/\/10\.215\.\d+\.\d+:443"/m);
    expect(await ground.node.readFile(`/etc/containerd/certs.d/${host}/ca.crt`)).toContain(
      'BEGIN CERTIFICATE',
    );
    expect(await ground.node.readFile('/etc/hosts')).toContain(`${reg}.${regNs}.svc`);
  });

  test('a pod in a selected namespace pulls by the in-cluster name with no imagePullSecrets, and runs', async () => {
    const pod = appPod('web', `${endpoint}/team-a/web:v1`);
    await core.createNamespacedPod({ namespace: teamA, body: pod });
    const created = await core.readNamespacedPod({ namespace: teamA, name: 'web' });
    expect(created.spec?.imagePullSecrets).toEqual([{ name: 'e2e-pull' }]); // from the ServiceAccount
    const outcome = await podSettles(ground.kc, teamA, 'web');
    expect(outcome).toMatchObject({ phase: 'Running', ready: true });
  });

  test('a pod in an unselected namespace cannot pull', async () => {
    await core.createNamespacedPod({ namespace: outsider, body: appPod('web', `${endpoint}/team-a/web:v1`) });
    const outcome = await podSettles(ground.kc, outsider, 'web');
    expect(pullFailures).toContain(outcome.waitingReason);
  });

  test("a pod cannot pull another team's repository", async () => {
    await core.createNamespacedPod({ namespace: teamA, body: appPod('steal', `${endpoint}/team-b/api:v1`) });
    const outcome = await podSettles(ground.kc, teamA, 'steal');
    expect(pullFailures).toContain(outcome.waitingReason);
    // ... while team-b itself can.
    await core.createNamespacedPod({ namespace: teamB, body: appPod('api', `${endpoint}/team-b/api:v1`) });
    expect(await podSettles(ground.kc, teamB, 'api')).toMatchObject({ phase: 'Running', ready: true });
  });

  test('pull secrets rotate while pods are deleted and recreated in a loop, and no pull fails', async () => {
    const before = (await readRegistry(ground.kc, regNs, reg)).status?.pullSecrets?.lastRotationTime;
    const secretVersion = async () =>
      (await core.readNamespacedSecret({ namespace: teamA, name: 'e2e-pull' })).metadata?.resourceVersion;
    const firstVersion = await secretVersion();
    let rotations = 0;
    let lastVersion = firstVersion;
    let pulls = 0;
    const deadline = Date.now() + 200_000;
    // Two rotations (interval 1m), each a new credential written into the same Secret in place.
    while (rotations < 2 && Date.now() < deadline) {
      const name = `loop-${pulls}`;
      await core.createNamespacedPod({
        namespace: teamA,
        body: appPod(name, `${endpoint}/team-a/web:v1`, 'Always'),
      });
      const outcome = await podSettles(ground.kc, teamA, name);
      expect({ pod: name, ...outcome }).toMatchObject({ pod: name, phase: 'Running', ready: true });
      await core.deleteNamespacedPod({ namespace: teamA, name, gracePeriodSeconds: 0 });
      pulls++;
      const v = await secretVersion();
      if (v !== lastVersion) {
        rotations++;
        lastVersion = v;
        log(`pull secret rewritten (${rotations}) after ${pulls} pulls`);
      }
    }
    expect(rotations).toBeGreaterThanOrEqual(2);
    const after = (await readRegistry(ground.kc, regNs, reg)).status?.pullSecrets?.lastRotationTime;
    expect(after).not.toEqual(before);
    console.log(`[e2e-node] ${pulls} pulls across ${rotations} pull-secret rotations, none failed`);
  }, 300_000);

  test("the operator pod needs nothing beyond the chart's RBAC: the API server never refused it", async () => {
    const pods = await core.listNamespacedPod({ namespace: berthNamespace });
    const operators = pods.items.filter((p) => p.metadata?.labels?.['app.kubernetes.io/name'] === 'berth');
    expect(operators.length).toBeGreaterThan(0);
    for (const pod of operators) {
      const logs = await core.readNamespacedPodLog({ namespace: berthNamespace, name: pod.metadata!.name! });
      expect(logs).toContain('Started operator');
      expect(logs).not.toMatch(/forbidden/i);
    }
  });
});
