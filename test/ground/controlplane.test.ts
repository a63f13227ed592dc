// First proof that the test ground is real: CRDs, controllers, scheduling, kwok and the garbage
// collector of a real control plane.
import { describe, expect, it, beforeAll } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, statusOf, testKubeConfig } from '../harness/kube.ts';
import { installCRDs } from '../harness/crds.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'ground');
});

describe('the test ground control plane', () => {
  it('reports the pinned Kubernetes version', async () => {
    const version = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.(3[4-9]|[4-9]\d)\.\d+$/);
  });

  it('round-trips an object of an installed CRD', async () => {
    const crd: k8s.V1CustomResourceDefinition = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.ground.test.berth.dev' },
      spec: {
        group: 'ground.test.berth.dev',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    properties: { size: { type: 'integer', _default: 3 }, colour: { type: 'string' } },
                  },
                },
              },
            },
          },
        ],
      },
    };
    await installCRDs(process.env.BERTH_TEST_KUBECONFIG ?? '', [crd]);
    const created = (await custom.createNamespacedCustomObject({
      group: 'ground.test.berth.dev',
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      body: {
        apiVersion: 'ground.test.berth.dev/v1',
        kind: 'Widget',
        metadata: { name: 'w1' },
        spec: { colour: 'red' },
      },
    })) as { spec: { size: number; colour: string } };
    expect(created.spec).toEqual({ colour: 'red', size: 3 });
    const read = (await custom.getNamespacedCustomObject({
      group: 'ground.test.berth.dev',
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      name: 'w1',
    })) as { spec: { size: number; colour: string } };
    expect(read.spec).toEqual({ colour: 'red', size: 3 });
  });

  it('runs a Deployment: a ReplicaSet, and a pod that kwok reports Running on a fake node', async () => {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'web', image: 'registry.example/web:1' }] },
          },
        },
      },
    });
    const rs = await eventually(
      'a ReplicaSet for the Deployment',
      () => apps.listNamespacedReplicaSet({ namespace: ns }),
      (l) => l.items.length === 1,
    );
    expect(rs.items[0]?.metadata?.ownerReferences?.[0]?.name).toBe('web');
    const pods = await eventually(
      'a Running pod',
      () => core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' }),
      (l) => l.items.length === 1 && l.items[0]?.status?.phase === 'Running',
    );
    expect(pods.items[0]?.spec?.nodeName).toMatch(/^kwok-node-/);
    const dep = await eventually(
      'the Deployment to report one available replica',
      () => apps.readNamespacedDeployment({ name: 'web', namespace: ns }),
      (d) => d.status?.availableReplicas === 1,
    );
    expect(dep.status?.readyReplicas).toBe(1);
  });

  it('garbage-collects owned objects when their owner is deleted', async () => {
    const owner = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'owner' } },
    });
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: {
          name: 'owned',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '' },
          ],
        },
        stringData: { a: 'b' },
      },
    });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns });
    await eventually(
      'the owned Secret to be garbage-collected',
      async () => {
        try {
          await core.readNamespacedSecret({ name: 'owned', namespace: ns });
          return 200;
        } catch (err) {
          return statusOf(err);
        }
      },
      (status) => status === 404,
    );
  });
});
