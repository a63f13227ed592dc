// The Helm chart: lint, render with default and non-default values, and assert what a cluster
// operator relies on (RBAC without wildcards, restricted pods, leader election, CRDs kept on
// uninstall, every value documented and schema-checked), and that the kustomize bases agree with it.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { isMap, isScalar, parseDocument, type YAMLMap } from 'yaml';
import { parseConfig } from '../../src/config/config.ts';
import { binary, repoRoot } from '../harness/processes.ts';
import {
  chartDir,
  expectedCRDs,
  find,
  helmTemplate,
  helmTemplateRaw,
  kustomize,
  ofKind,
  rulesOf,
  run,
  type Manifest,
} from './manifests.ts';

interface Container {
  name: string;
  image: string;
  args: string[];
  env: { name: string; value?: string }[];
  ports: { name: string; containerPort: number }[];
  securityContext: Record<string, unknown>;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  startupProbe?: { httpGet: { path: string; port: string } };
  [key: string]: unknown;
}

interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: unknown[];
  [key: string]: unknown;
}

function podSpec(deployment: Manifest): PodSpec {
  return (deployment.spec as { template: { spec: PodSpec } }).template.spec;
}

function operatorContainer(manifests: Manifest[], fullname = 'berth'): Container {
  const container = podSpec(find(manifests, 'Deployment', `${fullname}-operator`)).containers[0];
  if (!container) throw new Error('the operator Deployment has no container');
  return container;
}

const clusterScoped = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

const crdFiles = (
  existsSync(path.join(repoRoot, 'crds'))
    ? readdirSync(path.join(repoRoot, 'crds'), { withFileTypes: true })
    : []
)
  .filter((f) => f.isFile() && f.name.endsWith('.yaml'))
  .map((f) => f.name);

