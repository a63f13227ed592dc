// The node agent's DaemonSet on a ground with one real node and one kwok node. On the real node
// the agent is a real pod from berth's image (hack/images.sh), run by the kubelet and containerd,
// and really writes certs.d and /etc/hosts, then really removes them; the test reads the node's
// files. The kwok node (kwok plays its kubelet) stays so that the counts cover more than one node,
// and a third node that nothing runs shows NodesReady=False. The suite checks: the DaemonSet
// appears with spec.nodeAccess, its ConfigMap carries the Service's cluster IP and berth's CA,
// NodesReady follows its pods, and turning nodeAccess off or deleting the Registry first switches
// the agents to cleanup mode (the node's files go), then removes the DaemonSet, the ConfigMap and
// the finalizer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { installCRDs } from '../harness/crds.ts';
import { createTestNamespace, eventually, statusOf } from '../harness/kube.ts';
import { startNodeGround, type NodeGround } from '../harness/node-ground.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { parseNodeAccessConfig } from '../../src/model/node-access-config.ts';

const log = process.env.BERTH_TEST_VERBOSE === '1' ? (l: string) => console.log(l) : () => {};
const group = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const certsDir = '/etc/containerd/certs.d';

let ground: NodeGround;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let custom: k8s.CustomObjectsApi;
let image: string;
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

/** The host names a Registry's agent answers for on the node (one certs.d folder each). */
const hostsOf = (name: string) => [
  `${name}.${ns}.svc:443`,
  `${name}.${ns}.svc.cluster.local:443`,
  `${name}.${ns}.svc`,
  `${name}.${ns}.svc.cluster.local`,
];

/** What the real node holds for a Registry: its certs.d host folders, and whether /etc/hosts names it. */
async function onTheNode(name: string): Promise<{ certsD: string[]; hosts: boolean }> {
  const entries = (await ground.node.listDir(certsDir)) ?? [];
  return {
    certsD: entries.filter((e) => e.startsWith(`${name}.${ns}.svc`)).sort(),
    hosts: ((await ground.node.readFile('/etc/hosts')) ?? '').includes(`${name}.${ns}.svc`),
  };
}

beforeAll(async () => {
  ground = await startNodeGround({ log, kwokNodes: 1, volumes: 0 });
  kc = ground.kc;
  core = kc.makeApiClient(k8s.CoreV1Api);
  apps = kc.makeApiClient(k8s.AppsV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  image = ground.images.berth;
  await installCRDs(ground.cp.kubeconfig);
  ns = await createTestNamespace(kc, 'nodeagent');
  operator = await startOperator({
    kubeconfig: ground.cp.kubeconfig,
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
          nodeAccess: { enabled: true, certsDir },
        },
      },
    });
}, 600_000);

afterAll(async () => {
  await operator?.stop();
  await ground?.stop();
}, 120_000);

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
    expect(pods.items.map((p) => p.spec?.nodeName).sort()).toEqual(['kwok-node-0', ground.node.name].sort());

    // The real agent wrote the node's files: both host forms, with berth's CA, and the aliases.
    // (Ready means this pass wrote them; /etc/hosts is shared with the other Registry's agent, so
    // read until both have passed.)
    const files = await eventually(
      "the agent's files on the node",
      () => onTheNode('main'),
      (f) => f.hosts && f.certsD.length === 4,
    );
    expect(files.certsD).toEqual(hostsOf('main').sort());
    const hostsToml = await ground.node.readFile(`${certsDir}/main.${ns}.svc/hosts.toml`);
    expect(hostsToml).toContain(`server = "https://${svc.spec?.clusterIP}:443"`);
    // (the node's file is read through a shell, which drops the final newline)
    expect((await ground.node.readFile(`${certsDir}/main.${ns}.svc/ca.crt`))?.trim()).toBe(
      ca.data?.['ca.crt']?.trim(),
    );
  });

  it('turning nodeAccess off cleans the nodes first, then removes the DaemonSet, ConfigMap, finalizer and condition', async () => {
    await setNodeAccess('main', false);
    const cleaning = await eventually(
      'the DaemonSet in cleanup mode',
      () => readDaemonSet('main-node-agent'),
      (d) => !d || d.spec?.template.spec?.containers[0]?.args?.includes('--cleanup') === true,
    );
    // (The cleanup pods can be ready, and the DaemonSet gone, before the test looks.)
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
    // The real agent removed what it wrote before berth let its DaemonSet go.
    expect(await onTheNode('main')).toEqual({ certsD: [], hosts: false });

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
    await eventually(
      'the files back on the node',
      () => onTheNode('main'),
      (f) => f.certsD.length === 4 && f.hosts,
    );
  });

  it('a deleted Registry waits for the cleanup, then goes with its DaemonSet and ConfigMap', async () => {
    await eventually(
      'the other DaemonSet',
      () => readDaemonSet('other-node-agent'),
      (d) => !!d,
    );
    await eventually(
      "the other Registry's files on the node",
      () => onTheNode('other'),
      (f) => f.certsD.length === 4 && f.hosts,
    );
    await custom.deleteNamespacedCustomObject({ ...group, namespace: ns, name: 'other' });
    await eventually(
      'the Registry gone',
      () => getRegistry('other').catch(() => undefined),
      (r) => r === undefined,
    );
    expect(await readDaemonSet('other-node-agent')).toBeUndefined();
    expect(await readConfigMap('other-node-access')).toBeUndefined();
    expect(await onTheNode('other')).toEqual({ certsD: [], hosts: false });
    // The other Registry's agents, and its files on the node, are untouched.
    expect(await readDaemonSet('main-node-agent')).toBeDefined();
    expect(await onTheNode('main')).toEqual({ certsD: hostsOf('main').sort(), hosts: true });
  });

  it('NodesReady is False while a node has no ready agent, and says how many', async () => {
    // A node no kubelet (real or kwok) runs: only the agent, which tolerates every taint, goes there.
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
    const nodes = (await core.listNode()).items.length; // the real node and the kwok node
    expect(nodes).toBe(2);
    expect(nodesReady(reg)?.message).toMatch(
      new RegExp(`^${nodes}/${nodes} nodes trust and reach the registry`),
    );
    const ds = await readDaemonSet('main-node-agent');
    expect([ds?.status?.desiredNumberScheduled, ds?.status?.numberReady]).toEqual([nodes, nodes]);
  }, 240_000);
});
