// The runtime reports typed errors on the object, against the real API server: a controller with
// `reportTo` that throws a TerminalError gets Ready=False with the error's reason written as its
// status owner, and one Warning Event however often it is reconciled again; one that throws a
// WaitingError gets Ready=False with its reason and the status fields it carries, no Warning, and
// is reconciled again after its delay. The controller here is a test controller over a test
// resource (Gizmo, the Widget CRD under another name); the Repository suites show the same for
// berth's own controller.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { buildDeps } from '../../src/runtime/deps.ts';
import { TerminalError, WaitingError } from '../../src/runtime/errors.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { Manager } from '../../src/runtime/manager.ts';
import { readConditions } from '../../src/runtime/conditions.ts';
import { collectionPath, objectPath, type ResourceType } from '../../src/runtime/kube/resource.ts';
import type { StatusOwner } from '../../src/runtime/status-owner.ts';
import { installWidgetCRD, widgetGroup, type Widget } from './widget.ts';
import { sample } from './fixture.ts';

const kubeconfig = process.env.BERTH_TEST_KUBECONFIG ?? '';
const kc = testKubeConfig();
const eventsApi = kc.makeApiClient(k8s.EventsV1Api);
const gizmos: ResourceType<Widget> = { group: widgetGroup, version: 'v1', plural: 'gizmos', kind: 'Gizmo' };
const owner: StatusOwner = {
  manager: 'berth-gizmo',
  fields: ['observedGeneration', 'phase'],
  conditions: ['Ready'],
};

const deps = buildDeps({ kubeConfig: kc, logger: silentLogger(), defaultMetrics: false });
let manager: Manager;
let ns: string;
let reconciles = new Map<string, number>();

const read = (name: string) => deps.client.get<Widget>(objectPath(gizmos, name, ns));
const ready = (w: Widget) => readConditions(w.status).find((c) => c.type === 'Ready');
const create = (name: string, message: string) =>
  deps.client.create<Widget>(collectionPath(gizmos, ns), {
    apiVersion: `${widgetGroup}/v1`,
    kind: 'Gizmo',
    metadata: { name, namespace: ns },
    spec: { message },
  });
const warnings = async (name: string) =>
  (await eventsApi.listNamespacedEvent({ namespace: ns })).items.filter(
    (e) => e.regarding?.name === name && e.type === 'Warning',
  );

beforeAll(async () => {
  await installWidgetCRD(kubeconfig, 'gizmos', 'Gizmo');
  ns = await createTestNamespace(kc, 'report');
  manager = new Manager(deps, { namespaces: [ns], workers: 2, resyncPeriodMs: 500, shutdownTimeoutMs: 5000 });
  const cache = manager.informer(gizmos);
  manager.add({
    name: 'gizmo',
    for: cache,
    reportTo: { type: gizmos, owner },
    async reconcile({ name, namespace }) {
      reconciles.set(name, (reconciles.get(name) ?? 0) + 1);
      const gizmo = cache.get(name, namespace);
      const message = gizmo?.spec?.message;
      if (message === 'terminal') throw new TerminalError('BadMessage', 'spec.message may not be "terminal"');
      if (message === 'wait')
        throw new WaitingError('NotYet', 'waiting for something outside', 300, {
          status: { phase: 'Waiting' },
        });
    },
  });
  manager.start();
  reconciles = new Map();
});

afterAll(async () => {
  await manager?.stop();
});

describe('typed errors reported by the runtime', () => {
  it('a TerminalError: Ready=False with its reason, one Warning however often it is reconciled', async () => {
    await create('bad', 'terminal');
    const w = await eventually(
      'Ready=False on bad',
      () => read('bad'),
      (w) => ready(w)?.status === 'False',
    );
    expect(ready(w)).toMatchObject({ reason: 'BadMessage', message: 'spec.message may not be "terminal"' });
    expect((w.status as { observedGeneration?: number }).observedGeneration).toBe(w.metadata?.generation);
    await eventually(
      'a few resyncs of bad',
      async () => reconciles.get('bad') ?? 0,
      (n) => n >= 5,
    );
    const list = await warnings('bad');
    expect(list.map((e) => [e.reason, e.series?.count ?? 1])).toEqual([['BadMessage', 1]]);
    expect(
      sample(await deps.registry.metrics(), 'berth_reconcile_total', {
        controller: 'gizmo',
        result: 'terminal',
      }),
    ).toBeGreaterThanOrEqual(5);
  }, 30_000);

  it('a WaitingError: Ready=False with its reason and the fields it carries, no Warning, reconciled again', async () => {
    await create('later', 'wait');
    const w = await eventually(
      'Ready=False on later',
      () => read('later'),
      (w) => ready(w)?.status === 'False',
    );
    expect(ready(w)).toMatchObject({ reason: 'NotYet' });
    expect((w.status as { phase?: string }).phase).toBe('Waiting');
    await eventually(
      'retries of later',
      async () => reconciles.get('later') ?? 0,
      (n) => n >= 4,
    );
    expect(await warnings('later')).toEqual([]);
    const fields = (w.metadata?.managedFields ?? []).filter((m) => m.subresource === 'status');
    expect(fields.map((m) => `${m.manager}/${m.operation}`)).toEqual(['berth-gizmo/Apply']);
  }, 30_000);
});
