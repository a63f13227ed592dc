// ServiceAccount tokens as credentials (docs/identity.md), end to end: real ServiceAccount tokens
// from the test ground's API server (`kubectl create token`), validated by berth's token service
// with TokenReviews under the RBAC that berth ships (config/rbac/token_review_role.yaml, bound to
// a ServiceAccount of its own), in front of the real registry, driven by crane.
// This test plays the operator: it writes the credential store's ServiceAccount grants with the
// operator's own function (serviceAccountGrants) from a Repository it creates in the API server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { importPKCS8, SignJWT } from 'jose';
import { parse as parseYaml, stringify } from 'yaml';
import type { Registry, Repository } from '../../src/api/index.ts';
import { serviceAccountGrants } from '../../src/model/grants.ts';
import { createSigningKey } from '../../src/pki/certificates.ts';
import { startTokenService } from '../../src/token/service.ts';
import { repoRoot } from '../../hack/generate-types.ts';
import { binary } from '../harness/processes.ts';
import { createTestNamespace, eventually, testKubeConfig, undoAfterFile } from '../harness/kube.ts';
import { mint, service, startTokenGround, type TokenGround } from './fixture.ts';
import { capturingLogger } from '../../src/runtime/logger.ts';

const exec = promisify(execFile);
const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });
const refused = /401|UNAUTHORIZED|DENIED|unauthorized/i;
/** The longest a decision is kept in this test (the default is 30 s). */
const cacheMs = 1000;

let g: TokenGround;
let team: string;
let registryNs: string;
let audience: string;
let reviewerKubeconfig: string;
let unboundKubeconfig: string;
let workDir: string;

async function kubectl(args: string[]): Promise<string> {
  const { stdout } = await exec(binary('kubectl'), [
    '--kubeconfig',
    process.env.BERTH_TEST_KUBECONFIG ?? '',
    ...args,
  ]);
  return stdout.trim();
}

/** `kubectl create token <name> -n <namespace>` with more flags (an audience, a bound Pod). */
const createToken = (name: string, ...flags: string[]) =>
  kubectl(['create', 'token', name, '-n', team, ...flags]);

/** A kubeconfig with the control plane's server and CA and `token`. */
function tokenKubeconfig(file: string, token: string): string {
  const cluster = kc.getCurrentCluster();
  const caPem = readFileSync(path.join(process.env.BERTH_TEST_CONTROL_PLANE_DIR ?? '', 'ca.crt'), 'utf8');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: {
            server: cluster?.server,
            'certificate-authority-data': Buffer.from(caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'u', user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
    { mode: 0o600 },
  );
  return file;
}

async function serviceAccount(namespace: string, name: string): Promise<void> {
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

/** The token service's own identity: a ServiceAccount bound to berth's token-review ClusterRole. */
async function tokenServiceIdentity(dir: string): Promise<void> {
  const role = parseYaml(
    readFileSync(path.join(repoRoot, 'config/rbac/token_review_role.yaml'), 'utf8'),
  ) as k8s.V1ClusterRole;
  const roleName = `berth-token-review-${registryNs}`;
  await rbac.createClusterRole({ body: { ...role, metadata: { ...role.metadata, name: roleName } } });
  undoAfterFile(async () => void (await rbac.deleteClusterRole({ name: roleName }).catch(() => undefined)));
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: roleName },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
      subjects: [{ kind: 'ServiceAccount', name: 'berth-token-service', namespace: registryNs }],
    },
  });
  undoAfterFile(
    async () => void (await rbac.deleteClusterRoleBinding({ name: roleName }).catch(() => undefined)),
  );
  await serviceAccount(registryNs, 'berth-token-service');
  await serviceAccount(registryNs, 'unbound');
  const apiToken = async (name: string) =>
    (
      await core.createNamespacedServiceAccountToken({
        name,
        namespace: registryNs,
        body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } },
      })
    ).status?.token ?? '';
  reviewerKubeconfig = tokenKubeconfig(
    path.join(dir, 'reviewer.kubeconfig'),
    await apiToken('berth-token-service'),
  );
  unboundKubeconfig = tokenKubeconfig(path.join(dir, 'unbound.kubeconfig'), await apiToken('unbound'));
}

