// A Repository whose spec.path lies in another namespace, on an API server WITHOUT the Repository
// admission policy (crds/admission/; as with crds.enabled=false or a policy someone deleted): the
// controller enforces the rule itself. The rogue Repository is created first, so it is the older
// claim, and it asks for a push secret and for the path to be pulled by its own namespace. What
// must hold: the rightful Repository owns the path (Ready), the rogue one reports
// Ready=False/PathOutsideNamespace and gets no push Secret, and the credential store berth writes
// for the token service grants the rogue namespace nothing on the path (checked on the store
// Secret, and by asking berth's token endpoint logic for a token with the rogue namespace's pull
// secret).
//
// This file starts a control plane of its own, with the CRDs and without the admission policy: the
// shared one may have the policy installed by the API suites, and removing it there would open a
// window for every other suite of the run.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import winston from 'winston';
import {
  compileCredentialStore,
  parseCredentialStoreText,
  type CredentialStore,
} from '../../src/credentials/store.ts';
import { createSigningKey } from '../../src/pki/certificates.ts';
import { handleTokenRequest } from '../../src/token/handler.ts';
import { createTokenMetrics } from '../../src/token/metrics.ts';
import { TokenSigner } from '../../src/token/signer.ts';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { installCRDs } from '../harness/crds.ts';
import { createTestNamespace, eventually, statusOf } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { systemClock } from '../../src/runtime/clock.ts';

const repositories = { group: 'berth.dev', version: 'v1alpha1', plural: 'repositories' };
const registries = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const pullLabel = { 'berth.dev/pull': 'main' };

let cp: ControlPlane;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let custom: k8s.CustomObjectsApi;
let events: k8s.EventsV1Api;
let operator: RunningOperator;
let regNs: string;
let teamA: string;
let teamB: string;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface RepositoryObject {
  metadata: k8s.V1ObjectMeta;
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

const readRepository = (namespace: string, name: string) =>
  custom.getNamespacedCustomObject({ ...repositories, namespace, name }) as Promise<RepositoryObject>;
const ready = (r: RepositoryObject) => r.status?.conditions?.find((c) => c.type === 'Ready');
const settled = (r: RepositoryObject) =>
  r.status?.observedGeneration === r.metadata.generation && ready(r) !== undefined;

const readSecret = (namespace: string, name: string) =>
  core.readNamespacedSecret({ namespace, name }).catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });
const text = (s: k8s.V1Secret | undefined, key: string) =>
  s?.data?.[key] ? Buffer.from(s.data[key], 'base64').toString('utf8') : undefined;

async function credentialStore(): Promise<CredentialStore | undefined> {
  const raw = text(await readSecret(regNs, 'main-credentials'), 'store.json');
  if (raw === undefined) return undefined;
  const parsed = parseCredentialStoreText(raw);
  if (!parsed.success) throw new Error(parsed.error);
  return parsed.data;
}
const grantsOf = (store: CredentialStore | undefined, username: string) =>
  (store?.credentials ?? [])
    .filter((c) => c.username === username)
    .flatMap((c) => c.grants.flatMap((g) => g.repositories));

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

beforeAll(async () => {
  cp = await startControlPlane({ nodes: 0 });
  await installCRDs(cp.kubeconfig); // the CRDs only: crds/admission/ is not applied
  kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  events = kc.makeApiClient(k8s.EventsV1Api);
  regNs = await createTestNamespace(kc, 'pon-reg');
  teamA = await createTestNamespace(kc, 'pon-a', pullLabel);
  teamB = await createTestNamespace(kc, 'pon-b', pullLabel);
  operator = await startOperator({
    kubeconfig: cp.kubeconfig,
    args: [`--watch-namespaces=${[regNs, teamA, teamB].join(',')}`, '--resync-period=3s'],
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
        pullSecrets: { namespaceSelector: { matchLabels: pullLabel }, secretName: 'main-pull' },
      },
    },
  });
  // The rogue claim first: without the policy the API server accepts it, and it is the older one.
  await createRepository(teamB, 'steal', {
    path: `${teamA}/web`,
    pull: { namespaces: [teamB] },
    push: { secretName: 'steal-push' },
  });
  await new Promise((r) => setTimeout(r, 1_100)); // creation timestamps have 1 s resolution
  await createRepository(teamA, 'web', { push: { secretName: 'web-push' } });
}, 240_000);

afterAll(async () => {
  await operator?.stop();
  await cp?.stop();
}, 60_000);

