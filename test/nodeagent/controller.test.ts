// The node agent's DaemonSet against the real control plane, on kwok nodes (kwok plays the kubelet;
// the agent really writing certs.d and /etc/hosts on a real node is test/e2e-node/pull.test.ts and
// uninstall.test.ts; this suite covers many nodes, node churn and the controller's counts): it appears with spec.nodeAccess, its
// ConfigMap carries the Service's cluster IP and berth's CA, NodesReady follows its pods (kwok runs
// them), and turning nodeAccess off or deleting the Registry first switches the agents to cleanup
// mode, then removes the DaemonSet, the ConfigMap and the finalizer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, statusOf, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { parseNodeAccessConfig } from '../../src/nodeagent/config.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const group = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const image = 'ghcr.io/berth-dev/berth:test';

let ns: string;
let operator: RunningOperator;

interface RegistryObj {
  metadata: { finalizers?: string[]; deletionTimestamp?: string };
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
}
const getRegistry = async (name: string) =>
  (await custom.getNamespacedCustomObject({ ...group, namespace: ns, name })) as RegistryObj;
const nodesReady = (r: RegistryObj) => r.status?.conditions?.find((c) => c.type === 'NodesReady');
const readDaemonSet = (name: string) =>
  apps.readNamespacedDaemonSet({ name, namespace: ns }).catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });
const readConfigMap = (name: string) =>
  core.readNamespacedConfigMap({ name, namespace: ns }).catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });
/** The agent pods bound to, or meant for (DaemonSet node affinity), a node. */
const agentPodsFor = async (node: string) =>
  (await core.listNamespacedPod({ namespace: ns })).items.filter(
    (p) =>
      p.spec?.nodeName === node ||
      (
        p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ??
        []
      ).some((t) =>
        (t.matchFields ?? []).some((f) => f.key === 'metadata.name' && (f.values ?? []).includes(node)),
      ),
  );
const setNodeAccess = (name: string, enabled: boolean) =>
  custom.patchNamespacedCustomObject(
    { ...group, namespace: ns, name, body: { spec: { nodeAccess: { enabled } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'nodeagent');
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [`--watch-namespaces=${ns}`],
    env: { BERTH_IMAGE: image },
  });
  for (const name of ['main', 'other'])
    await custom.createNamespacedCustomObject({
      ...group,
      namespace: ns,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        metadata: { name },
        spec: {
          storage: { emptyDir: {} },
          nodeAccess: { enabled: true, certsDir: '/etc/containerd/certs.d' },
        },
      },
    });
});

afterAll(async () => {
  await operator?.stop();
});