describe('helm lint', () => {
  test('passes with default values', async () => {
    const result = await run(binary('helm'), ['lint', '--strict', chartDir]);
    expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  test('passes with every optional feature on', async () => {
    const result = await run(binary('helm'), [
      'lint',
      '--strict',
      chartDir,
      '--set',
      'metrics.serviceMonitor.enabled=true,certManager.enabled=true,podDisruptionBudget.enabled=true,replicaCount=2',
    ]);
    expect(result.code).toBe(0);
  });
});

describe('default values', () => {
  test('render the operator, its RBAC and the metrics Service, and no optional object', async () => {
    const m = await helmTemplate();
    const names = m.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'ServiceAccount/berth',
        'Deployment/berth-operator',
        'Service/berth-operator-metrics',
        'Role/berth-leader-election',
        'RoleBinding/berth-leader-election',
        'ClusterRole/berth-operator-api',
        'ClusterRole/berth-operator-data-plane',
        'ClusterRole/berth-operator-credentials',
        'ClusterRole/berth-operator-job-access',
        'ClusterRole/berth-operator-cluster-view',
        'ClusterRole/berth-retention',
        'ClusterRole/berth-retention-report',
        'ClusterRole/berth-edit',
        'ClusterRole/berth-view',
      ]),
    );
    expect(names).toContain('ClusterRole/berth-operator-cert-manager');
    const off = (await helmTemplate(['certManager.enabled=false'])).map(
      (o) => `${o.kind}/${o.metadata.name}`,
    );
    expect(off.filter((n) => n.includes('cert-manager'))).toEqual([]);
    expect(
      names.filter((n) => n.startsWith('ServiceMonitor/') || n.startsWith('PodDisruptionBudget/')),
    ).toEqual([]);
    for (const o of m.filter((x) => !clusterScoped.has(x.kind))) {
      expect([o.kind, o.metadata.namespace]).toEqual([o.kind, 'berth-system']);
    }
  });

  test('the Deployment runs `berth operator` with flags the operator accepts, leader election on', async () => {
    const c = operatorContainer(await helmTemplate());
    expect(c.args[0]).toBe('operator');
    expect(c.args).toContain('--leader-elect=true');
    const parsed = parseConfig(c.args.slice(1), { POD_NAMESPACE: 'berth-system' });
    if (!parsed.ok) throw parsed.error;
    expect(parsed.config).toMatchObject({
      leaderElect: true,
      leaderElectionNamespace: 'berth-system',
      leaderElectionId: 'berth-operator',
      metricsBindAddress: ':8080',
      healthBindAddress: ':8081',
      logLevel: 'info',
      nodeAgentAllowedDirs: ['/etc/containerd/certs.d'],
      nodeAgentAllowedHosts: ['*'],
    });
    const k3s = '/var/lib/rancher/k3s/agent/etc/containerd/certs.d';
    const set = operatorContainer(
      await helmTemplate([
        `nodeAgent.allowedDirs={/etc/containerd/certs.d,${k3s}}`,
        'nodeAgent.allowedHosts={*.example.com}',
      ]),
    );
    const custom = parseConfig(set.args.slice(1), {});
    expect(custom.ok && custom.config).toMatchObject({
      nodeAgentAllowedDirs: ['/etc/containerd/certs.d', k3s],
      nodeAgentAllowedHosts: ['*.example.com'],
    });
    expect(c.env.find((e) => e.name === 'POD_NAMESPACE')).toEqual({
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
  });

  test('the pod satisfies the restricted Pod Security Standard with a read-only root filesystem', async () => {
    const m = await helmTemplate();
    const spec = podSpec(find(m, 'Deployment', 'berth-operator'));
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const c = operatorContainer(m);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(spec.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }]);
    expect(spec.serviceAccountName).toBe('berth');
  });

  test('probes use /healthz and /readyz on the health port; the metrics Service targets the metrics port', async () => {
    const m = await helmTemplate();
    const c = operatorContainer(m);
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.ports).toEqual([
      { name: 'metrics', containerPort: 8080, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
      { name: 'events', containerPort: 8082, protocol: 'TCP' },
    ]);
    const svc = find(m, 'Service', 'berth-operator-metrics').spec as {
      selector: Record<string, string>;
      ports: unknown[];
    };
    expect(svc.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
    const podLabels = (
      find(m, 'Deployment', 'berth-operator').spec as { template: { metadata: Manifest['metadata'] } }
    ).template.metadata.labels;
    expect(podLabels).toMatchObject(svc.selector);
  });

  test('registries reach the push-event listener through its own Service; registryEvents.enabled=false turns it off', async () => {
    const m = await helmTemplate();
    const c = operatorContainer(m);
    const parsed = parseConfig(c.args.slice(1), { POD_NAMESPACE: 'berth-system' });
    if (!parsed.ok) throw parsed.error;
    expect(parsed.config).toMatchObject({
      eventsBindAddress: ':8082',
      registryEventsUrl: 'http://berth-operator-events.berth-system.svc:8082',
    });
    const svc = find(m, 'Service', 'berth-operator-events').spec as {
      selector: Record<string, string>;
      ports: unknown[];
    };
    expect(svc.ports).toEqual([{ name: 'events', port: 8082, targetPort: 'events', protocol: 'TCP' }]);
    const podLabels = (
      find(m, 'Deployment', 'berth-operator').spec as { template: { metadata: Manifest['metadata'] } }
    ).template.metadata.labels;
    expect(podLabels).toMatchObject(svc.selector);

    const off = await helmTemplate(['registryEvents.enabled=false']);
    expect(off.filter((o) => o.kind === 'Service').map((o) => o.metadata.name)).not.toContain(
      'berth-operator-events',
    );
    const offArgs = parseConfig(operatorContainer(off).args.slice(1), {});
    if (!offArgs.ok) throw offArgs.error;
    expect(offArgs.config).toMatchObject({ eventsBindAddress: '0', registryEventsUrl: '' });
    expect(operatorContainer(off).ports.map((p) => p.name)).toEqual(['metrics', 'health']);
  });

  test('the image defaults to the chart appVersion; a digest wins over the tag', async () => {
    expect(operatorContainer(await helmTemplate()).image).toBe('ghcr.io/berth-dev/berth:0.1.0');
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(operatorContainer(await helmTemplate([`image.digest=${digest}`, 'image.tag=9.9.9'])).image).toBe(
      `ghcr.io/berth-dev/berth@${digest}`,
    );
  });
});

