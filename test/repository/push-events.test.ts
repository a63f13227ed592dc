// Repository.status.lastPushTime from the registry's own push notifications: the operator runs
// with its push-event listener on loopback, the real registry runs with the configuration Secret
// berth generated (which names that listener and carries the Registry's events token), an image is
// pushed with the admin Secret, and the time appears in the API server and moves forward on the
// next push. A request with a wrong token is refused and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { freePort } from '../harness/net.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { startDataPlane, type DataPlane } from '../harness/dataplane.ts';
import type { RegistryClient } from '../harness/registry.ts';

const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const registries = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const repositories = { group: 'berth.dev', version: 'v1alpha1', plural: 'repositories' };

let ns: string;
let eventsUrl: string;
let operator: RunningOperator;
let plane: DataPlane;
let admin: RegistryClient;

interface RepoStatus {
  lastPushTime?: string;
  conditions?: { type: string; status: string }[];
}
const repoStatus = async (name: string): Promise<RepoStatus> =>
  (
    (await custom.getNamespacedCustomObject({ ...repositories, namespace: ns, name })) as {
      status?: RepoStatus;
    }
  ).status ?? {};

const post = (token: string | undefined, body: unknown) =>
  fetch(`${eventsUrl}/registry-events/${ns}/main`, {
    method: 'POST',
    headers: {
      'content-type': 'application/vnd.docker.distribution.events.v2+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'push-events');
  const port = await freePort();
  eventsUrl = `http://127.0.0.1:${port}`;
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [
      `--watch-namespaces=${ns}`,
      `--events-bind-address=127.0.0.1:${port}`,
      `--registry-events-url=${eventsUrl}`,
    ],
    env: { BERTH_IMAGE: 'ghcr.io/berth-dev/berth:test' },
  });
  await custom.createNamespacedCustomObject({
    ...registries,
    namespace: ns,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'main' },
      spec: { storage: { emptyDir: {} }, tls: { mode: 'SelfSigned', dnsNames: ['localhost'] } },
    },
  });
  await custom.createNamespacedCustomObject({
    ...repositories,
    namespace: ns,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Repository',
      metadata: { name: 'web' },
      spec: { registryRef: { name: 'main' } },
    },
  });
  await eventually(
    'the Repository to claim its path',
    () => repoStatus('web'),
    (s) => s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    60_000,
  );
  plane = await startDataPlane(kc, ns, 'main');
  admin = plane.clientFor((await plane.secretFiles(ns, 'main-admin'))['.dockerconfigjson']);
}, 180_000);

afterAll(async () => {
  await plane?.stop();
  await operator?.stop();
});

describe('Repository.status.lastPushTime', () => {
  it('is rendered into the registry configuration with the Registry’s events token', async () => {
    const files = await plane.secretFiles(ns, 'main-registry-config');
    const token = files['events-token'] ?? '';
    expect(token.length).toBeGreaterThanOrEqual(32);
    const config = parse(files['config.yml'] ?? '') as {
      notifications?: { endpoints: { url: string; headers: Record<string, string[]> }[] };
    };
    expect(config.notifications?.endpoints[0]?.url).toBe(`${eventsUrl}/registry-events/${ns}/main`);
    expect(config.notifications?.endpoints[0]?.headers.Authorization).toEqual([`Bearer ${token}`]);
  });

  it('appears after a push and moves forward on the next one', async () => {
    const before = Date.now();
    await admin.pushRandomImage(`${plane.host}/${ns}/web:v1`, { layers: 1, layerBytes: 1024 });
    const first = await eventually(
      'lastPushTime after the first push',
      () => repoStatus('web'),
      (s) => s.lastPushTime !== undefined,
      30_000,
    );
    const t1 = Date.parse(first.lastPushTime ?? '');
    expect(t1).toBeGreaterThanOrEqual(before - 2_000); // the registry's clock is this machine's
    expect(t1).toBeLessThanOrEqual(Date.now());

    await new Promise((r) => setTimeout(r, 1_100));
    await admin.pushRandomImage(`${plane.host}/${ns}/web:v2`, { layers: 1, layerBytes: 1024 });
    const second = await eventually(
      'lastPushTime to move forward after the second push',
      () => repoStatus('web'),
      (s) => Date.parse(s.lastPushTime ?? '') > t1,
      30_000,
    );
    expect(Date.parse(second.lastPushTime ?? '') - t1).toBeGreaterThanOrEqual(1_000);

    // a pull is not a push
    expect((await admin.pull(`${plane.host}/${ns}/web:v1`)).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await repoStatus('web')).lastPushTime).toBe(second.lastPushTime);
  });

  it('refuses a wrong or missing token with 401 and changes nothing', async () => {
    const was = (await repoStatus('web')).lastPushTime;
    const forged = {
      events: [
        {
          id: 'forged',
          timestamp: '2099-01-01T00:00:00Z',
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: 'sha256:00',
            repository: `${ns}/web`,
            tag: 'v9',
          },
        },
      ],
    };
    expect((await post('not-the-token', forged)).status).toBe(401);
    expect((await post(undefined, forged)).status).toBe(401);
    const token = (await plane.secretFiles(ns, 'main-registry-config'))['events-token'] ?? '';
    // the right token for another Registry name is refused too
    const other = await fetch(`${eventsUrl}/registry-events/${ns}/other`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify(forged),
    });
    expect(other.status).toBe(401);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await repoStatus('web')).lastPushTime).toBe(was);
    expect(operator.logs()).not.toContain(token);
  });
});
