// kube-apiserver stops and starts again while the operator runs (a control plane of this suite's
// own; the shared one must not be stopped): the operator stays up, its informers restart with
// backoff and relist when their resourceVersion has expired (410 Gone), it loses and regains
// the Lease, and objects changed around the outage converge without restarting it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { eventually } from '../harness/kube.ts';
import { readConditions } from '../../src/runtime/conditions.ts';
import { installWidgetCRD, widgetGroup, type Widget } from './widget.ts';
import { sample, startFixtureOperator, type FixtureOperator } from './fixture.ts';

const ready = (w: Widget, message: string) =>
  readConditions(w.status).find((c) => c.type === 'Ready')?.status === 'True' &&
  (w.status as { message?: string }).message === message;

describe('an API-server outage', () => {
  let cp: ControlPlane;
  let op: FixtureOperator;
  let custom: k8s.CustomObjectsApi;
  let coreApi: k8s.CoreV1Api;
  const ns = 'default';

  beforeAll(async () => {
    cp = await startControlPlane({ nodes: 1 });
    await installWidgetCRD(cp.kubeconfig);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    coreApi = kc.makeApiClient(k8s.CoreV1Api);
  }, 180_000);
  afterAll(async () => {
    await op?.cleanup();
    await cp?.stop({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' });
  });

  const read = async (name: string) =>
    (await custom.getNamespacedCustomObject({
      group: widgetGroup,
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      name,
    })) as Widget;
  const create = (name: string, message: string) =>
    custom.createNamespacedCustomObject({
      group: widgetGroup,
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      body: { apiVersion: `${widgetGroup}/v1`, kind: 'Widget', metadata: { name }, spec: { message } },
    });
  const setMessage = (name: string, message: string) =>
    custom.patchNamespacedCustomObject(
      {
        group: widgetGroup,
        version: 'v1',
        namespace: ns,
        plural: 'widgets',
        name,
        body: { spec: { message } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );

  it('keeps the operator up, relists after 410, and converges what changed', async () => {
    op = await startFixtureOperator({
      kubeconfig: cp.kubeconfig,
      args: [
        '--leader-elect=true',
        `--leader-election-namespace=${ns}`,
        '--leader-election-lease-duration=6s',
        '--leader-election-renew-deadline=4s',
        '--leader-election-retry-period=1s',
      ],
    });
    await create('before', 'one');
    await eventually(
      'before to converge',
      () => read('before'),
      (w) => ready(w, 'one'),
    );
    // Writes elsewhere move etcd's revision past the informers' resourceVersions, so that after
    // the restart (a fresh watch cache) their watches are answered with 410 Gone.
    for (let i = 0; i < 5; i++)
      await coreApi.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: `unrelated-${i}` } },
      });

    await cp.stopApiServer();
    await new Promise((r) => setTimeout(r, 12_000)); // longer than the lease: leadership is lost
    expect(op.process.child.exitCode).toBeNull();
    await cp.startApiServer();
    // Changed while the operator's watches are still down (they are backing off).
    await setMessage('before', 'two');
    await create('during', 'three');

    await eventually(
      'before to converge on the change',
      () => read('before'),
      (w) => ready(w, 'two'),
      90_000,
    );
    await eventually(
      'during to converge',
      () => read('during'),
      (w) => ready(w, 'three'),
      90_000,
    );
    const cm = await coreApi.readNamespacedConfigMap({ name: 'during-out', namespace: ns });
    expect(cm.data).toEqual({ message: 'three' });

    expect(op.process.child.exitCode).toBeNull();
    const text = await op.metrics();
    const restarts =
      sample(text, 'berth_informer_restarts_total', { resource: 'widgets.runtime-test.berth.dev' }) ?? 0;
    const expired =
      sample(text, 'berth_informer_relists_total', {
        resource: 'widgets.runtime-test.berth.dev',
        reason: 'expired',
      }) ?? 0;
    console.log(`after the outage: widget informer restarts=${restarts}, relists after 410=${expired}`);
    expect(restarts).toBeGreaterThan(0);
    expect(expired).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'berth_leader_is_leader')).toBe(1);
    const logs = op.logs(2000);
    expect(logs).toContain('Lost the leader Lease');
    expect(logs).toContain('Relisted objects');
    // restarts were spaced by backoff, not a tight loop: a handful per informer for a 12 s outage
    expect(restarts).toBeLessThan(15);
    expect(await op.terminate()).toBe(0);
  });
});