describe('RBAC', () => {
  test('no wildcard anywhere, explicit verbs, and /status and /finalizers in rules of their own', async () => {
    const m = await helmTemplate(['certManager.enabled=true']);
    const roles = ofKind(m, 'ClusterRole', 'Role');
    expect(roles.length).toBeGreaterThanOrEqual(11);
    for (const role of roles) {
      for (const rule of rulesOf(role)) {
        const where = `${role.kind}/${role.metadata.name}`;
        for (const list of [
          rule.apiGroups ?? [],
          rule.resources ?? [],
          rule.verbs,
          rule.resourceNames ?? [],
        ]) {
          expect([where, list.filter((x) => x.includes('*'))]).toEqual([where, []]);
        }
        expect([where, rule.verbs.length > 0]).toEqual([where, true]);
        const subresources = new Set((rule.resources ?? []).map((r) => r.split('/')[1] ?? ''));
        // A rule covers objects or one subresource kind, never a mix.
        expect([where, rule.resources, subresources.size]).toEqual([where, rule.resources, 1]);
      }
    }
    const api = rulesOf(find(m, 'ClusterRole', 'berth-operator-api'));
    // Only the verbs src/ uses (hack/rbac-usage.test.ts): status by patch (server-side apply per owner).
    expect(api).toContainEqual({
      apiGroups: ['berth.dev'],
      resources: ['registries/status', 'retentionpolicies/status', 'repositories/status'],
      verbs: ['patch'],
    });
    expect(api).toContainEqual({
      apiGroups: ['berth.dev'],
      resources: ['registries/finalizers', 'repositories/finalizers'],
      verbs: ['update'],
    });
  });

  test('the operator may bind only the ClusterRoles this release ships, by their templated names', async () => {
    const m = await helmTemplate(['fullnameOverride=reg']);
    const bind = rulesOf(find(m, 'ClusterRole', 'reg-operator-job-access')).find((r) =>
      r.verbs.includes('bind'),
    );
    expect(bind).toEqual({
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      verbs: ['bind'],
      resourceNames: ['reg-retention', 'reg-retention-report', 'reg-token-review'],
    });
    for (const name of bind?.resourceNames ?? []) find(m, 'ClusterRole', name);
    // ...and the operator learns those names from its environment.
    const env = Object.fromEntries(operatorContainer(m, 'reg').env.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      BERTH_RETENTION_CLUSTER_ROLE: 'reg-retention',
      BERTH_RETENTION_REPORT_CLUSTER_ROLE: 'reg-retention-report',
      BERTH_TOKEN_REVIEW_CLUSTER_ROLE: 'reg-token-review',
    });
  });

  test('every operator ClusterRole is bound to the release ServiceAccount, the Lease Role only in the release namespace', async () => {
    const m = await helmTemplate(['certManager.enabled=true'], { release: 'ops', namespace: 'platform' });
    const operatorRoles = ofKind(m, 'ClusterRole').filter((r) =>
      r.metadata.name.startsWith('ops-berth-operator-'),
    );
    expect(operatorRoles.map((r) => r.metadata.name).sort()).toEqual(
      [
        'ops-berth-operator-api',
        'ops-berth-operator-cert-manager',
        'ops-berth-operator-cluster-view',
        'ops-berth-operator-credentials',
        'ops-berth-operator-data-plane',
        'ops-berth-operator-job-access',
      ].sort(),
    );
    for (const role of operatorRoles) {
      const binding = ofKind(m, 'ClusterRoleBinding').find(
        (b) => (b.roleRef as { name: string }).name === role.metadata.name,
      );
      expect(binding?.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'ops-berth', namespace: 'platform' },
      ]);
    }
    const lease = find(m, 'RoleBinding', 'ops-berth-leader-election');
    expect(lease.metadata.namespace).toBe('platform');
    expect(lease.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'ops-berth-leader-election',
    });
    // Nothing binds the Job roles up front: the operator binds them to its Jobs' ServiceAccounts.
    const bound = ofKind(m, 'ClusterRoleBinding', 'RoleBinding').map(
      (b) => (b.roleRef as { name: string }).name,
    );
    expect(bound).not.toContain('ops-berth-retention');
    expect(bound).not.toContain('ops-berth-retention-report');
  });

  test('the user roles aggregate into admin, edit and view', async () => {
    const m = await helmTemplate();
    expect(find(m, 'ClusterRole', 'berth-edit').metadata.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
    });
    expect(find(m, 'ClusterRole', 'berth-view').metadata.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-view': 'true',
    });
    const off = await helmTemplate(['rbac.aggregateToDefaultRoles=false']);
    expect(off.filter((o) => ['berth-edit', 'berth-view'].includes(o.metadata.name))).toEqual([]);
    // Registries are a platform object: admin/edit read them; writing is a role bound on purpose.
    type Rules = { resources: string[]; verbs: string[] }[];
    const edit = find(m, 'ClusterRole', 'berth-edit').rules as Rules;
    const registryVerbs = edit.filter((r) => r.resources.includes('registries')).flatMap((r) => r.verbs);
    expect(registryVerbs.sort()).toEqual(['get', 'list', 'watch']);
    const admin = find(m, 'ClusterRole', 'berth-registry-admin');
    expect(Object.keys(admin.metadata.labels ?? {}).filter((l) => l.startsWith('rbac.'))).toEqual([]);
    expect((admin.rules as Rules)[0]?.verbs).toContain('create');
    expect(off.map((o) => o.metadata.name)).toContain('berth-registry-admin');
  });

  test('rbac.create=false renders no RBAC object at all', async () => {
    const m = await helmTemplate(['rbac.create=false']);
    expect(ofKind(m, 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding')).toEqual([]);
  });
});

