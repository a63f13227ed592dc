// Pull-secret fan-out and Repository access, on the real control plane, then proven on the real
// registry and token service with the Secrets berth wrote. Each test stands on the suite's setup,
// not on another test: a test that changes the shared namespaces or the Registry puts them back,
// and the removal test deletes a Registry of its own.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, statusOf, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { startDataPlane, type DataPlane } from '../harness/dataplane.ts';
import { countTags } from '../../src/repository/tags.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);
const registries = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const repositories = { group: 'berth.dev', version: 'v1alpha1', plural: 'repositories' };
const selectorValue = randomBytes(4).toString('hex');
const pullLabel = { 'berth.dev/pull': selectorValue };
const goneLabel = { 'berth.dev/pull-gone': selectorValue };

let operator: RunningOperator;
let regNs: string;
const ns: Record<string, string> = {};

interface RegistryStatus {
  conditions?: { type: string; status: string; reason: string }[];
  pullSecrets?: {
    selectedNamespaces?: number;
    readyNamespaces?: number;
    failedNamespaces?: { namespace: string; reason: string }[];
  };
}

const registry = () =>
  custom.getNamespacedCustomObject({ ...registries, namespace: regNs, name: 'main' }) as Promise<{
    metadata: k8s.V1ObjectMeta;
    status?: RegistryStatus;
  }>;
const readSecret = (namespace: string, name = 'main-pull') =>
  core.readNamespacedSecret({ name, namespace }).catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });
const pullSecretsOf = async (namespace: string, sa = 'default') =>
  ((await core.readNamespacedServiceAccount({ name: sa, namespace })).imagePullSecrets ?? []).map(
    (r) => r.name,
  );
const label = (namespace: string, labels: Record<string, string | null>) =>
  core.patchNamespace(
    { name: namespace, body: { metadata: { labels } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
const dockerConfig = (s: k8s.V1Secret | undefined) =>
  s?.data?.['.dockerconfigjson'] ? Buffer.from(s.data['.dockerconfigjson'], 'base64').toString() : undefined;

async function createRepository(namespace: string, name: string, spec: Record<string, unknown>) {
  await custom.createNamespacedCustomObject({
    ...repositories,
    namespace,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Repository',
      metadata: { name },
      spec: { registryRef: { name: 'main', namespace: regNs }, ...spec },
    },
  });
}
const repositoryReady = (namespace: string, name: string) =>
  eventually(
    `Repository ${namespace}/${name} to report Ready`,
    () =>
      custom.getNamespacedCustomObject({ ...repositories, namespace, name }) as Promise<{
        metadata: k8s.V1ObjectMeta;
        status?: {
          observedGeneration?: number;
          url?: string;
          conditions?: { type: string; status: string; reason: string; message: string }[];
        };
      }>,
    (r) => r.status?.observedGeneration === r.metadata.generation && (r.status?.conditions?.length ?? 0) > 0,
  );

beforeAll(async () => {
  regNs = await createTestNamespace(kc, 'ps-reg');
  for (const team of ['a', 'b', 'c']) ns[team] = await createTestNamespace(kc, `ps-team-${team}`, pullLabel);
  ns.other = await createTestNamespace(kc, 'ps-other');
  ns.foreign = await createTestNamespace(kc, 'ps-foreign', pullLabel);
  // for the test that labels and unlabels namespaces
  ns.late = await createTestNamespace(kc, 'ps-late');
  ns.leaving = await createTestNamespace(kc, 'ps-leaving', pullLabel);
  // for the removal test's own Registry
  ns.goneA = await createTestNamespace(kc, 'ps-gone-a', goneLabel);
  ns.goneB = await createTestNamespace(kc, 'ps-gone-b', goneLabel);
  // A foreign entry already there, and a foreign Secret of berth's name.
  for (const namespace of [ns.a!, ns.goneA!]) {
    await eventually(
      'the default ServiceAccount',
      () => core.readNamespacedServiceAccount({ name: 'default', namespace }).catch(() => undefined),
      (s) => !!s,
    );
    await core.patchNamespacedServiceAccount(
      { name: 'default', namespace, body: { imagePullSecrets: [{ name: 'theirs' }] } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }
  await core.createNamespacedSecret({
    namespace: ns.foreign!,
    body: { metadata: { name: 'main-pull' }, stringData: { mine: 'not berth' } },
  });
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [
      `--watch-namespaces=${[regNs, ...Object.values(ns)].join(',')}`,
      '--resync-period=3s',
      '--credential-propagation=2s',
    ],
  });
  await custom.createNamespacedCustomObject({
    ...registries,
    namespace: regNs,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'main' },
      spec: {
        storage: { emptyDir: {} },
        tls: { mode: 'SelfSigned', dnsNames: ['localhost'] },
        pullSecrets: {
          namespaceSelector: { matchLabels: pullLabel },
          secretName: 'main-pull',
          serviceAccounts: { names: ['default', 'builder'] },
          rotation: { interval: '1m', gracePeriod: '15s' },
        },
      },
    },
  });
});

