// Installing berth on its own real-node ground (so CRDs and cluster-scoped RBAC start clean): the
// chart with helm, from the image hack/images.sh built, so the operator is a real pod on the real
// node (test/harness/node.ts) running with exactly the chart ServiceAccount's credentials; then what
// that ServiceAccount may bind (checked with a TokenRequest token of it), uninstall and what stays,
// and config/default with server-side apply. Nothing here is played by the test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { localImageValues } from '../harness/berth-install.ts';
import type { ControlPlane } from '../harness/controlplane.ts';
import { eventually, statusOf } from '../harness/kube.ts';
import { startNodeGround, type NodeGround } from '../harness/node-ground.ts';
import { binary, repoRoot } from '../harness/processes.ts';
import { chartDir, expectedCRDs, run, type RunResult } from './manifests.ts';

const namespace = 'berth-system';
let ground: NodeGround;
let cp: ControlPlane;
let kc: k8s.KubeConfig;
let workDir: string;

const helm = (...args: string[]): Promise<RunResult> =>
  run(binary('helm'), [...args, '--kubeconfig', cp.kubeconfig], {
    HELM_CACHE_HOME: workDir,
    HELM_CONFIG_HOME: workDir,
  });
const kubectl = (...args: string[]): Promise<RunResult> =>
  run(binary('kubectl'), [...args, '--kubeconfig', cp.kubeconfig]);

function ok(result: RunResult, what: string): RunResult {
  if (result.code !== 0)
    throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
  return result;
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

/** A kubeconfig that authenticates with a bearer token only (no client certificate). */
function tokenKubeConfig(token: string): string {
  const file = path.join(workDir, 'sa-kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'test',
          cluster: {
            server: cp.server,
            'certificate-authority-data': Buffer.from(cp.ca.certPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'berth', user: { token } }],
      contexts: [{ name: 'berth', context: { cluster: 'test', user: 'berth' } }],
      'current-context': 'berth',
    }),
    { mode: 0o600 },
  );
  return file;
}

beforeAll(async () => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'berth-install-'));
  ground = await startNodeGround();
  cp = ground.cp;
  kc = ground.kc;
}, 420_000);