describe('CRDs', () => {
  test('crds/ holds the three berth.dev CRDs', () => {
    const names = crdFiles.map((f) => {
      const doc = parseDocument(readFileSync(path.join(repoRoot, 'crds', f), 'utf8')).toJS() as Manifest;
      return doc.metadata.name;
    });
    expect(names.sort()).toEqual(expectedCRDs);
  });

  test('are rendered from crds/, kept on uninstall, and gated by crds.enabled', async () => {
    const m = await helmTemplate();
    const crds = ofKind(m, 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(expectedCRDs);
    for (const crd of crds) {
      expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
      const source = crdFiles
        .map((f) => parseDocument(readFileSync(path.join(repoRoot, 'crds', f), 'utf8')).toJS() as Manifest)
        .find((s) => s.metadata.name === crd.metadata.name);
      expect(crd.spec).toEqual(source?.spec);
    }
    // The API's admission policies (crds/admission/) travel with the CRDs.
    const policies = ofKind(m, 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding');
    for (const p of policies) expect(p.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(
      ofKind(
        await helmTemplate(['crds.enabled=false']),
        'CustomResourceDefinition',
        'ValidatingAdmissionPolicy',
      ),
    ).toEqual([]);
    const notKept = ofKind(await helmTemplate(['crds.keep=false']), 'CustomResourceDefinition');
    expect(notKept.map((c) => c.metadata.annotations?.['helm.sh/resource-policy'])).toEqual(
      expectedCRDs.map(() => undefined),
    );
  });
});

describe('non-default values', () => {
  test('HA with a PDB, a ServiceMonitor, watched namespaces, extra flags and an existing ServiceAccount', async () => {
    const m = await helmTemplate([
      'replicaCount=3',
      'podDisruptionBudget.enabled=true',
      'podDisruptionBudget.minAvailable=2',
      'metrics.serviceMonitor.enabled=true',
      'metrics.serviceMonitor.labels.release=prom',
      'metrics.serviceMonitor.interval=15s',
      'watchNamespaces={registry-system,team-a}',
      'extraArgs={--resync-period=1h}',
      'serviceAccount.create=false',
      'serviceAccount.name=berth-sa',
      'logLevel=debug',
      'leaderElection.enabled=false',
      'nodeSelector.role=infra',
    ]);
    const deployment = find(m, 'Deployment', 'berth-operator');
    expect((deployment.spec as { replicas: number }).replicas).toBe(3);
    expect(find(m, 'PodDisruptionBudget', 'berth-operator').spec).toMatchObject({ minAvailable: 2 });
    const monitor = find(m, 'ServiceMonitor', 'berth-operator');
    expect(monitor.metadata.labels).toMatchObject({ release: 'prom' });
    expect(monitor.spec).toMatchObject({
      endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }],
      namespaceSelector: { matchNames: ['berth-system'] },
    });
    expect(ofKind(m, 'ServiceAccount')).toEqual([]);
    expect(podSpec(deployment).serviceAccountName).toBe('berth-sa');
    expect(podSpec(deployment).nodeSelector).toEqual({ role: 'infra' });
    const c = operatorContainer(m);
    const parsed = parseConfig(c.args.slice(1), {});
    if (!parsed.ok) throw parsed.error;
    expect(parsed.config).toMatchObject({
      watchNamespaces: ['registry-system', 'team-a'],
      leaderElect: false,
      logLevel: 'debug',
      resyncPeriodMs: 3_600_000,
    });
    for (const b of ofKind(m, 'ClusterRoleBinding')) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'berth-sa', namespace: 'berth-system' }]);
    }
  });

  test('the schema and the templates refuse values that would not work, with a clear message', async () => {
    const cases: [string[], string][] = [
      [['logLevel=verbose'], "at '/logLevel'"],
      [['replicaCount=0'], "at '/replicaCount'"],
      [['leaderElection.leaseDuration=fifteen'], "at '/leaderElection/leaseDuration'"],
      [['image.pullPolicy=Sometimes'], "at '/image/pullPolicy'"],
      [['unknownValue=1'], 'additional properties'],
      [
        ['metrics.serviceMonitor.enabled=true', 'metrics.service.enabled=false'],
        'needs metrics.service.enabled',
      ],
      [['serviceAccount.create=false'], 'serviceAccount.name is required'],
      [['extraArgs={operator}'], "at '/extraArgs/0'"],
      [['nodeAgent.allowedDirs={etc/containerd}'], "at '/nodeAgent/allowedDirs/0'"],
      [['nodeAgent.allowedDirs={/etc/../x}'], "at '/nodeAgent/allowedDirs/0'"],
      [['nodeAgent.allowedHosts={a host}'], "at '/nodeAgent/allowedHosts/0'"],
    ];
    for (const [values, message] of cases) {
      const result = await helmTemplateRaw(values);
      expect([values, result.code]).toEqual([values, 1]);
      expect(result.stderr).toContain(message);
    }
  });
});