afterAll(async () => {
  await operator?.stop();
});

describe('pull-secret fan-out', () => {
  it('writes a Secret into every selected namespace and appends it after foreign ServiceAccount entries', async () => {
    const status = await eventually(
      'four ready namespaces and one failed',
      registry,
      (r) => r.status?.pullSecrets?.readyNamespaces === 4 && r.status?.pullSecrets?.selectedNamespaces === 5,
    );
    expect(status.status?.pullSecrets?.failedNamespaces).toEqual([
      expect.objectContaining({ namespace: ns.foreign, reason: 'SecretNotOwned' }),
    ]);
    for (const team of ['a', 'b', 'c', 'leaving']) {
      const s = await readSecret(ns[team]!);
      expect(s?.type).toBe('kubernetes.io/dockerconfigjson');
      expect(s?.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('berth');
    }
    expect(await readSecret(ns.other!)).toBeUndefined();
    await eventually(
      'the ServiceAccount entries',
      () => pullSecretsOf(ns.a!),
      (l) => l.length === 2,
    );
    expect(await pullSecretsOf(ns.a!)).toEqual(['theirs', 'main-pull']);
    expect(await pullSecretsOf(ns.b!)).toEqual(['main-pull']);
    // each namespace has its own credential
    const users = await Promise.all(
      ['a', 'b'].map(async (t) => JSON.parse(dockerConfig(await readSecret(ns[t]!)) ?? '{}')),
    );
    expect(Object.values(users[0].auths)[0]).not.toEqual(Object.values(users[1].auths)[0]);
  });

  it('leaves a same-named foreign Secret untouched and reports it with an Event in its namespace', async () => {
    const s = await readSecret(ns.foreign!);
    expect(s?.data).toEqual({ mine: Buffer.from('not berth').toString('base64') });
    expect(s?.metadata?.labels ?? {}).toEqual({});
    const ev = await eventually(
      'a SecretNotOwned Event',
      () => events.listNamespacedEvent({ namespace: ns.foreign! }),
      (l) => l.items.some((e) => e.reason === 'SecretNotOwned'),
    );
    expect(ev.items.find((e) => e.reason === 'SecretNotOwned')?.type).toBe('Warning');
    const reg = await eventually('PullSecretsReady=False', registry, (r) =>
      (r.status?.conditions ?? []).some((c) => c.type === 'PullSecretsReady' && c.status === 'False'),
    );
    const cond = reg.status?.conditions?.find((c) => c.type === 'PullSecretsReady');
    expect(cond).toMatchObject({ status: 'False', reason: 'SecretNotOwned' });
  });

  it('follows namespaces that are labelled later, and unlabelled, and ServiceAccounts created later', async () => {
    try {
      await label(ns.late!, pullLabel);
      await eventually(
        'a Secret in the newly labelled namespace',
        () => readSecret(ns.late!),
        (s) => s !== undefined,
      );
      await eventually(
        'the Secret in the namespace that will be unlabelled',
        () => readSecret(ns.leaving!),
        (s) => s !== undefined,
      );
      await label(ns.leaving!, { 'berth.dev/pull': null });
      await eventually(
        'the Secret to leave the unlabelled namespace',
        () => readSecret(ns.leaving!),
        (s) => s === undefined,
      );
      await eventually(
        'berth’s entry to leave its ServiceAccount',
        () => pullSecretsOf(ns.leaving!),
        (l) => !l.includes('main-pull'),
      );
      await core.createNamespacedServiceAccount({
        namespace: ns.late!,
        body: { metadata: { name: 'builder' } },
      });
      await eventually(
        'the later ServiceAccount to get the entry',
        () => pullSecretsOf(ns.late!, 'builder'),
        (l) => l.includes('main-pull'),
      );
      await core.createNamespacedServiceAccount({
        namespace: ns.late!,
        body: { metadata: { name: 'untargeted' } },
      });
      await new Promise((r) => setTimeout(r, 2000));
      expect(await pullSecretsOf(ns.late!, 'untargeted')).toEqual([]);
    } finally {
      // the suite's namespaces as the other tests expect them
      await label(ns.late!, { 'berth.dev/pull': null });
      await label(ns.leaving!, pullLabel);
      for (const name of ['builder', 'untargeted'])
        await core.deleteNamespacedServiceAccount({ name, namespace: ns.late! }).catch(() => undefined);
    }
  });
});

describe('Repository access on the real registry', () => {
  let plane: DataPlane;

  beforeAll(async () => {
    await createRepository(ns.a!, 'web', { pull: { namespaces: [ns.b!] }, push: { secretName: 'web-push' } });
    await createRepository(ns.b!, 'api', {});
    await createRepository(ns.other!, 'private', {});
    await repositoryReady(ns.a!, 'web');
    await eventually(
      'the push Secret',
      () => readSecret(ns.a!, 'web-push'),
      (s) => s !== undefined,
    );
    plane = await startDataPlane(kc, regNs, 'main');
    // the store the token service loads must already know the namespaces' and the push credentials
    await eventually(
      'the credential store to hold the push credential',
      async () => (await plane.secretFiles(regNs, 'main-credentials'))['store.json'] ?? '',
      (store) => store.includes(`push.${ns.a}.web`) && store.includes(`pull.${ns.b}`),
    );
    await plane.syncStore();
    const admin = plane.clientFor((await plane.secretFiles(regNs, 'main-admin'))['.dockerconfigjson']);
    for (const path of [`${ns.a}/web`, `${ns.b}/api`, `${ns.other}/private`])
      await admin.pushRandomImage(`${plane.host}/${path}:v1`);
  });

  afterAll(async () => {
    await plane?.stop();
  });

  it('pushes with the push Secret to its own path only', async () => {
    const pusher = plane.clientFor(dockerConfig(await readSecret(ns.a!, 'web-push')));
    await pusher.pushRandomImage(`${plane.host}/${ns.a}/web:pushed`);
    const elsewhere = await pusher.run([
      'copy',
      `${plane.host}/${ns.a}/web:pushed`,
      `${plane.host}/${ns.b}/api:stolen`,
    ]);
    expect(elsewhere.ok).toBe(false);
    expect(elsewhere.stderr).toMatch(/denied|unauthorized|401|403/i);
  });

  it('pulls what a namespace owns or was granted, and nothing else', async () => {
    await plane.syncStore();
    const teamA = plane.clientFor(dockerConfig(await readSecret(ns.a!)));
    const teamB = plane.clientFor(dockerConfig(await readSecret(ns.b!)));
    expect((await teamA.pull(`${plane.host}/${ns.a}/web:v1`)).ok).toBe(true); // its own
    const denied = await teamA.pull(`${plane.host}/${ns.b}/api:v1`);
    expect(denied.ok).toBe(false); // another team's
    expect(denied.stderr).toMatch(/denied|unauthorized|401|403/i);
    expect((await teamB.pull(`${plane.host}/${ns.b}/api:v1`)).ok).toBe(true); // its own
    expect((await teamB.pull(`${plane.host}/${ns.a}/web:v1`)).ok).toBe(true); // granted by team-a
    expect((await teamB.pull(`${plane.host}/${ns.other}/private:v1`)).ok).toBe(false);
  });

  it('counts a Repository’s tags on the registry with the admin Secret and the CA (status.tags)', async () => {
    const admin = JSON.parse((await plane.secretFiles(regNs, 'main-admin'))['.dockerconfigjson'] ?? '{}') as {
      auths: Record<string, { username: string; password: string }>;
    };
    const credential = Object.values(admin.auths)[0]!;
    const access = { url: `https://${plane.host}`, caPem: plane.caPem, credential };
    const before = await countTags(access, `${ns.b}/api`);
    expect(before).toBeGreaterThanOrEqual(1); // v1, pushed by the setup
    await plane
      .clientFor((await plane.secretFiles(regNs, 'main-admin'))['.dockerconfigjson'])
      .pushRandomImage(`${plane.host}/${ns.b}/api:count-${randomBytes(3).toString('hex')}`);
    expect(await countTags(access, `${ns.b}/api`)).toBe(before + 1);
    expect(await countTags(access, `${ns.b}/nothing-here`)).toBe(0);
  });

  it('gives a path to the older claim and reports PathConflict on the younger one', async () => {
    await createRepository(ns.a!, 'web-again', { path: `${ns.a}/web` });
    const r = await eventually(
      'PathConflict',
      () => repositoryReady(ns.a!, 'web-again'),
      (x) => x.status?.conditions?.some((c) => c.reason === 'PathConflict') ?? false,
    );
    expect(r.status?.conditions?.[0]?.message).toContain(`${ns.a}/web`);
    const winner = await repositoryReady(ns.a!, 'web');
    expect(winner.status?.conditions?.[0]).toMatchObject({ status: 'True', reason: 'Claimed' });
    expect(winner.status?.url).toBe(`main.${regNs}.svc:443/${ns.a}/web`);
  });

  it('rotates a namespace credential while a client keeps pulling: no pull fails, the old one dies after the grace period', async () => {
    const first = dockerConfig(await readSecret(ns.b!));
    const deadline = Date.now() + 150_000;
    let pulls = 0;
    const failures: string[] = [];
    let rotated: string | undefined;
    while (Date.now() < deadline) {
      await plane.syncStore(); // the kubelet refreshes the mounted store …
      const current = dockerConfig(await readSecret(ns.b!)); // … and the pod's pull secret
      const res = await plane.clientFor(current).pull(`${plane.host}/${ns.b}/api:v1`);
      pulls++;
      if (!res.ok) failures.push(res.stderr);
      if (current !== first) {
        rotated = current;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(failures).toEqual([]);
    expect(rotated).toBeDefined();
    expect(pulls).toBeGreaterThan(3);
    // right after the switch the old credential still works …
    await plane.syncStore();
    expect((await plane.clientFor(first).pull(`${plane.host}/${ns.b}/api:v1`)).ok).toBe(true);
    // … and after the 15 s grace period it is refused, while the new one works
    await new Promise((r) => setTimeout(r, 17_000));
    await plane.syncStore();
    const old = await plane.clientFor(first).pull(`${plane.host}/${ns.b}/api:v1`);
    expect(old.ok).toBe(false);
    expect((await plane.clientFor(rotated).pull(`${plane.host}/${ns.b}/api:v1`)).ok).toBe(true);
  }, 240_000);
});

describe('steady state and removal', () => {
  /** Every object berth writes for this suite, with its resourceVersion: any write changes it. */
  const snapshot = async () => {
    const namespaces = [regNs, ...Object.values(ns)];
    const lists = await Promise.all(
      namespaces.flatMap((n) => [
        core.listNamespacedSecret({ namespace: n }),
        core.listNamespacedServiceAccount({ namespace: n }),
        core.listNamespacedConfigMap({ namespace: n }),
        // berth's Events only (the Job, ReplicaSet and kwok controllers record their own)
        events
          .listNamespacedEvent({ namespace: n })
          .then((l) => ({ items: l.items.filter((e) => e.reportingController === 'berth.dev/operator') })),
        custom.listNamespacedCustomObject({ ...repositories, namespace: n }) as Promise<{
          items: { metadata?: k8s.V1ObjectMeta }[];
        }>,
      ]),
    );
    const regs = (await custom.listNamespacedCustomObject({ ...registries, namespace: regNs })) as {
      items: { metadata?: k8s.V1ObjectMeta }[];
    };
    return [...lists, regs]
      .flatMap((l) => l.items as { kind?: string; metadata?: k8s.V1ObjectMeta }[])
      .map((o) => `${o.metadata?.namespace}/${o.metadata?.name}@${o.metadata?.resourceVersion}`)
      .sort();
  };
  const setRotation = (rotation: { interval: string; gracePeriod: string }) =>
    custom.patchNamespacedCustomObject(
      { ...registries, namespace: regNs, name: 'main', body: { spec: { pullSecrets: { rotation } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );

  it('writes nothing when nothing changes: not one write over ten resyncs', async () => {
    // The suite's Registry rotates every minute; a steady cluster is one with no rotation due.
    await setRotation({ interval: '24h', gracePeriod: '15s' });
    try {
      await eventually(
        'the Registry to observe its new generation',
        () =>
          registry() as Promise<{
            metadata: k8s.V1ObjectMeta;
            status?: { conditions?: { observedGeneration?: number }[] };
          }>,
        (r) => (r.status?.conditions ?? []).every((c) => c.observedGeneration === r.metadata.generation),
      );
      // a rotation that was under way ends: its old credential is revoked after the 15 s grace period
      await new Promise((r) => setTimeout(r, 20_000));
      const before = await snapshot();
      // ten resync periods (3 s), and longer than the 30 s in which a repeated Event is updated
      await new Promise((r) => setTimeout(r, 32_000));
      const after = await snapshot();
      expect(after.filter((o) => !before.includes(o))).toEqual([]);
      expect(after).toEqual(before);
    } finally {
      await setRotation({ interval: '1m', gracePeriod: '15s' });
    }
  }, 120_000);

  it('takes its Secrets and only its ServiceAccount entries away when the Registry is deleted', async () => {
    await custom.createNamespacedCustomObject({
      ...registries,
      namespace: regNs,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        metadata: { name: 'gone' },
        spec: {
          storage: { emptyDir: {} },
          tls: { mode: 'SelfSigned', dnsNames: ['localhost'] },
          pullSecrets: {
            namespaceSelector: { matchLabels: goneLabel },
            secretName: 'gone-pull',
            serviceAccounts: { names: ['default'] },
          },
        },
      },
    });
    for (const n of [ns.goneA!, ns.goneB!])
      await eventually(
        `the Secret and the entry in ${n}`,
        async () => ({ secret: await readSecret(n, 'gone-pull'), entries: await pullSecretsOf(n) }),
        ({ secret, entries }) => secret !== undefined && entries.includes('gone-pull'),
      );
    expect(await pullSecretsOf(ns.goneA!)).toEqual(['theirs', 'gone-pull']);
    await custom.deleteNamespacedCustomObject({ ...registries, namespace: regNs, name: 'gone' });
    for (const n of [ns.goneA!, ns.goneB!])
      await eventually(
        `the Secret to leave ${n}`,
        () => readSecret(n, 'gone-pull'),
        (s) => s === undefined,
      );
    await eventually(
      'berth’s entries to leave the ServiceAccounts',
      () => Promise.all([pullSecretsOf(ns.goneA!), pullSecretsOf(ns.goneB!)]),
      ([a, b]) => !a.includes('gone-pull') && !b.includes('gone-pull'),
    );
    expect(await pullSecretsOf(ns.goneA!)).toEqual(['theirs']);
    expect(await pullSecretsOf(ns.goneB!)).toEqual([]);
    await eventually(
      'the Registry to be gone (finalizer released)',
      () =>
        custom.getNamespacedCustomObject({ ...registries, namespace: regNs, name: 'gone' }).then(
          () => 200,
          (err: unknown) => statusOf(err),
        ),
      (code) => code === 404,
    );
    // the suite's own Registry is untouched
    expect(await readSecret(ns.a!)).toBeDefined();
  });
});
