// Tenant isolation against the real control plane (docs/security.md):
// - a namespace admin (the built-in `admin` role in their namespace, with berth's user roles
//   installed and aggregated) may declare Repositories but is refused a Registry, checked with
//   `kubectl --as` impersonation; the platform gets Registries only through berth-registry-admin;
// - a hostile Registry made by the platform is contained: a certsDir outside the allowed folders
//   gets no DaemonSet, an Ingress host such as registry.k8s.io never reaches the nodes (the real
//   node agent, fed the ConfigMap the operator wrote, creates no folder for it), and a second
//   Registry claiming another's Ingress host gets Ready=False HostConflict and no Ingress, until the
//   first lets the host go.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { createTestNamespace, eventually, statusOf, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { binary, repoRoot } from '../harness/processes.ts';

const exec = promisify(execFile);
const kubeconfig = process.env.BERTH_TEST_KUBECONFIG ?? '';
const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const net = kc.makeApiClient(k8s.NetworkingV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const registries = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };

/** This suite's copies of berth's user roles (same rules and aggregation labels, own names). */
const suffix = randomBytes(3).toString('hex');
const roleName = (name: string) => `${name}-sec-${suffix}`;
const userRoles: string[] = [];

let team: string;
let platform: string;
let operator: RunningOperator | undefined;
let work: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function kubectl(args: string[], input?: string): Promise<Result> {
  const file = path.join(work, `stdin-${randomBytes(3).toString('hex')}.yaml`);
  if (input !== undefined) writeFileSync(file, input);
  const argv = [`--kubeconfig=${kubeconfig}`, ...args.map((a) => (a === '-f-' ? `--filename=${file}` : a))];
  try {
    const { stdout, stderr } = await exec(binary('kubectl'), argv, { cwd: repoRoot });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
}
const as = (user: string, groups: string[]) => [`--as=${user}`, ...groups.map((g) => `--as-group=${g}`)];
const alice = as('alice', ['team-admins', 'system:authenticated']);
const bob = as('bob', ['platform-team', 'system:authenticated']);

const registryYaml = (namespace: string, name: string, spec: object) =>
  stringify({ apiVersion: 'berth.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace }, spec });

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
const getRegistry = async (namespace: string, name: string) =>
  (await custom.getNamespacedCustomObject({ ...registries, namespace, name })) as {
    status?: { conditions?: Condition[] };
  };
const condition = (r: { status?: { conditions?: Condition[] } }, type: string) =>
  r.status?.conditions?.find((c) => c.type === type);
const orUndefined = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
  try {
    return await read();
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
};
const createRegistry = (namespace: string, name: string, spec: object) =>
  custom.createNamespacedCustomObject({
    ...registries,
    namespace,
    body: { apiVersion: 'berth.dev/v1alpha1', kind: 'Registry', metadata: { name }, spec },
  });
const eventReasons = async (namespace: string, name: string) =>
  (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace })).items
    .filter((e) => e.regarding?.name === name)
    .map((e) => e.reason);

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'berth-security-'));
  team = await createTestNamespace(kc, 'sec-team');
  platform = await createTestNamespace(kc, 'sec-platform');
  // berth's user roles, as config/rbac ships them (renamed, so suites never share them).
  const docs = parseAllDocuments(readFileSync(path.join(repoRoot, 'config/rbac/user_roles.yaml'), 'utf8'));
  for (const doc of docs) {
    const role = doc.toJS() as k8s.V1ClusterRole;
    role.metadata!.name = roleName(role.metadata!.name!);
    await rbac.createClusterRole({ body: role });
    userRoles.push(role.metadata!.name!);
  }
  // alice administers the team namespace the usual way: the built-in `admin` role.
  await rbac.createNamespacedRoleBinding({
    namespace: team,
    body: {
      metadata: { name: 'team-admins' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'team-admins' }],
    },
  });
  // bob runs registries for the cluster: berth-registry-admin, bound on purpose.
  for (const namespace of [team, platform])
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'platform-registries' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: roleName('berth-registry-admin'),
        },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'platform-team' }],
      },
    });
  // The aggregation controller folds berth-edit into `admin` shortly after it appears; every test
  // below runs with it in place (with the old berth-edit, that is what gave alice Registries).
  await eventually(
    'berth-edit aggregated into admin',
    () => kubectl(['auth', 'can-i', 'create', 'repositories.berth.dev', '-n', team, ...alice]),
    (r) => r.stdout.trim() === 'yes',
  );
  operator = await startOperator({
    kubeconfig,
    args: [`--watch-namespaces=${platform},${team}`],
    env: { BERTH_IMAGE: 'ghcr.io/berth-dev/berth:test' },
  });
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  for (const namespace of [team, platform].filter(Boolean)) {
    // Registries with node access hold a finalizer that only a running operator removes.
    const list = (await custom.listNamespacedCustomObject({ ...registries, namespace })) as {
      items: { metadata: { name: string } }[];
    };
    for (const r of list.items)
      await custom
        .patchNamespacedCustomObject(
          { ...registries, namespace, name: r.metadata.name, body: { metadata: { finalizers: null } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )
        .catch(() => undefined);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
  for (const name of userRoles) await rbac.deleteClusterRole({ name }).catch(() => undefined);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a namespace admin', () => {
  it('may declare Repositories and read Registries, through aggregation into admin', async () => {
    const read = await kubectl(['auth', 'can-i', 'list', 'registries.berth.dev', '-n', team, ...alice]);
    expect(read.stdout.trim()).toBe('yes');
    const repo = await kubectl(
      ['create', '-f-', ...alice],
      stringify({
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Repository',
        metadata: { name: 'web', namespace: team },
        spec: { registryRef: { name: 'main', namespace: platform }, path: `${team}/web` },
      }),
    );
    expect(repo).toMatchObject({ code: 0 });
  });

  it('is refused creating, changing or deleting a Registry', async () => {
    for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection']) {
      const r = await kubectl(['auth', 'can-i', verb, 'registries.berth.dev', '-n', team, ...alice]);
      expect([verb, r.stdout.trim()]).toEqual([verb, 'no']);
    }
    const hostile = registryYaml(team, 'mirror', {
      storage: { emptyDir: {} },
      expose: { ingress: { host: 'registry.k8s.io' } },
      nodeAccess: { enabled: true },
    });
    const created = await kubectl(['create', '-f-', ...alice], hostile);
    expect(created.code).not.toBe(0);
    expect(created.stderr).toMatch(/forbidden/i);
    expect(created.stderr).toContain('registries');
    expect(await orUndefined(() => getRegistry(team, 'mirror'))).toBeUndefined();
    // Nor can alice hand herself the role: binding berth-registry-admin needs its permissions.
    const bind = await kubectl([
      'create',
      'rolebinding',
      'self-service',
      `--clusterrole=${roleName('berth-registry-admin')}`,
      '--user=alice',
      '-n',
      team,
      ...alice,
    ]);
    expect(bind.code).not.toBe(0);
    expect(bind.stderr).toMatch(/forbidden/i);
  });

  it('gets Registries only from berth-registry-admin, bound on purpose (the platform team)', async () => {
    const r = await kubectl(['auth', 'can-i', 'create', 'registries.berth.dev', '-n', team, ...bob]);
    expect(r.stdout.trim()).toBe('yes');
    const created = await kubectl(
      ['create', '-f-', ...bob],
      registryYaml(team, 'platform-made', { storage: { emptyDir: {} } }),
    );
    expect(created).toMatchObject({ code: 0 });
    const role = await rbac.readClusterRole({ name: roleName('berth-registry-admin') });
    expect(Object.keys(role.metadata?.labels ?? {}).filter((l) => l.includes('aggregate'))).toEqual([]);
  });
});

