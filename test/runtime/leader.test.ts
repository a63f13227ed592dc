// Two operator processes with leader election: only the leader reconciles; after SIGKILL of the
// leader the other takes over within the lease duration, and no key is ever reconciled by both
// at once (checked from the reconcile trace both processes write). SIGTERM releases the Lease.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { readConditions } from '../../src/runtime/conditions.ts';
import { installWidgetCRD, widgetGroup, type Widget } from './widget.ts';
import { sample, startFixtureOperator, type FixtureOperator } from './fixture.ts';

const kubeconfig = process.env.BERTH_TEST_KUBECONFIG ?? '';
const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
const leaseDurationMs = 4000;

interface Trace {
  key: string;
  pid: number;
  start: number;
  end: number;
}

function traces(file: string): Trace[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Trace);
}

const ready = (w: Widget) => readConditions(w.status).find((c) => c.type === 'Ready')?.status === 'True';

describe('leader election between two operator processes', () => {
  let ns: string;
  let dir: string;
  const ops: FixtureOperator[] = [];

  beforeAll(async () => {
    await installWidgetCRD(kubeconfig);
    ns = await createTestNamespace(kc, 'rt-le');
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-le-'));
  });
  afterAll(async () => {
    for (const op of ops) await op.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const create = (name: string, message: string) =>
    custom.createNamespacedCustomObject({
      group: widgetGroup,
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      body: { apiVersion: `${widgetGroup}/v1`, kind: 'Widget', metadata: { name }, spec: { message } },
    });
  const read = async (name: string) =>
    (await custom.getNamespacedCustomObject({
      group: widgetGroup,
      version: 'v1',
      namespace: ns,
      plural: 'widgets',
      name,
    })) as Widget;
  const lease = () => coordination.readNamespacedLease({ name: 'berth-operator-test', namespace: ns });

  it('lets only the leader reconcile, hands over within the lease duration after SIGKILL, never overlaps', async () => {
    const args = [
      '--leader-elect=true',
      `--leader-election-namespace=${ns}`,
      '--leader-election-id=berth-operator-test',
      `--leader-election-lease-duration=${leaseDurationMs}ms`,
      '--leader-election-renew-deadline=3s',
      '--leader-election-retry-period=500ms',
      `--watch-namespaces=${ns}`,
    ];
    for (const name of ['one', 'two']) {
      ops.push(
        await startFixtureOperator({
          kubeconfig,
          name,
          args,
          env: { BERTH_FIXTURE_TRACE: path.join(dir, `${name}.jsonl`), BERTH_FIXTURE_DELAY_MS: '200' },
        }),
      );
    }
    // every replica becomes ready (caches), only one leads
    for (const op of ops)
      await eventually(
        '/readyz',
        async () => (await fetch(`${op.healthUrl}/readyz`)).status,
        (s) => s === 200,
      );
    const first = await eventually('a leader', lease, (l) => Boolean(l.spec?.holderIdentity));
    for (let i = 0; i < 5; i++) await create(`w${i}`, `m${i}`);
    for (let i = 0; i < 5; i++) await eventually(`w${i} Ready`, () => read(`w${i}`), ready);

    const gauges = await Promise.all(
      ops.map(async (op) => sample(await op.metrics(), 'berth_leader_is_leader')),
    );
    expect(gauges.sort()).toEqual([0, 1]);
    const leaderIndex = (
      await Promise.all(ops.map(async (op) => sample(await op.metrics(), 'berth_leader_is_leader')))
    ).indexOf(1);
    const leader = ops[leaderIndex]!;
    const follower = ops[1 - leaderIndex]!;
    const leaderTrace = path.join(dir, `${leaderIndex === 0 ? 'one' : 'two'}.jsonl`);
    const followerTrace = path.join(dir, `${leaderIndex === 0 ? 'two' : 'one'}.jsonl`);
    expect(traces(leaderTrace).length).toBeGreaterThanOrEqual(5);
    expect(traces(followerTrace)).toEqual([]);
    expect(first.spec?.holderIdentity).toBeTruthy();

    // SIGKILL the leader: no release; the follower must take over once the lease expires.
    leader.kill();
    await leader.process.exited;
    const killedAt = Date.now();
    await create('after-failover', 'new leader');
    await eventually('after-failover Ready', () => read('after-failover'), ready, 30_000);
    const handover = Date.now() - killedAt;
    console.log(`leader handover after SIGKILL took ${handover} ms (lease duration ${leaseDurationMs} ms)`);
    expect(handover).toBeLessThan(leaseDurationMs + 3000);
    const now = await lease();
    expect(now.spec?.holderIdentity).not.toBe(first.spec?.holderIdentity);
    expect(now.spec?.leaseTransitions).toBeGreaterThanOrEqual(1);
    expect(traces(followerTrace).some((t) => t.key === `${ns}/after-failover`)).toBe(true);

    // no key was ever reconciled by both processes at once
    const all = [...traces(leaderTrace), ...traces(followerTrace)];
    for (const a of all)
      for (const b of all)
        if (a.pid !== b.pid && a.key === b.key) expect(a.end <= b.start || b.end <= a.start).toBe(true);

    // SIGTERM: the new leader exits 0 and releases the Lease
    expect(await follower.terminate()).toBe(0);
    const released = await lease();
    expect(released.spec?.holderIdentity ?? '').toBe('');
    expect(follower.logs(400)).toContain('Released the leader Lease');
  });
});
