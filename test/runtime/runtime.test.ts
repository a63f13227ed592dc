// The runtime against the shared real control plane: readiness follows the caches, the Widget
// controller converges through server-side apply and status writes, conflicts are retried,
// malformed objects are reported and never crash the operator, and /metrics moves.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { buildDeps } from '../../src/runtime/deps.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { Manager } from '../../src/runtime/manager.ts';
import { startServers } from '../../src/runtime/server.ts';
import { readConditions } from '../../src/runtime/conditions.ts';
import { objectPath } from '../../src/runtime/kube/resource.ts';
import { installWidgetCRD, widgetController, widgets, widgetGroup, type Widget } from './widget.ts';
import { sample, startFixtureOperator, type FixtureOperator } from './fixture.ts';

const kubeconfig = process.env.BERTH_TEST_KUBECONFIG ?? '';
const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const coreApi = kc.makeApiClient(k8s.CoreV1Api);

const managerOptions = { namespaces: [], workers: 2, resyncPeriodMs: 0, shutdownTimeoutMs: 5000 };

async function createWidget(namespace: string, name: string, message: unknown): Promise<Widget> {
  return (await custom.createNamespacedCustomObject({
    group: widgetGroup,
    version: 'v1',
    namespace,
    plural: 'widgets',
    body: { apiVersion: `${widgetGroup}/v1`, kind: 'Widget', metadata: { name }, spec: { message } },
  })) as Widget;
}

async function readWidget(namespace: string, name: string): Promise<Widget> {
  return (await custom.getNamespacedCustomObject({
    group: widgetGroup,
    version: 'v1',
    namespace,
    plural: 'widgets',
    name,
  })) as Widget;
}

const ready = (w: Widget) => readConditions(w.status).find((c) => c.type === 'Ready');

beforeAll(async () => {
  await installWidgetCRD(kubeconfig);
});

describe('readiness', () => {
  it('answers /readyz 503 until the caches have synced, then 200', async () => {
    const deps = buildDeps({ kubeConfig: kc, logger: silentLogger(), defaultMetrics: false });
    const manager = new Manager(deps, managerOptions);
    // The Gadget CRD does not exist yet: its informer cannot list, so it cannot sync.
    manager.informer({ group: widgetGroup, version: 'v1', plural: 'gadgets', kind: 'Gadget' });
    const servers = await startServers({
      healthAddress: '127.0.0.1:0',
      metricsAddress: '127.0.0.1:0',
      registry: deps.registry,
      logger: deps.logger,
      notReady: () => manager.notReady(),
    });
    try {
      manager.start();
      const url = `http://${servers.addresses.health}`;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1500));
      const before = await fetch(`${url}/readyz`);
      expect(before.status).toBe(503);
      expect(await before.text()).toContain('gadgets.runtime-test.berth.dev');
      await installWidgetCRD(kubeconfig, 'gadgets', 'Gadget');
      await eventually(
        '/readyz to answer 200',
        async () => (await fetch(`${url}/readyz`)).status,
        (s) => s === 200,
        60_000,
      );
      const text = await deps.registry.metrics();
      expect(
        sample(text, 'berth_informer_restarts_total', { resource: 'gadgets.runtime-test.berth.dev' }),
      ).toBeGreaterThan(0);
    } finally {
      await manager.stop();
      await servers.close();
    }
  });
});