afterAll(async () => {
  await ground?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('helm install', () => {
  let installOutput = '';

  test('installs the chart into a namespace that enforces the restricted Pod Security Standard', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({
      body: {
        metadata: {
          name: namespace,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    });
    const result = ok(
      await helm('install', 'berth', chartDir, '--namespace', namespace, ...localImageValues(ground)),
      'helm install',
    );
    installOutput = result.stdout;
    expect(result.stdout).toContain('STATUS: deployed');

    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    for (const name of expectedCRDs) {
      await eventually(
        `CRD ${name} established`,
        () => ext.readCustomResourceDefinition({ name }),
        (crd) =>
          crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
      );
    }
    // The ReplicaSet controller creates the operator pod only if PodSecurity admission accepts it.
    const pods = await eventually(
      'an operator pod admitted under the restricted policy',
      () => core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=operator' }),
      (list) => list.items.length === 1,
    );
    expect(pods.items[0]?.spec?.serviceAccountName).toBe('berth');
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const rs = await apps.listNamespacedReplicaSet({ namespace });
    const failures = rs.items
      .flatMap((r) => r.status?.conditions ?? [])
      .filter((c) => c.type === 'ReplicaFailure');
    expect(failures).toEqual([]);
  });

  test('prints NOTES that say what to apply next', () => {
    expect(installOutput).toContain('NOTES:');
    expect(installOutput).toContain('kubectl -n berth-system rollout status deployment/berth-operator');
    expect(installOutput).toContain('kind: Registry');
    expect(installOutput).toContain('kind: Repository');
  });
});

describe('the operator pod, with the chart ServiceAccount’s credentials', () => {
  let token = '';
  let operatorPod = '';
  const operatorLog = () =>
    kc.makeApiClient(k8s.CoreV1Api).readNamespacedPodLog({ namespace, name: operatorPod });

  test('becomes ready and leads, with no RBAC refusal in its log', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    // Ready through its real probes (the readiness probe is GET /readyz), on the real node.
    const pods = await eventually(
      'the operator pod to be Ready',
      () => core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=operator' }),
      (list) =>
        list.items.some((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')),
      180_000,
    );
    const pod = pods.items.find((p) =>
      p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )!;
    operatorPod = pod.metadata!.name!;
    expect(pod.spec?.nodeName).toBe(ground.node.name);
    expect(pod.spec?.containers[0]?.image).toBe(ground.images.berth);
    expect(pod.spec?.containers[0]?.readinessProbe?.httpGet?.path).toBe('/readyz');
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await eventually(
      'the operator pod to take the Lease',
      () => coordination.readNamespacedLease({ name: 'berth-operator', namespace }),
      (l) => l.spec?.holderIdentity?.startsWith(operatorPod) ?? false,
      60_000,
    );
    expect(lease.spec?.holderIdentity).toContain(operatorPod);
    // Its metrics, read from the pod's address (the host routes the node's pod range).
    const port = pod.spec?.containers[0]?.ports?.find((p) => p.name === 'metrics')?.containerPort;
    const metrics = await eventually(
      'the leader gauge to be 1',
      async () => (await fetch(`http://${pod.status!.podIP!}:${port}/metrics`)).text(),
      (text) => /^berth_leader_is_leader\{[^}]*\} 1$/m.test(text),
      30_000,
    );
    expect(metrics).toMatch(/berth_leader_is_leader/);
    // Let the controllers list, watch and reconcile for a few seconds before reading the log.
    await new Promise((r) => setTimeout(r, 5_000));
    const log = await operatorLog();
    expect(log).toContain('Started operator');
    expect(
      log.split('\n').filter((l) => /forbidden|\b403\b|cannot (list|watch|get|create|update|patch)/i.test(l)),
    ).toEqual([]);
    // A token of the same ServiceAccount, for the binding checks below.
    const request = await core.createNamespacedServiceAccountToken({
      name: 'berth',
      namespace,
      body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } },
    });
    token = request.status?.token ?? '';
    expect(token).not.toBe('');
  }, 300_000);

  test('reconciles a Registry and a Repository, and fans pull secrets out, with these credentials only', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const ns = 'registry-system';
    const team = 'team-p';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespace({ body: { metadata: { name: team, labels: { 'berth.dev/pull': 'main' } } } });
    const berth = (namespace: string, plural: string, name: string) => ({
      group: 'berth.dev',
      version: 'v1alpha1',
      namespace,
      plural,
      name,
    });
    await custom.createNamespacedCustomObject({
      ...berth(ns, 'registries', 'main'),
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        metadata: { name: 'main', namespace: ns },
        spec: {
          storage: { emptyDir: { sizeLimit: '1Gi' } },
          tls: { mode: 'SelfSigned' },
          pullSecrets: {
            namespaceSelector: { matchLabels: { 'berth.dev/pull': 'main' } },
            secretName: 'main-pull',
            serviceAccounts: { names: ['default'] },
          },
        },
      },
    });
    await custom.createNamespacedCustomObject({
      ...berth(team, 'repositories', 'web'),
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Repository',
        metadata: { name: 'web', namespace: team },
        spec: { registryRef: { name: 'main', namespace: ns }, push: { secretName: 'web-push' } },
      },
    });
    interface Condition {
      type: string;
      status: string;
      reason?: string;
    }
    type Status = { status?: { conditions?: Condition[]; endpoint?: string } };
    const ready = (namespace: string, plural: string, name: string) =>
      eventually(
        `${plural} ${namespace}/${name} to become Ready`,
        async () => (await custom.getNamespacedCustomObject(berth(namespace, plural, name))) as Status,
        (r) => r.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        240_000,
      );
    const registry = await ready(ns, 'registries', 'main');
    expect(registry.status?.endpoint).toBe('main.registry-system.svc:443');
    for (const name of ['main-registry', 'main-token']) {
      expect((await apps.readNamespacedDeployment({ name, namespace: ns })).metadata?.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'berth',
      });
    }
    await ready(team, 'repositories', 'web');
    const push = await core.readNamespacedSecret({ name: 'web-push', namespace: team });
    expect(push.type).toBe('kubernetes.io/dockerconfigjson');
    // The pull secret in the selected namespace, appended to its default ServiceAccount.
    const pull = await eventually(
      'the pull secret in the selected namespace',
      () => core.readNamespacedSecret({ name: 'main-pull', namespace: team }).catch(() => undefined),
      (secret) => secret?.type === 'kubernetes.io/dockerconfigjson',
    );
    expect(pull?.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('berth');
    await eventually(
      'the default ServiceAccount to list the pull secret',
      () => core.readNamespacedServiceAccount({ name: 'default', namespace: team }),
      (sa) => sa.imagePullSecrets?.some((r) => r.name === 'main-pull') ?? false,
    );

    // Deleting the Registry goes through berth's finalizers (metadata patches) with the same
    // credentials, and takes the pull secret and berth's ServiceAccount entry away.
    await custom.deleteNamespacedCustomObject(berth(ns, 'registries', 'main'));
    await eventually(
      'the Registry to be gone',
      () => exists(() => custom.getNamespacedCustomObject(berth(ns, 'registries', 'main'))),
      (present) => !present,
      60_000,
    );
    await eventually(
      'the pull secret to be gone',
      () => exists(() => core.readNamespacedSecret({ name: 'main-pull', namespace: team })),
      (present) => !present,
    );
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: team });
    expect(sa.imagePullSecrets ?? []).not.toContainEqual({ name: 'main-pull' });
    const log = await operatorLog();
    expect(log.split('\n').filter((l) => /forbidden|\b403\b/i.test(l))).toEqual([]);
  }, 360_000);

  test('may bind the ClusterRoles the chart ships for its Jobs, and nothing else (no escalation)', async () => {
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: 'team-r' } } });
    const asOperator = new k8s.KubeConfig();
    asOperator.loadFromFile(tokenKubeConfig(token));
    const rbac = asOperator.makeApiClient(k8s.RbacAuthorizationV1Api);
    const binding = (name: string, role: string): k8s.V1ClusterRoleBinding => ({
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'retention', namespace: 'registry-system' }],
    });
    await rbac.createClusterRoleBinding({ body: binding('berth-test-retention', 'berth-retention') });
    await rbac.createNamespacedRoleBinding({
      namespace: 'team-r',
      body: {
        metadata: { name: 'berth-test-retention-report', namespace: 'team-r' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'berth-retention-report',
        },
        subjects: [{ kind: 'ServiceAccount', name: 'retention', namespace: 'registry-system' }],
      },
    });
    // What the retention Job then may do: read workloads and berth objects everywhere, write its
    // report only in the policy's namespace, and nothing else.
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const job = 'system:serviceaccount:registry-system:retention';
    const access: [string, string, string, string | undefined, boolean][] = [
      ['list', '', 'pods', undefined, true],
      ['list', 'apps', 'replicasets', undefined, true],
      ['list', 'batch', 'cronjobs', undefined, true],
      ['get', 'berth.dev', 'registries', 'registry-system', true],
      ['list', 'berth.dev', 'repositories', 'team-r', true],
      ['create', '', 'configmaps', 'team-r', true],
      ['update', '', 'configmaps', 'team-r', true],
      ['create', '', 'configmaps', 'team-other', false],
      ['delete', '', 'pods', 'team-r', false],
      ['get', '', 'secrets', 'team-r', false],
      ['update', 'berth.dev', 'retentionpolicies', 'team-r', false],
    ];
    const wrong: string[] = [];
    for (const [verb, group, resource, ns, expected] of access) {
      const review = await authz.createSubjectAccessReview({
        body: { spec: { user: job, resourceAttributes: { verb, group, resource, namespace: ns } } },
      });
      if ((review.status?.allowed ?? false) !== expected) wrong.push(`${verb} ${group}/${resource} in ${ns}`);
    }
    expect(wrong).toEqual([]);
    // The operator never deletes a binding (no delete on bindings): the test cleans up as admin.
    const removed = await rbac
      .deleteClusterRoleBinding({ name: 'berth-test-retention' })
      .then(() => 0)
      .catch((err: unknown) => statusOf(err));
    expect(removed).toBe(403);
    await kc
      .makeApiClient(k8s.RbacAuthorizationV1Api)
      .deleteClusterRoleBinding({ name: 'berth-test-retention' });
    const refused = await rbac
      .createClusterRoleBinding({ body: binding('berth-test-escalate', 'cluster-admin') })
      .then(() => 0)
      .catch((err: unknown) => statusOf(err));
    expect(refused).toBe(403);
  });

  test('has exactly the access docs/rbac.md lists, checked by the API server', async () => {
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const user = `system:serviceaccount:${namespace}:berth`;
    const can = async (
      verb: string,
      group: string,
      resource: string,
      options: { subresource?: string; ns?: string; name?: string } = {},
    ) => {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
            resourceAttributes: {
              verb,
              group,
              resource,
              subresource: options.subresource,
              namespace: options.ns,
              name: options.name,
            },
          },
        },
      });
      return review.status?.allowed ?? false;
    };
    const table: [string, string, string, { subresource?: string; ns?: string; name?: string }, boolean][] = [
      ['watch', 'berth.dev', 'registries', {}, true],
      ['patch', 'berth.dev', 'registries', { subresource: 'status', ns: 'a' }, true],
      ['update', 'berth.dev', 'registries', { subresource: 'status', ns: 'a' }, false],
      ['update', 'berth.dev', 'repositories', { subresource: 'finalizers', ns: 'a' }, true],
      ['patch', 'berth.dev', 'registries', { ns: 'a' }, true], // finalizers
      ['create', 'berth.dev', 'registries', { ns: 'a' }, false],
      ['update', 'berth.dev', 'registries', { ns: 'a' }, false],
      ['delete', 'berth.dev', 'repositories', { ns: 'a' }, false],
      ['patch', '', 'serviceaccounts', { ns: 'team-a' }, true],
      ['create', '', 'secrets', { ns: 'team-a' }, true],
      ['create', 'apps', 'deployments', { ns: 'registry-system' }, true],
      ['create', 'apps', 'statefulsets', { ns: 'registry-system' }, false], // the registry is a Deployment
      ['delete', 'rbac.authorization.k8s.io', 'clusterrolebindings', { name: 'cluster-admin' }, false],
      ['delete', 'rbac.authorization.k8s.io', 'rolebindings', { ns: 'kube-system' }, false],
      ['list', '', 'nodes', {}, false],
      ['create', 'events.k8s.io', 'events', { ns: 'registry-system' }, true],
      ['update', 'coordination.k8s.io', 'leases', { ns: namespace, name: 'berth-operator' }, true],
      [
        'update',
        'coordination.k8s.io',
        'leases',
        { ns: 'kube-system', name: 'kube-controller-manager' },
        false,
      ],
      ['bind', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'berth-retention-report' }, true],
      ['bind', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'berth-edit' }, false],
      ['bind', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'cluster-admin' }, false],
      ['escalate', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'berth-retention' }, false],
      ['create', 'rbac.authorization.k8s.io', 'clusterroles', {}, false],
      ['create', 'rbac.authorization.k8s.io', 'roles', { ns: 'team-a' }, false],
      ['delete', '', 'namespaces', { name: 'team-a' }, false],
      ['create', '', 'pods', { ns: 'team-a' }, false],
      ['update', '', 'nodes', { name: 'n' }, false],
      ['create', 'cert-manager.io', 'certificates', { ns: 'registry-system' }, true],
      ['create', 'cert-manager.io', 'issuers', { ns: 'registry-system' }, false],
    ];
    const wrong: string[] = [];
    for (const [verb, group, resource, options, expected] of table) {
      const allowed = await can(verb, group, resource, options);
      if (allowed !== expected)
        wrong.push(`${verb} ${group}/${resource} ${JSON.stringify(options)}: allowed=${allowed}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('helm uninstall', () => {
  test('removes the operator and its RBAC, and keeps the CRDs (and so every berth object)', async () => {
    ok(await helm('uninstall', 'berth', '--namespace', namespace, '--wait'), 'helm uninstall');
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    expect(await exists(() => apps.readNamespacedDeployment({ name: 'berth-operator', namespace }))).toBe(
      false,
    );
    expect(await exists(() => rbac.readClusterRole({ name: 'berth-operator-api' }))).toBe(false);
    for (const name of expectedCRDs) {
      const crd = await ext.readCustomResourceDefinition({ name });
      expect(crd.metadata?.annotations?.['helm.sh/resource-policy']).toBe('keep');
    }
    // The Lease is the operator's, not the chart's: it stays (docs/install.md says so).
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    expect(await exists(() => coordination.readNamespacedLease({ name: 'berth-operator', namespace }))).toBe(
      true,
    );
  });
});

describe('kustomize: config/default', () => {
  test('applies with server-side apply (taking the kept CRDs over from helm), then again without conflict or change', async () => {
    const apply = (...extra: string[]) =>
      kubectl(
        'apply',
        '--server-side',
        '--field-manager=berth-install',
        ...extra,
        '-k',
        path.join(repoRoot, 'config/default'),
      );
    // The CRDs that helm left behind carry helm's `app.kubernetes.io/managed-by`: moving them to
    // kustomize is a field-ownership conflict, resolved on purpose with --force-conflicts (docs/install.md).
    const applyStart = Date.now() - 1_000;
    const refused = await apply();
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('conflict with "helm"');
    const first = ok(
      await apply('--force-conflicts'),
      'kubectl apply --server-side --force-conflicts -k config/default',
    );
    expect(first.stdout).toContain('deployment.apps/berth-operator serverside-applied');
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const before = await apps.readNamespacedDeployment({ name: 'berth-operator', namespace });
    await eventually(
      'an operator pod from config/default, admitted under the restricted policy',
      () => core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=operator' }),
      (list) =>
        list.items.some(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            new Date(p.metadata?.creationTimestamp ?? 0).getTime() >= applyStart,
        ),
    );
    const ns = await core.readNamespace({ name: namespace });
    expect(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');

    ok(await apply(), 'a second server-side apply, without --force-conflicts');
    const after = await apps.readNamespacedDeployment({ name: 'berth-operator', namespace });
    expect(after.metadata?.generation).toBe(before.metadata?.generation);
    const diff = await kubectl(
      'diff',
      '--server-side',
      '--field-manager=berth-install',
      '-k',
      path.join(repoRoot, 'config/default'),
    );
    expect(diff.stdout).toBe('');
    expect(diff.code).toBe(0);
  });
});