describe('values.yaml', () => {
  const valuesText = readFileSync(path.join(chartDir, 'values.yaml'), 'utf8');
  const schema = JSON.parse(readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8')) as SchemaNode;

  interface SchemaNode {
    type?: string | string[];
    properties?: Record<string, SchemaNode>;
    $ref?: string;
    additionalProperties?: boolean | SchemaNode;
  }

  function undocumented(map: YAMLMap, prefix: string, parentDocumented: boolean): string[] {
    return map.items.flatMap((pair, i) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      const keyPath = prefix ? `${prefix}.${key}` : key;
      // The comment above a nested map's first key belongs to the map node in the yaml library.
      const comment =
        (isScalar(pair.key) ? pair.key.commentBefore : undefined) ??
        (i === 0 ? map.commentBefore : undefined) ??
        '';
      const documented = parentDocumented || comment.includes('-- ');
      if (isMap(pair.value) && pair.value.items.length > 0 && !comment.includes('-- ')) {
        return undocumented(pair.value, keyPath, parentDocumented);
      }
      return documented ? [] : [keyPath];
    });
  }

  test('documents every value with a "# --" comment', () => {
    const doc = parseDocument(valuesText);
    if (!isMap(doc.contents)) throw new Error('values.yaml is not a map');
    // The first key's comment is attached to the document when it follows the file header.
    const first = doc.contents.items[0];
    if (first && isScalar(first.key) && !first.key.commentBefore && doc.commentBefore?.includes('-- ')) {
      first.key.commentBefore = doc.commentBefore.slice(doc.commentBefore.lastIndexOf('-- '));
    }
    expect(undocumented(doc.contents, '', false)).toEqual([]);
  });

  test('every value is declared in values.schema.json, which refuses unknown ones', () => {
    const values = parseDocument(valuesText).toJS() as Record<string, unknown>;
    const missing: string[] = [];
    const walk = (value: unknown, node: SchemaNode, keyPath: string) => {
      if (!value || typeof value !== 'object' || Array.isArray(value) || !node.properties) return;
      if (node.additionalProperties !== false) missing.push(`${keyPath || '(root)'}: accepts unknown keys`);
      for (const [k, v] of Object.entries(value)) {
        const child = node.properties[k];
        if (!child) missing.push(`${keyPath ? `${keyPath}.` : ''}${k}`);
        else walk(v, child, keyPath ? `${keyPath}.${k}` : k);
      }
    };
    walk(values, schema, '');
    expect(missing).toEqual([]);
  });
});