describe('the Widget controller in an operator process', () => {
  let op: FixtureOperator;
  let ns: string;

  beforeAll(async () => {
    ns = await createTestNamespace(kc, 'rt');
    // only this suite's namespace: the leader-election suite's Widgets are not this operator's
    op = await startFixtureOperator({
      kubeconfig,
      args: ['--leader-elect=false', `--watch-namespaces=${ns}`],
    });
  });
  afterAll(async () => {
    await op?.cleanup();
  });

  it('converges, and /metrics shows the reconcile counters moving', async () => {
    const text0 = await op.metrics();
    const success0 = sample(text0, 'berth_reconcile_total', { controller: 'widget', result: 'success' }) ?? 0;
    await createWidget(ns, 'a', 'hello');
    await createWidget(ns, 'b', 'world');
    for (const [name, message] of [
      ['a', 'hello'],
      ['b', 'world'],
    ] as const) {
      const w = await eventually(
        `widget ${name} to be Ready`,
        () => readWidget(ns, name),
        (w) => ready(w)?.status === 'True',
      );
      expect((w.status as { message?: string }).message).toBe(message);
      const cm = await coreApi.readNamespacedConfigMap({ name: `${name}-out`, namespace: ns });
      expect(cm.data).toEqual({ message });
      expect(cm.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Widget', name, controller: true });
      expect(cm.metadata?.managedFields?.some((f) => f.manager === 'berth' && f.operation === 'Apply')).toBe(
        true,
      );
    }
    const text1 = await op.metrics();
    expect(
      sample(text1, 'berth_reconcile_total', { controller: 'widget', result: 'success' }),
    ).toBeGreaterThanOrEqual(success0 + 2);
    expect(sample(text1, 'berth_workqueue_adds_total', { name: 'widget' })).toBeGreaterThanOrEqual(2);
    expect(
      sample(text1, 'berth_reconcile_duration_seconds_count', { controller: 'widget' }),
    ).toBeGreaterThanOrEqual(2);
    expect(sample(text1, 'berth_leader_is_leader')).toBeUndefined(); // leader election is off here
    expect(sample(text1, 'nodejs_heap_size_total_bytes')).toBeGreaterThan(0);
  });

  it('writes nothing when nothing changed, and leaves fields it does not own alone', async () => {
    await createWidget(ns, 'steady', 'v1');
    await eventually(
      'steady to be Ready',
      () => readWidget(ns, 'steady'),
      (w) => ready(w)?.status === 'True',
    );
    // Another client adds a label and a data key that berth does not own.
    await coreApi.patchNamespacedConfigMap(
      {
        name: 'steady-out',
        namespace: ns,
        body: { metadata: { labels: { team: 'a' } }, data: { extra: 'kept' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    // Change the spec: berth re-applies its field and keeps the others.
    await custom.patchNamespacedCustomObject(
      {
        group: widgetGroup,
        version: 'v1',
        namespace: ns,
        plural: 'widgets',
        name: 'steady',
        body: { spec: { message: 'v2' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const cm = await eventually(
      'the ConfigMap to carry v2',
      () => coreApi.readNamespacedConfigMap({ name: 'steady-out', namespace: ns }),
      (c) => c.data?.message === 'v2',
    );
    expect(cm.data).toEqual({ message: 'v2', extra: 'kept' });
    expect(cm.metadata?.labels).toMatchObject({ team: 'a', 'app.kubernetes.io/managed-by': 'berth' });
    await eventually(
      'steady to be Ready at generation 2',
      () => readWidget(ns, 'steady'),
      (w) => (w.status as { observedGeneration?: number })?.observedGeneration === 2,
    );
    // Steady state: no further writes to either object.
    const w1 = await readWidget(ns, 'steady');
    const c1 = await coreApi.readNamespacedConfigMap({ name: 'steady-out', namespace: ns });
    await new Promise((r) => setTimeout(r, 3000));
    const w2 = await readWidget(ns, 'steady');
    const c2 = await coreApi.readNamespacedConfigMap({ name: 'steady-out', namespace: ns });
    expect(w2.metadata?.resourceVersion).toBe(w1.metadata?.resourceVersion);
    expect(c2.metadata?.resourceVersion).toBe(c1.metadata?.resourceVersion);
  });

  it('repairs an owned object that someone deleted', async () => {
    await createWidget(ns, 'repair', 'x');
    await eventually(
      'repair-out to exist',
      () => coreApi.readNamespacedConfigMap({ name: 'repair-out', namespace: ns }),
      (c) => c.data?.message === 'x',
    );
    await coreApi.deleteNamespacedConfigMap({ name: 'repair-out', namespace: ns });
    await eventually(
      'repair-out to be re-created',
      () => coreApi.readNamespacedConfigMap({ name: 'repair-out', namespace: ns }).catch(() => undefined),
      (c) => c?.data?.message === 'x',
    );
  });

  it('reports a malformed object with a condition and an Event, never crashes, and keeps reconciling others', async () => {
    // status garbage written by another client: replaced by a well-formed status
    await createWidget(ns, 'garbage-status', 'ok');
    await eventually(
      'garbage-status to be Ready',
      () => readWidget(ns, 'garbage-status'),
      (w) => ready(w)?.status === 'True',
    );
    const w = await readWidget(ns, 'garbage-status');
    await custom.replaceNamespacedCustomObjectStatus({
      group: widgetGroup,
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      name: 'garbage-status',
      body: { ...w, status: { conditions: 'garbage', observedGeneration: 'yes' } },
    });
    await eventually(
      'garbage-status to be repaired',
      () => readWidget(ns, 'garbage-status'),
      (w) => ready(w)?.status === 'True',
    );

    // a spec the controller cannot use: Ready=False with the reason, and a Warning Event
    await createWidget(ns, 'bad-spec', { not: 'a string' });
    const bad = await eventually(
      'bad-spec to be Ready=False',
      () => readWidget(ns, 'bad-spec'),
      (w) => ready(w)?.status === 'False',
    );
    expect(ready(bad)).toMatchObject({ reason: 'InvalidSpec', message: 'spec.message must be a string' });
    const events = kc.makeApiClient(k8s.EventsV1Api);
    const ev = await eventually(
      'a Warning Event about bad-spec',
      async () => (await events.listNamespacedEvent({ namespace: ns })).items,
      (items) => items.some((e) => e.regarding?.name === 'bad-spec' && e.reason === 'InvalidSpec'),
    );
    const event = ev.find((e) => e.regarding?.name === 'bad-spec');
    expect(event).toMatchObject({
      type: 'Warning',
      action: 'Reconcile',
      reportingController: 'berth.dev/operator',
    });

    // the operator is still up and still reconciling
    expect(op.process.child.exitCode).toBeNull();
    await createWidget(ns, 'after', 'still working');
    await eventually(
      'after to be Ready',
      () => readWidget(ns, 'after'),
      (w) => ready(w)?.status === 'True',
    );
    const text = await op.metrics();
    expect(
      sample(text, 'berth_reconcile_total', { controller: 'widget', result: 'terminal' }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('a conflicting writer between read and write', () => {
  it("makes the reconcile retry and converge, keeping the other writer's change", async () => {
    const ns = await createTestNamespace(kc, 'rt-conflict');
    const deps = buildDeps({ kubeConfig: kc, logger: silentLogger(), defaultMetrics: false });
    const manager = new Manager(deps, { ...managerOptions, namespaces: [ns] });
    let interfered = 0;
    widgetController(deps, manager, {
      beforeStatusWrite: async (widget) => {
        if (interfered++ > 0) return;
        // Another client changes the Widget after the controller read it from its cache.
        await deps.client.mergePatch(objectPath(widgets, widget.metadata?.name ?? '', ns), {
          metadata: { annotations: { 'example.com/touched-by': 'someone-else' } },
        });
      },
    });
    manager.start();
    try {
      await createWidget(ns, 'contended', 'final');
      const w = await eventually(
        'contended to be Ready',
        () => readWidget(ns, 'contended'),
        (w) => ready(w)?.status === 'True',
      );
      expect((w.status as { message?: string }).message).toBe('final');
      expect(w.metadata?.annotations?.['example.com/touched-by']).toBe('someone-else');
      expect(interfered).toBeGreaterThanOrEqual(2);
      const text = await deps.registry.metrics();
      expect(
        sample(text, 'berth_reconcile_total', { controller: 'widget', result: 'conflict' }),
      ).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'berth_workqueue_retries_total', { name: 'widget' })).toBeGreaterThanOrEqual(1);
    } finally {
      await manager.stop();
    }
  });
});
