// The longest names Kubernetes allows, end to end: a namespace of 63 characters and a Repository
// named with 253. berth must still hand out a push Secret (its label holds at most 63 characters),
// with a username that the credential store accepts (at most 128), and write a store that a token
// service loads whole, one that grants the push credential its path. A Repository whose default
// path (<namespace>/<name>) is longer than a registry repository name may be says so in its
// status instead.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import winston from 'winston';
import { parseCredentialStoreText } from '../../src/credentials/store.ts';
import { createSigningKey } from '../../src/pki/certificates.ts';
import { handleTokenRequest } from '../../src/token/handler.ts';
import { createTokenMetrics } from '../../src/token/metrics.ts';
import { TokenSigner } from '../../src/token/signer.ts';
import { CredentialStoreFile } from '../../src/token/store-file.ts';
import { createTestNamespace, eventually, statusOf, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { systemClock } from '../../src/runtime/clock.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const repositories = { group: 'berth.dev', version: 'v1alpha1', plural: 'repositories' };
const registries = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };

const longName = 'r'.repeat(253);
const tooLongForDefaultPath = 'd'.repeat(200);

let ns: string;
let operator: RunningOperator;
let dir: string;

interface RepositoryObject {
  metadata: k8s.V1ObjectMeta;
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}
const readRepository = (name: string) =>
  custom.getNamespacedCustomObject({ ...repositories, namespace: ns, name }) as Promise<RepositoryObject>;
const ready = (r: RepositoryObject) => r.status?.conditions?.find((c) => c.type === 'Ready');
const settled = (r: RepositoryObject) =>
  r.status?.observedGeneration === r.metadata.generation && ready(r) !== undefined;
const readSecret = (name: string) =>
  core.readNamespacedSecret({ namespace: ns, name }).catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });
const text = (s: k8s.V1Secret | undefined, key: string) =>
  s?.data?.[key] ? Buffer.from(s.data[key], 'base64').toString('utf8') : undefined;

beforeAll(async () => {
  // createTestNamespace appends "-" and 6 hex digits: 56 + 7 = 63 characters.
  ns = await createTestNamespace(kc, `long-${'n'.repeat(51)}`, { 'berth.dev/pull': 'long' });
  expect(ns).toHaveLength(63);
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-long-names-'));
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [`--watch-namespaces=${ns}`, '--resync-period=3s'],
  });
  await custom.createNamespacedCustomObject({
    ...registries,
    namespace: ns,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'main' },
      spec: {
        storage: { emptyDir: {} },
        tls: { mode: 'SelfSigned', dnsNames: ['localhost'] },
        pullSecrets: {
          namespaceSelector: { matchLabels: { 'berth.dev/pull': 'long' } },
          secretName: 'main-pull',
        },
      },
    },
  });
  for (const [name, spec] of [
    [longName, { path: `${ns}/app`, push: { secretName: 'long-push' } }],
    [tooLongForDefaultPath, { push: { secretName: 'default-path-push' } }],
  ] as const)
    await custom.createNamespacedCustomObject({
      ...repositories,
      namespace: ns,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Repository',
        metadata: { name },
        spec: { registryRef: { name: 'main' }, ...spec },
      },
    });
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the longest names', () => {
  it('a Repository named with 253 characters is Ready with its push Secret', async () => {
    // Ready=False/RegistryNotFound may come first, while the Registry is not yet in the cache.
    const repo = await eventually(
      'the long-named Repository to be Ready',
      () => readRepository(longName),
      (r) => settled(r) && ready(r)?.status === 'True',
    );
    expect(ready(repo)).toMatchObject({ status: 'True', reason: 'Claimed' });
    const secret = await eventually(
      'its push Secret',
      () => readSecret('long-push'),
      (s) => s !== undefined,
    );
    expect(secret?.metadata?.labels?.['berth.dev/repository']?.length).toBeLessThanOrEqual(63);
    const auths = JSON.parse(text(secret, '.dockerconfigjson') ?? '{}') as {
      auths: Record<string, { username: string }>;
    };
    const username = Object.values(auths.auths)[0]?.username ?? '';
    expect(username.length).toBeGreaterThan(0);
    expect(username.length).toBeLessThanOrEqual(128);
  });

  it('the store berth writes loads whole in a token service and grants the push credential its path', async () => {
    const push = await eventually(
      'the push Secret',
      () => readSecret('long-push'),
      (s) => s !== undefined,
    );
    const credential = Object.values(
      (
        JSON.parse(text(push, '.dockerconfigjson') ?? '{}') as {
          auths: Record<string, { username: string; password: string }>;
        }
      ).auths,
    )[0];
    const storeText = await eventually(
      'the credential store to hold the push credential',
      async () => text(await readSecret('main-credentials'), 'store.json'),
      (t) => t !== undefined && t.includes(`"${credential?.username}"`) && t.includes(`"pull.${ns}"`),
    );
    const parsed = parseCredentialStoreText(storeText ?? '');
    expect(parsed.success && parsed.skipped).toEqual([]);

    // As a new token pod would: load the file, refusing nothing.
    const file = path.join(dir, 'store.json');
    writeFileSync(file, storeText ?? '');
    const metrics = createTokenMetrics();
    const logger = winston.createLogger({ silent: true });
    const storeFile = new CredentialStoreFile(file, { logger, metrics, clock: systemClock });
    await storeFile.load();
    expect((await metrics.storeEntriesSkipped.get()).values[0]?.value ?? 0).toBe(0);

    const answer = await handleTokenRequest(
      {
        method: 'GET',
        authorization: `Basic ${Buffer.from(`${credential?.username}:${credential?.password}`).toString('base64')}`,
        params: new URLSearchParams({ scope: `repository:${ns}/app:pull,push` }),
      },
      { issuer: 'test', service: 'test', ttlMs: 60_000 },
      {
        clock: systemClock,
        signer: new TokenSigner((await createSigningKey()).privateKeyPem),
        store: () => storeFile.current(),
        logger,
        metrics,
      },
    );
    expect(answer.status).toBe(200);
    expect(decodeJwt(String(answer.body.token)).access).toEqual([
      { type: 'repository', name: `${ns}/app`, actions: ['pull', 'push'] },
    ]);
  });

  it('a Repository whose default path is too long for a registry says so and gets no push Secret', async () => {
    const repo = await eventually(
      'the Repository with a too long default path to settle',
      () => readRepository(tooLongForDefaultPath),
      settled,
    );
    expect(ready(repo)).toMatchObject({ status: 'False', reason: 'InvalidPath' });
    expect(ready(repo)?.message).toMatch(/264 characters.*spec\.path/);
    expect(await readSecret('default-path-push')).toBeUndefined();
  });
});
