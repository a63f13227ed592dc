// The token service's identity for ServiceAccount tokens (docs/identity.md), as the operator
// writes it against the real control plane: the ServiceAccount berth-token-service, its binding to
// the token-review ClusterRole, and a token Deployment that runs as it with the Registry's
// audience; and, asked of the API server (SubjectAccessReview), that this identity may create
// TokenReviews and nothing else. A Registry that takes no ServiceAccount tokens gets none of it.
// The ClusterRole is berth's own file (config/rbac/token_review_role.yaml), installed by this
// test as the chart would.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from '../../hack/generate-types.ts';
import { createTestNamespace, eventually, testKubeConfig, undoAfterFile } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
let operator: RunningOperator;
let ns: string;
let off: string;
let role: string;

async function createRegistry(namespace: string, spec: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'registries',
    namespace,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'main' },
      spec: { storage: { emptyDir: {} }, ...spec },
    },
  });
}

const tokenPod = (namespace: string) =>
  eventually(
    `the token Deployment in ${namespace}`,
    () => apps.readNamespacedDeployment({ name: 'main-token', namespace }).catch(() => undefined),
    (d) => d !== undefined,
  ).then((d) => d?.spec?.template.spec);

async function may(namespace: string, attributes: k8s.V1ResourceAttributes): Promise<boolean> {
  const review = await authz.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:berth-token-service`,
        resourceAttributes: attributes,
      },
    },
  });
  return review.status?.allowed === true;
}

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'tokenid');
  off = await createTestNamespace(kc, 'tokenoff');
  const file = parseYaml(
    readFileSync(path.join(repoRoot, 'config/rbac/token_review_role.yaml'), 'utf8'),
  ) as k8s.V1ClusterRole;
  role = `berth-token-review-${ns}`;
  await rbac.createClusterRole({ body: { ...file, metadata: { ...file.metadata, name: role } } });
  undoAfterFile(async () => void (await rbac.deleteClusterRole({ name: role }).catch(() => undefined)));
  for (const namespace of [ns, off])
    undoAfterFile(
      async () =>
        void (await rbac
          .deleteClusterRoleBinding({ name: `berth-token-review:${namespace}` })
          .catch(() => undefined)),
    );
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [`--watch-namespaces=${ns},${off}`],
    env: { BERTH_IMAGE: 'ghcr.io/berth-dev/berth:test', BERTH_TOKEN_REVIEW_CLUSTER_ROLE: role },
  });
  await createRegistry(ns, { auth: { serviceAccountTokens: { audience: 'registry.example.com' } } });
  await createRegistry(off, { auth: { serviceAccountTokens: { enabled: false } } });
}, 120_000);

afterAll(async () => {
  await operator?.stop();
});

describe('a Registry that takes ServiceAccount tokens', () => {
  it('runs its token service as berth-token-service, with the projected token and the audience', async () => {
    const pod = await tokenPod(ns);
    expect(pod?.serviceAccountName).toBe('berth-token-service');
    expect(pod?.automountServiceAccountToken).toBe(true);
    expect(pod?.containers[0]?.args).toContain('--service-account-audience=registry.example.com');
    const sa = await core.readNamespacedServiceAccount({ name: 'berth-token-service', namespace: ns });
    expect(sa.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('berth');
    const binding = await rbac.readClusterRoleBinding({ name: `berth-token-review:${ns}` });
    expect(binding.roleRef.name).toBe(role);
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'berth-token-service', namespace: ns },
    ]);
  });

  it('gives that identity TokenReviews and nothing else', async () => {
    await tokenPod(ns);
    expect(await may(ns, { group: 'authentication.k8s.io', resource: 'tokenreviews', verb: 'create' })).toBe(
      true,
    );
    for (const attributes of [
      { resource: 'secrets', verb: 'get', namespace: ns },
      { resource: 'serviceaccounts', verb: 'create', subresource: 'token', namespace: ns },
      { group: 'berth.dev', resource: 'repositories', verb: 'list' },
      { group: 'authorization.k8s.io', resource: 'subjectaccessreviews', verb: 'create' },
    ])
      expect({ ...attributes, allowed: await may(ns, attributes) }).toEqual({
        ...attributes,
        allowed: false,
      });
  });
});

describe('a Registry with spec.auth.serviceAccountTokens.enabled false', () => {
  it('runs its token service with no API credentials, and binds nothing', async () => {
    const pod = await tokenPod(off);
    expect(pod?.serviceAccountName).toBeUndefined();
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.containers[0]?.args?.some((a) => a.startsWith('--service-account-audience'))).toBe(false);
    const binding = await rbac
      .readClusterRoleBinding({ name: `berth-token-review:${off}` })
      .catch(() => undefined);
    expect(binding).toBeUndefined();
  });
});
