// A burst of pull-Secret events costs the Registry controller a bounded number of reconciles (each
// one rebuilds the credential store from every pull Secret), counted by berth's own
// berth_reconcile_total, never timed; and the Registry still follows a change that matters to its
// store (a new selected namespace's credential joins it, an unselected one's leaves it).
// The test plays a user: it annotates berth's pull Secrets (updates that change nothing berth
// reads) and labels namespaces. Its own control plane, so the operator sees only this suite's objects.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { credentialEventsCoalescing } from '../../src/registry/controller.ts';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { installCRDs } from '../harness/crds.ts';
import { eventually } from '../harness/kube.ts';
import { createRegistry } from '../harness/objects.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';

const selected = 40;
const label = { 'berth.dev/pull': 'burst' };
const regNs = 'burst-reg';
const names = Array.from({ length: selected }, (_, i) => `burst-${i}`);

let cp: ControlPlane;
let operator: RunningOperator;
let core: k8s.CoreV1Api;
let custom: k8s.CustomObjectsApi;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pullStatus = async () =>
  (
    (await custom.getNamespacedCustomObject({
      group: 'berth.dev',
      version: 'v1alpha1',
      plural: 'registries',
      namespace: regNs,
      name: 'main',
    })) as { status?: { pullSecrets?: { readyNamespaces?: number; selectedNamespaces?: number } } }
  ).status?.pullSecrets;

/** Reconciles of `controller` so far, whatever their result. */
async function reconciles(controller: string): Promise<number> {
  const text = await (await fetch(operator.metricsUrl)).text();
  let sum = 0;
  for (const m of text.matchAll(/^berth_reconcile_total\{([^}]*)\} (\d+)/gm))
    if ((m[1] ?? '').includes(`controller="${controller}"`)) sum += Number(m[2]);
  return sum;
}

/** The username of the pull credential berth wrote in `namespace`. */
async function pullUsername(namespace: string): Promise<string> {
  const secret = await core.readNamespacedSecret({ name: 'main-pull', namespace });
  const config = JSON.parse(Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString()) as {
    auths: Record<string, { username: string }>;
  };
  return Object.values(config.auths)[0]?.username ?? '';
}

/** The usernames in the credential store (one document at this size). */
async function storeUsernames(): Promise<string[]> {
  const secret = await core.readNamespacedSecret({ name: 'main-credentials', namespace: regNs });
  const store = JSON.parse(Buffer.from(secret.data?.['store.json'] ?? '', 'base64').toString()) as {
    credentials: { username: string }[];
  };
  return store.credentials.map((c) => c.username);
}

beforeAll(async () => {
  cp = await startControlPlane({ nodes: 1 });
  await installCRDs(cp.kubeconfig);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: regNs } } });
  for (const name of names) await core.createNamespace({ body: { metadata: { name, labels: label } } });
  operator = await startOperator({ kubeconfig: cp.kubeconfig, args: ['--log-level=info'] });
  await createRegistry(kc, regNs, 'main', {
    storage: { emptyDir: {} },
    pullSecrets: { namespaceSelector: { matchLabels: label }, secretName: 'main-pull' },
  });
  await eventually(
    `${selected} ready namespaces`,
    pullStatus,
    (p) => p?.readyNamespaces === selected,
    120_000,
  );
  const usernames = await Promise.all(names.map(pullUsername));
  await eventually(
    'every pull credential in the credential store',
    storeUsernames,
    (stored) => usernames.every((u) => stored.includes(u)),
    60_000,
  );
}, 300_000);

afterAll(async () => {
  await operator?.stop();
  await cp?.stop();
});

describe('pull-Secret events and the Registry controller', () => {
  it(`a burst of ${selected} pull-Secret updates costs the Registry a bounded number of reconciles, the GC none`, async () => {
    // what followed the fan-out has settled: no reconcile for one coalescing period and a half
    let before = await reconciles('registry');
    for (;;) {
      await sleep(credentialEventsCoalescing.maxWaitMs * 1.5);
      const now = await reconciles('registry');
      if (now === before) break;
      before = now;
    }
    const gcBefore = await reconciles('garbage-collection');
    const started = Date.now();
    for (const [i, namespace] of names.entries())
      await core.patchNamespacedSecret(
        {
          name: 'main-pull',
          namespace,
          body: { metadata: { annotations: { 'example.com/burst': `${i}` } } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    const burstMs = Date.now() - started;
    // every event has been handed on by now (at most maxWaitMs after the burst began, quietMs after its end)
    await sleep(burstMs + credentialEventsCoalescing.maxWaitMs + 2000);
    const registryReconciles = (await reconciles('registry')) - before;
    const gcReconciles = (await reconciles('garbage-collection')) - gcBefore;
    const bound = 1 + Math.ceil(burstMs / credentialEventsCoalescing.maxWaitMs);
    console.log(
      `${selected} pull-Secret updates in ${burstMs} ms: ${registryReconciles} Registry reconciles (bound ${bound}), ${gcReconciles} GC reconciles`,
    );
    expect(registryReconciles).toBeGreaterThanOrEqual(1);
    expect(registryReconciles).toBeLessThanOrEqual(bound);
    expect(gcReconciles).toBe(0);
  }, 120_000);

  it('a namespace that becomes selected gets its credential into the store, one that leaves takes it out', async () => {
    await core.createNamespace({ body: { metadata: { name: 'burst-late' } } });
    await core.patchNamespace(
      { name: 'burst-late', body: { metadata: { labels: label } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(
      'the late namespace ready',
      pullStatus,
      (p) => p?.readyNamespaces === selected + 1,
      60_000,
    );
    const late = await pullUsername('burst-late');
    await eventually(
      'its credential in the store',
      storeUsernames,
      (stored) => stored.includes(late),
      60_000,
    );

    const leaving = await pullUsername('burst-3');
    await core.patchNamespace(
      { name: 'burst-3', body: { metadata: { labels: { 'berth.dev/pull': null } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(
      'the unselected credential out of the store',
      storeUsernames,
      (stored) => !stored.includes(leaving),
      60_000,
    );
    expect(await storeUsernames()).toContain(late);
  }, 180_000);
});