/** The Repository, created in the API server (so its schema accepts the fields), as the operator reads it. */
async function repository(): Promise<Repository> {
  const body: Repository = {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Repository',
    metadata: { name: 'web', namespace: team },
    spec: {
      registryRef: { name: 'main', namespace: registryNs },
      push: { serviceAccounts: [{ name: 'ci' }, { name: 'doomed' }] },
      pull: { serviceAccounts: [{ namespace: registryNs, name: 'unbound' }] },
    },
  };
  return (await custom.createNamespacedCustomObject({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'repositories',
    namespace: team,
    body,
  })) as Repository;
}

/** The token endpoint's answer to Basic `serviceaccount:<token>` for `scope`. */
async function tokenAnswer(token: string, scope: string): Promise<{ status: number; body: string }> {
  const auth = Buffer.from(`serviceaccount:${token}`).toString('base64');
  return g.get(`${g.tokenService.server.url}/token?service=${service}&scope=${encodeURIComponent(scope)}`, {
    authorization: `Basic ${auth}`,
  });
}

/** crane, logged in with `crane auth login -u serviceaccount -p <token>`. */
async function loggedIn(token: string) {
  const client = g.client();
  const login = await client.run(['auth', 'login', g.registry.host, '-u', 'serviceaccount', '-p', token]);
  expect(login).toMatchObject({ ok: true });
  return client;
}

