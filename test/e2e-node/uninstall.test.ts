// Leaving, on the real node: deleting a Registry makes its node agent remove what it wrote on the
// node (certs.d folders, the /etc/hosts block) and its pull secrets go from the namespaces and
// ServiceAccounts; `helm uninstall` then leaves nothing of berth running and no object berth made
// (the CRDs stay, by the chart's documented choice). Nothing here is played by the test.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { eventually, statusOf } from '../harness/kube.ts';
import { startNodeGround, type NodeGround } from '../harness/node-ground.ts';
import {
  berthNamespace,
  createBerthObject,
  createNamespace,
  customObjects,
  group,
  installBerth,
  registryReady,
  version,
  log,
  regNs,
} from './fixture.ts';

const reg = 'bye';
const app = 'app';

let ground: NodeGround;
let core: k8s.CoreV1Api;
let endpoint: string;

beforeAll(async () => {
  ground = await startNodeGround({ log });
  core = ground.kc.makeApiClient(k8s.CoreV1Api);
  await installBerth(ground);
  await createNamespace(ground.kc, regNs, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  await createNamespace(ground.kc, app, { 'berth.dev/pull': reg });
  await createBerthObject(
    ground.kc,
    'Registry',
    regNs,
    { name: reg },
    {
      storage: { emptyDir: {} },
      nodeAccess: { enabled: true },
      pullSecrets: { namespaceSelector: { matchLabels: { 'berth.dev/pull': reg } }, secretName: 'bye-pull' },
    },
  );
  endpoint = (await registryReady(ground.kc, regNs, reg)).status!.endpoint!;
  await eventually(
    'the node agent to write certs.d',
    () => ground.node.readFile(`/etc/containerd/certs.d/${endpoint}/hosts.toml`),
    (text) => Boolean(text),
    120_000,
  );
}, 900_000);

afterAll(async () => {
  await ground?.stop();
}, 120_000);

/** Every object labelled as berth's, of the kinds berth creates, in any namespace. */
async function berthObjects(): Promise<string[]> {
  const selector = { labelSelector: 'app.kubernetes.io/managed-by=berth' };
  const apps = ground.kc.makeApiClient(k8s.AppsV1Api);
  const found: string[] = [];
  const add = (kind: string, items: { metadata?: { namespace?: string; name?: string } }[]) =>
    found.push(...items.map((i) => `${kind} ${i.metadata?.namespace}/${i.metadata?.name}`));
  add('Secret', (await core.listSecretForAllNamespaces(selector)).items);
  add('ConfigMap', (await core.listConfigMapForAllNamespaces(selector)).items);
  add('Service', (await core.listServiceForAllNamespaces(selector)).items);
  add('Pod', (await core.listPodForAllNamespaces(selector)).items);
  add('Deployment', (await apps.listDeploymentForAllNamespaces(selector)).items);
  add('DaemonSet', (await apps.listDaemonSetForAllNamespaces(selector)).items);
  return found;
}

describe('uninstall', () => {
  test('deleting the Registry cleans the node and the namespaces; helm uninstall leaves nothing of berth', async () => {
    expect(await ground.node.readFile('/etc/hosts')).toContain(`${reg}.${regNs}.svc`);
    const sa = await core.readNamespacedServiceAccount({ namespace: app, name: 'default' });
    expect(sa.imagePullSecrets).toEqual([{ name: 'bye-pull' }]);

    await customObjects(ground.kc).deleteNamespacedCustomObject({
      group,
      version,
      plural: 'registries',
      namespace: regNs,
      name: reg,
    });
    await eventually(
      'the node agent to remove its certs.d folders',
      () => ground.node.listDir('/etc/containerd/certs.d'),
      (entries) => !entries.some((e) => e.includes(`${reg}.${regNs}`)),
      180_000,
    );
    expect(await ground.node.readFile('/etc/hosts')).not.toContain(`${reg}.${regNs}.svc`);
    await eventually(
      'the pull secret and its ServiceAccount entry to go',
      async () => ({
        secrets: (await core.listNamespacedSecret({ namespace: app })).items.map((s) => s.metadata?.name),
        pullSecrets:
          (await core.readNamespacedServiceAccount({ namespace: app, name: 'default' })).imagePullSecrets ??
          [],
      }),
      (s) => !s.secrets.includes('bye-pull') && s.pullSecrets.length === 0,
      120_000,
    );

    // berth finishes the Registry's deletion (its finalizers) while it still runs, as docs/install.md asks.
    await eventually(
      'the Registry to be gone',
      async () => {
        try {
          await customObjects(ground.kc).getNamespacedCustomObject({
            group,
            version,
            plural: 'registries',
            namespace: regNs,
            name: reg,
          });
          return false;
        } catch (err) {
          return statusOf(err) === 404;
        }
      },
      (gone) => gone,
      120_000,
    );
    await ground.helm(['uninstall', 'berth', '--namespace', berthNamespace, '--wait', '--timeout', '120s']);
    await eventually(
      'every berth pod to go',
      () => core.listNamespacedPod({ namespace: berthNamespace }),
      (l) => l.items.length === 0,
      120_000,
    );
    await eventually('no object of berth left', berthObjects, (left) => left.length === 0, 120_000);
    // What the chart keeps on purpose: the CRDs.
    const crds = await ground.kc.makeApiClient(k8s.ApiextensionsV1Api).listCustomResourceDefinition();
    expect(
      crds.items
        .map((c) => c.metadata?.name)
        .filter((n) => n?.endsWith('.berth.dev'))
        .sort(),
    ).toEqual(['registries.berth.dev', 'repositories.berth.dev', 'retentionpolicies.berth.dev']);
  }, 600_000);
});