describe('the node agent DaemonSet', () => {
  it('appears with nodeAccess, least privilege and berth’s configuration, and NodesReady follows its pods', async () => {
    const ds = await eventually(
      'the DaemonSet',
      () => readDaemonSet('main-node-agent'),
      (d) => !!d,
    );
    const pod = ds!.spec!.template.spec!;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork).toBeUndefined();
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.volumes?.map((v) => v.hostPath?.path ?? v.configMap?.name)).toEqual([
      '/etc/containerd/certs.d',
      '/etc/hosts',
      'main-node-access',
    ]);
    const c = pod.containers[0]!;
    expect(c.image).toBe(image);
    expect(c.args?.slice(0, 3)).toEqual([
      'node-agent',
      `--registry=${ns}/main`,
      '--config-dir=/etc/berth/node-access',
    ]);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.resources?.requests).toEqual({ cpu: '5m', memory: '48Mi' });
    expect(ds!.metadata?.ownerReferences).toBeUndefined();

    const svc = await core.readNamespacedService({ name: 'main', namespace: ns });
    const cm = await eventually(
      'the node-access ConfigMap',
      () => readConfigMap('main-node-access'),
      (m) => !!m,
    );
    const parsed = parseNodeAccessConfig(cm!.data?.['config.json'] ?? '');
    expect(parsed.ok && parsed.value).toEqual({
      version: 1,
      registry: `${ns}/main`,
      server: `https://${svc.spec?.clusterIP}:443`,
      hosts: [
        `main.${ns}.svc:443`,
        `main.${ns}.svc.cluster.local:443`,
        `main.${ns}.svc`,
        `main.${ns}.svc.cluster.local`,
      ],
      aliases: { ip: svc.spec?.clusterIP, names: [`main.${ns}.svc`, `main.${ns}.svc.cluster.local`] },
    });
    const ca = await core.readNamespacedConfigMap({ name: 'main-ca', namespace: ns });
    expect(cm!.data?.['ca.crt']).toBe(ca.data?.['ca.crt']);

    const reg = await eventually(
      'NodesReady=True',
      () => getRegistry('main'),
      (r) => nodesReady(r)?.status === 'True',
    );
    expect(nodesReady(reg)).toMatchObject({
      reason: 'AgentsReady',
      message: '2/2 nodes trust and reach the registry',
    });
    expect(reg.metadata.finalizers).toContain('berth.dev/node-access');
    const pods = await core.listNamespacedPod({
      namespace: ns,
      labelSelector: 'berth.dev/registry=main,app.kubernetes.io/component=node-agent',
    });
    expect(pods.items.map((p) => p.spec?.nodeName).sort()).toEqual(['kwok-node-0', 'kwok-node-1']);
  });

  it('turning nodeAccess off cleans the nodes first, then removes the DaemonSet, ConfigMap, finalizer and condition', async () => {
    await setNodeAccess('main', false);
    const cleaning = await eventually(
      'the DaemonSet in cleanup mode',
      () => readDaemonSet('main-node-agent'),
      (d) => !d || d.spec?.template.spec?.containers[0]?.args?.includes('--cleanup') === true,
    );
    // (kwok makes the cleanup pods ready at once, so the DaemonSet may already be gone.)
    if (cleaning)
      expect(cleaning.spec?.template.spec?.volumes?.map((v) => v.name)).toEqual(['certs-d', 'hosts']);
    await eventually(
      'the DaemonSet gone',
      () => readDaemonSet('main-node-agent'),
      (d) => d === undefined,
    );
    await eventually(
      'the ConfigMap gone',
      () => readConfigMap('main-node-access'),
      (m) => m === undefined,
    );
    const reg = await eventually(
      'finalizer and condition gone',
      () => getRegistry('main'),
      (r) => !r.metadata.finalizers?.includes('berth.dev/node-access') && !nodesReady(r),
    );
    expect(reg.status?.conditions?.find((c) => c.type === 'Ready')).toBeDefined();

    // On again: it all comes back.
    await setNodeAccess('main', true);
    await eventually(
      'the DaemonSet back',
      () => readDaemonSet('main-node-agent'),
      (d) => !!d,
    );
    await eventually(
      'NodesReady back',
      () => getRegistry('main'),
      (r) => nodesReady(r)?.status === 'True',
    );
  });

  it('a deleted Registry waits for the cleanup, then goes with its DaemonSet and ConfigMap', async () => {
    await eventually(
      'the other DaemonSet',
      () => readDaemonSet('other-node-agent'),
      (d) => !!d,
    );
    await custom.deleteNamespacedCustomObject({ ...group, namespace: ns, name: 'other' });
    await eventually(
      'the Registry gone',
      () => getRegistry('other').catch(() => undefined),
      (r) => r === undefined,
    );
    expect(await readDaemonSet('other-node-agent')).toBeUndefined();
    expect(await readConfigMap('other-node-access')).toBeUndefined();
    // The other Registry's agents are untouched.
    expect(await readDaemonSet('main-node-agent')).toBeDefined();
  });

  it('NodesReady is False while a node has no ready agent, and says how many', async () => {
    // A node no kubelet (and no kwok) runs: only the agent, which tolerates every taint, goes there.
    const node = `nodeagent-unmanaged-${ns.slice(-5)}`;
    await core.createNode({
      body: {
        metadata: { name: node, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': node } },
        spec: { taints: [{ key: 'berth.dev/test-only', value: 'nodeagent', effect: 'NoSchedule' }] },
      },
    });
    try {
      const reg = await eventually(
        'NodesReady=False',
        () => getRegistry('main'),
        (r) => nodesReady(r)?.status === 'False',
        120_000,
      );
      expect(nodesReady(reg)).toMatchObject({ reason: 'AgentsNotReady' });
      expect(nodesReady(reg)?.message).toMatch(/^2\/3 node agents ready/);
    } finally {
      await core.deleteNode({ name: node });
    }
    // The DaemonSet controller recounts on a pod event, not on a node's deletion (it has no
    // handler for that), and no kubelet will confirm the end of the agent pod meant for the gone
    // node: remove that pod as the pod garbage collector would, later, and again if the DaemonSet
    // controller recreated it before it saw the node go. Then every remaining node has a ready
    // agent, and NodesReady must say so.
    const reg = await eventually(
      'NodesReady=True once the node and its agent pod are gone',
      async () => {
        for (const p of await agentPodsFor(node))
          await core
            .deleteNamespacedPod({ name: p.metadata?.name ?? '', namespace: ns, gracePeriodSeconds: 0 })
            .catch(() => undefined);
        return getRegistry('main');
      },
      (r) => nodesReady(r)?.status === 'True',
      120_000,
    );
    const nodes = (await core.listNode()).items.length; // the test ground's kwok nodes (2)
    expect(nodes).toBeGreaterThan(0);
    expect(nodesReady(reg)?.message).toMatch(
      new RegExp(`^${nodes}/${nodes} nodes trust and reach the registry`),
    );
    const ds = await readDaemonSet('main-node-agent');
    expect([ds?.status?.desiredNumberScheduled, ds?.status?.numberReady]).toEqual([nodes, nodes]);
  }, 240_000);
});