describe('a Repository whose path is outside its namespace, without the admission policy', () => {
  it('was accepted by the API server (the policy is really absent here)', async () => {
    const rogue = await readRepository(teamB, 'steal');
    expect(rogue.metadata.name).toBe('steal');
  });

  it('reports Ready=False with reason PathOutsideNamespace, and gets no push Secret', async () => {
    const rogue = await eventually(
      'the rogue Repository to settle',
      () => readRepository(teamB, 'steal'),
      settled,
    );
    expect(ready(rogue)).toMatchObject({ status: 'False', reason: 'PathOutsideNamespace' });
    expect(ready(rogue)?.message).toContain(`must start with "${teamB}/"`);
    expect(await readSecret(teamB, 'steal-push')).toBeUndefined();
  });

  it('leaves the path to the rightful, younger Repository, which is Ready with its push Secret', async () => {
    // Ready=False/RegistryNotFound may come first, while the Registry is not yet in the cache.
    const rightful = await eventually(
      'the rightful Repository to be Ready',
      () => readRepository(teamA, 'web'),
      (r) => settled(r) && ready(r)?.status === 'True',
    );
    expect(ready(rightful)).toMatchObject({ status: 'True', reason: 'Claimed' });
    const push = await eventually(
      'the rightful push Secret',
      () => readSecret(teamA, 'web-push'),
      (s) => s !== undefined,
    );
    expect(push?.type).toBe('kubernetes.io/dockerconfigjson');
  });

  it('grants the rogue namespace nothing in the credential store, and its pull secret no token access', async () => {
    const pullA = `pull.${teamA}`;
    const pullB = `pull.${teamB}`;
    const store = await eventually(
      'a store with both namespaces’ pull credentials and the rightful push credential',
      credentialStore,
      (s) =>
        grantsOf(s, pullA).includes(`${teamA}/web`) &&
        grantsOf(s, `push.${teamA}.web`).includes(`${teamA}/web`) &&
        (s?.credentials ?? []).some((c) => c.username === pullB),
    );
    // Wait out any pending rewrite, then read what is in force.
    await new Promise((r) => setTimeout(r, 3_000));
    const final = (await credentialStore()) ?? store;
    expect(grantsOf(final, pullB)).toEqual([]);
    expect(final?.credentials.filter((c) => c.username.startsWith(`push.${teamB}.`))).toEqual([]);
    const holders = (final?.credentials ?? [])
      .filter((c) => c.username !== 'admin' && c.grants.some((g) => g.repositories.includes(`${teamA}/web`)))
      .map((c) => c.username);
    expect([...new Set(holders)].sort()).toEqual([pullA, `push.${teamA}.web`].sort()); // nobody else

    // What the rogue namespace's workloads would get from the token service: nothing on the path.
    const dockerConfig = JSON.parse(
      text(await readSecret(teamB, 'main-pull'), '.dockerconfigjson') ?? '{}',
    ) as {
      auths: Record<string, { username: string; password: string }>;
    };
    const credential = Object.values(dockerConfig.auths)[0];
    expect(credential?.username).toBe(pullB);
    const signer = new TokenSigner((await createSigningKey()).privateKeyPem);
    const answer = await handleTokenRequest(
      {
        method: 'GET',
        authorization: `Basic ${Buffer.from(`${credential?.username}:${credential?.password}`).toString('base64')}`,
        params: new URLSearchParams({ scope: `repository:${teamA}/web:pull,push` }),
      },
      { issuer: 'test', service: 'test', ttlMs: 60_000 },
      {
        clock: systemClock,
        signer,
        store: () => compileCredentialStore(final as CredentialStore),
        logger: winston.createLogger({ silent: true }),
        metrics: createTokenMetrics(),
      },
    );
    expect(answer.status).toBe(200); // a valid credential...
    expect(decodeJwt(String(answer.body.token)).access).toEqual([]); // ...with no access to the path
  });

  it('tells the rogue Repository’s namespace once, with a Warning Event that is not repeated on every resync', async () => {
    const list = async () =>
      (await events.listNamespacedEvent({ namespace: teamB })).items.filter(
        (e) => e.regarding?.name === 'steal' && e.reason === 'PathOutsideNamespace',
      );
    const first = await eventually('the PathOutsideNamespace Event', list, (l) => l.length > 0);
    expect(first).toHaveLength(1);
    expect(first[0]?.type).toBe('Warning');
    // A repeat right after the first (a reconcile on a cache that had not seen the status yet) is
    // folded into the Event's series at most 30 s after it was written: let that pass, then
    // watch ten resyncs (3 s) and more than one series interval without a single write.
    const written = new Date(first[0]?.eventTime ?? Date.now()).getTime();
    await new Promise((r) => setTimeout(r, Math.max(0, written + 31_000 - Date.now())));
    const before = (await list()).map((e) => `${e.metadata?.name}@${e.metadata?.resourceVersion}`);
    await new Promise((r) => setTimeout(r, 31_000));
    expect((await list()).map((e) => `${e.metadata?.name}@${e.metadata?.resourceVersion}`)).toEqual(before);
  }, 120_000);

  it('waits for a Registry that does not exist yet (a GitOps sync in the wrong order), without a Warning, then claims', async () => {
    await custom.createNamespacedCustomObject({
      ...repositories,
      namespace: teamA,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Repository',
        metadata: { name: 'early' },
        spec: { registryRef: { name: 'later', namespace: regNs } },
      },
    });
    const waiting = await eventually(
      'the early Repository to wait',
      () => readRepository(teamA, 'early'),
      settled,
    );
    expect(ready(waiting)).toMatchObject({ status: 'False', reason: 'RegistryNotFound' });
    expect(ready(waiting)?.message).toContain(`Registry ${regNs}/later does not exist`);
    await custom.createNamespacedCustomObject({
      ...registries,
      namespace: regNs,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        metadata: { name: 'later' },
        spec: { storage: { emptyDir: {} }, tls: { mode: 'SelfSigned', dnsNames: ['localhost'] } },
      },
    });
    const claimed = await eventually(
      'the early Repository to claim its path once its Registry exists',
      () => readRepository(teamA, 'early'),
      (r) => ready(r)?.status === 'True',
    );
    expect(ready(claimed)).toMatchObject({ reason: 'Claimed' });
    const warnings = (await events.listNamespacedEvent({ namespace: teamA })).items.filter(
      (e) => e.regarding?.name === 'early' && e.type === 'Warning',
    );
    expect(warnings).toEqual([]); // waiting is not a problem the user must fix
  }, 60_000);
});