describe('a hostile Registry made by the platform', () => {
  it('with certsDir /etc gets NodesReady=False CertsDirNotAllowed, a Warning Event and no DaemonSet', async () => {
    await createRegistry(platform, 'etc', {
      storage: { emptyDir: {} },
      nodeAccess: { enabled: true, certsDir: '/etc' },
    });
    const r = await eventually(
      'NodesReady on Registry etc',
      () => getRegistry(platform, 'etc'),
      (x) => condition(x, 'NodesReady')?.reason === 'CertsDirNotAllowed',
    );
    expect(condition(r, 'NodesReady')).toMatchObject({ status: 'False' });
    expect(condition(r, 'NodesReady')?.message).toContain('/etc/containerd/certs.d');
    await eventually(
      'the CertsDirNotAllowed Event',
      () => eventReasons(platform, 'etc'),
      (reasons) => reasons.includes('CertsDirNotAllowed'),
    );
    // Its Service exists (the operator got that far), yet no agent and no ConfigMap for the nodes.
    await eventually(
      'the Service of Registry etc',
      () => orUndefined(() => core.readNamespacedService({ name: 'etc', namespace: platform })),
      (s) => !!s,
    );
    expect(
      await orUndefined(() => apps.readNamespacedDaemonSet({ name: 'etc-node-agent', namespace: platform })),
    ).toBeUndefined();
    expect(
      await orUndefined(() => core.readNamespacedConfigMap({ name: 'etc-node-access', namespace: platform })),
    ).toBeUndefined();
  });

  it('with Ingress host registry.k8s.io: the agents never configure it (the real agent writes no folder for it)', async () => {
    await createRegistry(platform, 'k8sio', {
      storage: { emptyDir: {} },
      expose: { ingress: { host: 'registry.k8s.io' } },
      nodeAccess: { enabled: true },
    });
    const r = await eventually(
      'NodesReady on Registry k8sio',
      () => getRegistry(platform, 'k8sio'),
      (x) => condition(x, 'NodesReady')?.reason === 'HostNotAllowed',
    );
    expect(condition(r, 'NodesReady')?.message).toContain('registry.k8s.io');
    const ds = await eventually(
      'the DaemonSet of Registry k8sio',
      () =>
        orUndefined(() => apps.readNamespacedDaemonSet({ name: 'k8sio-node-agent', namespace: platform })),
      (d) => !!d,
    );
    const hostPaths = (ds!.spec!.template.spec!.volumes ?? []).flatMap((v) =>
      v.hostPath ? [v.hostPath.path] : [],
    );
    expect(hostPaths).toEqual(['/etc/containerd/certs.d', '/etc/hosts']);
    const cm = await eventually(
      'the node-access ConfigMap of Registry k8sio',
      () =>
        orUndefined(() => core.readNamespacedConfigMap({ name: 'k8sio-node-access', namespace: platform })),
      (m) => !!m?.data?.['ca.crt'],
    );
    const config = JSON.parse(cm!.data!['config.json']!) as { hosts: string[] };
    expect(config.hosts).not.toContain('registry.k8s.io');
    expect(config.hosts).toContain(`k8sio.${platform}.svc:443`);

    // What a node would get: the agent, fed exactly this ConfigMap, on a fake node's certs.d.
    const configDir = path.join(work, 'k8sio-config');
    const certsDir = path.join(work, 'k8sio-certs.d');
    mkdirSync(configDir);
    mkdirSync(certsDir);
    for (const [k, v] of Object.entries(cm!.data!)) writeFileSync(path.join(configDir, k), v);
    await exec(process.execPath, [
      path.join(repoRoot, 'src/main.ts'),
      'node-agent',
      `--registry=${platform}/k8sio`,
      `--config-dir=${configDir}`,
      `--certs-dir=${certsDir}`,
      '--hosts-file=none',
      '--once',
    ]);
    const folders = readdirSync(certsDir).sort();
    expect(folders).not.toContain('registry.k8s.io');
    expect(folders).toEqual([...config.hosts].sort());
    expect(readdirSync(path.join(certsDir, `k8sio.${platform}.svc:443`)).sort()).toEqual([
      '.berth-node-agent',
      'ca.crt',
      'hosts.toml',
    ]);
    expect(await eventReasons(platform, 'k8sio')).toContain('HostNotAllowed');
  });

  it('moving certsDir to /etc: the running agents clean up the folder they mount and go; no DaemonSet ever mounts /etc', async () => {
    await createRegistry(platform, 'moved', { storage: { emptyDir: {} }, nodeAccess: { enabled: true } });
    await eventually(
      'the DaemonSet of Registry moved',
      () =>
        orUndefined(() => apps.readNamespacedDaemonSet({ name: 'moved-node-agent', namespace: platform })),
      (d) => !!d,
    );
    // Every version of the DaemonSet the API server holds from now on, by watch.
    const seen: { mode: string; hostPaths: string[] }[] = [];
    const watch = await new k8s.Watch(kc).watch(
      `/apis/apps/v1/namespaces/${platform}/daemonsets`,
      { fieldSelector: 'metadata.name=moved-node-agent' },
      (_type: string, ds: k8s.V1DaemonSet) => {
        const spec = ds.spec?.template.spec;
        seen.push({
          mode: spec?.containers[0]?.args?.includes('--cleanup') ? 'cleanup' : 'sync',
          hostPaths: (spec?.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : [])),
        });
      },
      () => undefined,
    );
    try {
      await custom.patchNamespacedCustomObject(
        {
          ...registries,
          namespace: platform,
          name: 'moved',
          body: { spec: { nodeAccess: { certsDir: '/etc' } } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await eventually(
        'the DaemonSet of Registry moved to go',
        () =>
          orUndefined(() => apps.readNamespacedDaemonSet({ name: 'moved-node-agent', namespace: platform })),
        (d) => !d,
      );
      const r = await eventually(
        'NodesReady on Registry moved',
        () => getRegistry(platform, 'moved'),
        (x) => condition(x, 'NodesReady')?.reason === 'CertsDirNotAllowed',
      );
      expect(condition(r, 'NodesReady')?.status).toBe('False');
      expect(
        await orUndefined(() =>
          core.readNamespacedConfigMap({ name: 'moved-node-access', namespace: platform }),
        ),
      ).toBeUndefined();
      expect(seen.map((v) => v.mode)).toContain('cleanup');
      for (const v of seen) expect(v.hostPaths).toEqual(['/etc/containerd/certs.d', '/etc/hosts']);
    } finally {
      (watch as { abort(): void }).abort();
    }
  });

  it('claiming another Registry’s Ingress host gets Ready=False HostConflict naming it, and no Ingress, until the host is free', async () => {
    const host = `r-${suffix}.example.com`;
    await createRegistry(platform, 'first', { storage: { emptyDir: {} }, expose: { ingress: { host } } });
    await eventually(
      'the Ingress of Registry first',
      () => orUndefined(() => net.readNamespacedIngress({ name: 'first', namespace: platform })),
      (i) => !!i,
    );
    // Creation timestamps have a resolution of one second: make the order unambiguous.
    await new Promise((r) => setTimeout(r, 1100));
    await createRegistry(team, 'second', {
      storage: { emptyDir: {} },
      expose: { ingress: { host } },
      nodeAccess: { enabled: true },
    });
    const second = await eventually(
      'Ready on Registry second',
      () => getRegistry(team, 'second'),
      (x) => condition(x, 'Ready')?.reason === 'HostConflict',
    );
    expect(condition(second, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(second, 'Ready')?.message).toContain(`${platform}/first`);
    expect(
      await orUndefined(() => net.readNamespacedIngress({ name: 'second', namespace: team })),
    ).toBeUndefined();
    const cm = await eventually(
      'the node-access ConfigMap of Registry second',
      () => orUndefined(() => core.readNamespacedConfigMap({ name: 'second-node-access', namespace: team })),
      (m) => !!m,
    );
    expect((JSON.parse(cm!.data!['config.json']!) as { hosts: string[] }).hosts).not.toContain(host);
    const first = await getRegistry(platform, 'first');
    expect(condition(first, 'Ready')?.reason).not.toBe('HostConflict');
    expect(await eventReasons(team, 'second')).toContain('HostConflict');

    // The first Registry lets the host go: the second gets it, without being touched itself.
    await custom.deleteNamespacedCustomObject({ ...registries, namespace: platform, name: 'first' });
    await eventually(
      'the Ingress of Registry second',
      () => orUndefined(() => net.readNamespacedIngress({ name: 'second', namespace: team })),
      (i) => i?.spec?.rules?.[0]?.host === host,
    );
    const after = await eventually(
      'Ready on Registry second without HostConflict',
      () => getRegistry(team, 'second'),
      (x) => condition(x, 'Ready')?.reason !== 'HostConflict',
    );
    expect(condition(after, 'Ready')?.reason).not.toBe('HostConflict');
  });
});