describe('kustomize bases', () => {
  test('config/default builds, in berth-system, with the same CRDs and RBAC rules as the chart', async () => {
    const k = await kustomize('config/default');
    const h = await helmTemplate(['certManager.enabled=true']);
    for (const o of k.filter((x) => !clusterScoped.has(x.kind))) {
      expect([o.kind, o.metadata.name, o.metadata.namespace]).toEqual([
        o.kind,
        o.metadata.name,
        'berth-system',
      ]);
    }
    const rbacKinds = ['ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding'];
    const summary = (list: Manifest[]) =>
      ofKind(list, ...rbacKinds)
        .map((o) => ({
          id: `${o.kind}/${o.metadata.name}`,
          rules: o.rules,
          roleRef: o.roleRef,
          subjects: o.subjects,
          aggregate: Object.entries(o.metadata.labels ?? {}).filter(([l]) => l.startsWith('rbac.')),
        }))
        .sort((a, b) => a.id.localeCompare(b.id));
    expect(summary(k)).toEqual(summary(h));
    const api = ['CustomResourceDefinition', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
    const specs = (list: Manifest[]) =>
      ofKind(list, ...api)
        .map((c) => ({ id: `${c.kind}/${c.metadata.name}`, spec: c.spec }))
        .sort((a, b) => a.id.localeCompare(b.id));
    expect(specs(k)).toEqual(specs(h));
    expect(specs(k).length).toBeGreaterThanOrEqual(expectedCRDs.length);
  });

  test('config/manager runs the operator exactly as the chart does with default values', async () => {
    const k = await kustomize('config/default');
    const h = await helmTemplate();
    const kc = operatorContainer(k);
    const hc = operatorContainer(h);
    expect(kc).toEqual(hc);
    const { containers: _kc, ...kspec } = podSpec(find(k, 'Deployment', 'berth-operator'));
    const { containers: _hc, ...hspec } = podSpec(find(h, 'Deployment', 'berth-operator'));
    expect(kspec).toEqual(hspec);
    expect(find(k, 'Service', 'berth-operator-metrics').spec).toEqual(
      find(h, 'Service', 'berth-operator-metrics').spec,
    );
    expect(find(k, 'Service', 'berth-operator-events').spec).toEqual(
      find(h, 'Service', 'berth-operator-events').spec,
    );
  });

  test('config/prometheus builds a ServiceMonitor equivalent to the chart one', async () => {
    const k = await kustomize('config/prometheus');
    const h = await helmTemplate(['metrics.serviceMonitor.enabled=true']);
    const km = find(k, 'ServiceMonitor', 'berth-operator').spec as {
      endpoints: unknown;
      selector: { matchLabels: Record<string, string> };
    };
    const hm = find(h, 'ServiceMonitor', 'berth-operator').spec as {
      endpoints: unknown;
      selector: { matchLabels: Record<string, string> };
    };
    expect(km.endpoints).toEqual(hm.endpoints);
    expect(hm.selector.matchLabels).toMatchObject(km.selector.matchLabels);
  });

  test('the generated chart templates and config/crd are in sync with their sources', async () => {
    const result = await run(path.join(repoRoot, 'node_modules/.bin/node'), [
      'hack/sync-manifests.ts',
      '--check',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