async function pushError(
  client: Awaited<ReturnType<typeof loggedIn>>,
  ref: string,
): Promise<string | undefined> {
  try {
    await client.pushRandomImage(ref);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

beforeAll(async () => {
  team = await createTestNamespace(kc, 'team-a');
  registryNs = await createTestNamespace(kc, 'registry-system');
  audience = `berth.dev/${registryNs}/main`;
  for (const name of ['ci', 'doomed', 'stranger']) await serviceAccount(team, name);
  workDir = mkdtempSync(path.join(os.tmpdir(), 'berth-sa-tokens-'));
  await tokenServiceIdentity(workDir);
  const registry = { metadata: { name: 'main', namespace: registryNs }, spec: {} } as Registry;
  g = await startTokenGround({
    credentials: [admin],
    serviceAccounts: serviceAccountGrants(registry, [await repository()]),
    tokenService: {
      serviceAccountAudience: audience,
      serviceAccountCacheMs: cacheMs,
      kubeconfigPath: reviewerKubeconfig,
    },
  });
}, 180_000);

afterAll(async () => {
  await g?.stop();
  if (workDir && process.env.BERTH_KEEP_TEST_DIRS !== '1') rmSync(workDir, { recursive: true, force: true });
});

describe('a ServiceAccount that a Repository lets push', () => {
  it('pushes to the Repository path after crane auth login with its token, and nowhere else', async () => {
    const token = await createToken('ci', '--audience', audience);
    const client = await loggedIn(token);
    expect(await pushError(client, `${g.registry.host}/${team}/web:v1`)).toBeUndefined();
    expect((await client.pull(`${g.registry.host}/${team}/web:v1`)).ok).toBe(true);
    expect(await pushError(client, `${g.registry.host}/${team}/other:v1`)).toMatch(refused);
    expect(await pushError(client, `${g.registry.host}/team-b/app:v1`)).toMatch(refused);
    const answer = await tokenAnswer(token, `repository:${team}/web:pull,push`);
    expect(answer.status).toBe(200);
  });
});

describe('tokens that are refused', () => {
  it('refuses a token for another audience, also the API server’s own', async () => {
    for (const flags of [['--audience', 'sts.example.com'], []]) {
      const token = await createToken('ci', ...flags);
      const answer = await tokenAnswer(token, `repository:${team}/web:pull`);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body).errors[0].message).toContain(
        `request one with the audience "${audience}"`,
      );
      const client = await loggedIn(token);
      expect(await pushError(client, `${g.registry.host}/${team}/web:aud`)).toMatch(refused);
    }
  });

  it('refuses an expired token, and one signed by another key', async () => {
    const key = async (pem: string) => importPKCS8(pem, 'ES256');
    const claims = (expSeconds: number) =>
      new SignJWT({
        'kubernetes.io': {
          namespace: team,
          serviceaccount: { name: 'ci', uid: '00000000-0000-0000-0000-000000000000' },
        },
      })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('https://kubernetes.default.svc')
        .setSubject(`system:serviceaccount:${team}:ci`)
        .setAudience([audience])
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds);
    // The control plane's own signing key, but past its expiry.
    const realKey = readFileSync(path.join(process.env.BERTH_TEST_CONTROL_PLANE_DIR ?? '', 'sa.key'), 'utf8');
    const expired = await claims(-60).sign(await key(realKey));
    const expiredAnswer = await tokenAnswer(expired, `repository:${team}/web:pull`);
    expect(expiredAnswer.status).toBe(401);
    expect(JSON.parse(expiredAnswer.body).errors[0].message).toMatch(/has expired/);
    // In force and for our audience, but signed by a key the API server does not know.
    const forged = await claims(3600).sign(await key((await createSigningKey()).privateKeyPem));
    const forgedAnswer = await tokenAnswer(forged, `repository:${team}/web:pull`);
    expect(forgedAnswer.status).toBe(401);
    expect(JSON.parse(forgedAnswer.body).errors[0].message).toMatch(/API server refused/);
    const client = await loggedIn(forged);
    expect(await pushError(client, `${g.registry.host}/${team}/web:forged`)).toMatch(refused);
  });

  it('refuses the token of a deleted ServiceAccount once the cache bound has passed', async () => {
    const token = await createToken('doomed', '--audience', audience);
    const client = await loggedIn(token);
    expect(await pushError(client, `${g.registry.host}/${team}/web:doomed-1`)).toBeUndefined();
    await core.deleteNamespacedServiceAccount({ name: 'doomed', namespace: team });
    await eventually(
      'the deleted ServiceAccount’s token is refused',
      () => tokenAnswer(token, `repository:${team}/web:push`),
      (a) => a.status === 401,
      cacheMs + 20_000,
    );
    expect(await pushError(client, `${g.registry.host}/${team}/web:doomed-2`)).toMatch(refused);
  });

  it('refuses a token bound to a Pod once the Pod is deleted', async () => {
    await core.createNamespacedPod({
      namespace: team,
      body: {
        metadata: { name: 'builder' },
        spec: { serviceAccountName: 'ci', containers: [{ name: 'c', image: 'example.invalid/none' }] },
      },
    });
    const token = await createToken(
      'ci',
      '--audience',
      audience,
      '--bound-object-kind',
      'Pod',
      '--bound-object-name',
      'builder',
    );
    expect((await tokenAnswer(token, `repository:${team}/web:push`)).status).toBe(200);
    await core.deleteNamespacedPod({ name: 'builder', namespace: team, gracePeriodSeconds: 0 });
    await eventually(
      'the deleted Pod’s token is refused',
      () => tokenAnswer(token, `repository:${team}/web:push`),
      (a) => a.status === 401,
      cacheMs + 20_000,
    );
  });

  it('gives a ServiceAccount no Repository names a token without access', async () => {
    const token = await createToken('stranger', '--audience', audience);
    const client = await loggedIn(token);
    expect(await pushError(client, `${g.registry.host}/${team}/web:stranger`)).toMatch(refused);
    expect((await client.pull(`${g.registry.host}/${team}/web:v1`)).ok).toBe(false);
  });
});

describe('when the token service cannot review', () => {
  it('fails closed with 503, counts it, and logs no token', async () => {
    // A second token service whose ServiceAccount holds no TokenReview permission (403 from the API server).
    const { logger, lines } = capturingLogger();
    const config = g.tokenServiceConfig;
    const other = await startTokenService(
      { ...config, listen: { host: '127.0.0.1', port: 0 }, kubeconfigPath: unboundKubeconfig },
      { logger },
    );
    try {
      const token = await createToken('ci', '--audience', audience);
      const auth = Buffer.from(`serviceaccount:${token}`).toString('base64');
      const answer = await g.get(
        `${other.server.url}/token?service=${service}&scope=repository:${team}/web:pull`,
        {
          authorization: `Basic ${auth}`,
        },
      );
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body).errors[0].message).toMatch(/did not answer/);
      expect(await other.metrics.registry.getSingleMetricAsString('berth_token_reviews_total')).toContain(
        'berth_token_reviews_total{result="error"} 1',
      );
      expect(lines.join('')).toContain('"status":"403"');
      expect(lines.join('')).not.toContain(token.split('.')[1]);
    } finally {
      await other.stop();
    }
  });
});
