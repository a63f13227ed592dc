// Least privilege, measured: every verb that config/rbac grants to berth's own identities (the
// operator, its retention Jobs) has a user in src/, named here by file and the call that needs it.
// The test fails when a rule has no entry (a new permission nobody justified), when an entry's
// call is gone from its file (a permission whose user was removed: drop the verb), when an entry
// names a permission that no rule grants, and when docs/rbac.md does not name the role and file.
// Roles for people (component user-roles) have no user in src/ and are checked by
// test/security/tenancy.test.ts instead.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Role {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  rules?: Rule[];
}

/** One permission: `<role> <group>/<resource> <verb>` (core group written as ""). */
type Grant = string;
const grant = (role: string, group: string, resource: string, verb: string): Grant =>
  `${role} ${group}/${resource} ${verb}`;

interface Use {
  file: string;
  /** The call that needs the permission. */
  call: RegExp;
}

// Which client call needs which verb (src/runtime/kube/client.ts): get/find → get; list → list;
// an informer → list and watch; create → create; replace and updateStatus → update; mergePatch,
// addFinalizer/removeFinalizer and server-side apply (applyOwned, applyCached, apply) → patch, and
// create too when the object does not exist yet; delete/deleteIfExists → delete. An owner
// reference with blockOwnerDeletion needs update on the owner's finalizers subresource.
const uses: [role: string, group: string, resources: string[], verbs: string[], use: Use[]][] = [
  // berth-operator-api
  [
    'berth-operator-api',
    'berth.dev',
    ['registries'],
    ['get'],
    [
      {
        file: 'src/retention/controller.ts',
        call: /client\.get<[\w.]+>\(\s*objectPath\(resources\.registries/,
      },
    ],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['registries'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.registries\)/ }],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['registries'],
    ['patch'],
    [
      { file: 'src/registry/node-access-step.ts', call: /mergePatch<KubeObject>\(\s*objectPath\(registries/ },
      {
        file: 'src/pullsecrets/reconciler.ts',
        call: /addFinalizer\(this\.deps\.client, resources\.registries/,
      },
    ],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['repositories'],
    ['get'],
    [{ file: 'src/repository/push-events-handler.ts', call: /client\.find<[\w.]+>\(path\)/ }],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['repositories'],
    ['list', 'watch'],
    [{ file: 'src/repository/controller.ts', call: /manager\.informer\(resources\.repositories\)/ }],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['retentionpolicies'],
    ['list', 'watch'],
    [{ file: 'src/retention/controller.ts', call: /manager\.informer\(retentionPolicies\)/ }],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['registries/status'],
    ['patch'],
    [
      { file: 'src/registry/reconciler.ts', call: /applyStatus\(this\.deps\.client, resources\.registries/ },
      {
        file: 'src/pullsecrets/reconciler.ts',
        call: /applyStatus\(this\.deps\.client, resources\.registries/,
      },
      { file: 'src/gc/controller.ts', call: /applyStatus\(\s*this\.deps\.client,\s*resources\.registries/ },
    ],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['retentionpolicies/status'],
    ['patch'],
    [{ file: 'src/retention/controller.ts', call: /applyStatus\(this\.deps\.client, retentionPolicies/ }],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['repositories/status'],
    ['patch'],
    [
      {
        file: 'src/repository/reconciler.ts',
        call: /applyStatus\(this\.deps\.client, resources\.repositories/,
      },
      // refusals: the runtime writes Ready=False as the Repository's status owner
      { file: 'src/repository/controller.ts', call: /reportTo: \{ type: resources\.repositories/ },
      { file: 'src/repository/push-events-handler.ts', call: /mergePatch\(`\$\{path\}\/status`/ },
    ],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['registries/finalizers'],
    ['update'],
    [{ file: 'src/model/registry.ts', call: /blockOwnerDeletion: true/ }],
  ],
  [
    'berth-operator-api',
    'berth.dev',
    ['repositories/finalizers'],
    ['update'],
    [
      {
        file: 'src/repository/reconciler.ts',
        call: /ownerReference\(\{\s*apiVersion: 'berth\.dev\/v1alpha1',\s*kind: 'Repository'/,
      },
      { file: 'src/runtime/objects.ts', call: /blockOwnerDeletion: controller/ },
    ],
  ],
  // berth-operator-data-plane
  [
    'berth-operator-data-plane',
    '',
    ['configmaps'],
    ['get'],
    [
      { file: 'src/retention/controller.ts', call: /client\.get<[\w.]+>\(objectPath\(core\.configMaps/ },
      {
        file: 'src/repository/tags.ts',
        call: /objectPath\(resources\.configMaps, registry\.status\.caConfigMap/,
      },
    ],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['configmaps'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.configMaps, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['configmaps'],
    ['create', 'patch'],
    [
      { file: 'src/registry/reconciler.ts', call: /this\.apply\(resources\.configMaps, caConfigMap\(/ },
      { file: 'src/registry/node-access-step.ts', call: /this\.apply\(configMaps, nodeAccessConfigMap\(/ },
    ],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['configmaps'],
    ['delete'],
    [{ file: 'src/registry/node-access-step.ts', call: /deleteIfCached\(\s*configMaps/ }],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['services'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.services, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['services'],
    ['create', 'patch'],
    [{ file: 'src/registry/reconciler.ts', call: /this\.apply\(resources\.services, registryService\(/ }],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['persistentvolumeclaims'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.pvcs, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    '',
    ['persistentvolumeclaims'],
    ['create', 'patch'],
    [{ file: 'src/registry/reconciler.ts', call: /this\.apply\(resources\.pvcs, pvc/ }],
  ],
  [
    'berth-operator-data-plane',
    'apps',
    ['deployments'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.deployments, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    'apps',
    ['deployments'],
    ['create', 'patch'],
    [
      { file: 'src/registry/reconciler.ts', call: /resources\.deployments,\s*registryDeployment\(ctx\)/ },
      { file: 'src/gc/controller.ts', call: /client\.apply\(\s*objectPath\(resources\.deployments/ },
    ],
  ],
  [
    'berth-operator-data-plane',
    'apps',
    ['daemonsets'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(daemonSets, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    'apps',
    ['daemonsets'],
    ['create', 'patch'],
    [
      {
        file: 'src/registry/node-access-step.ts',
        call: /this\.apply\(\s*daemonSets,\s*nodeAgentDaemonSet\(/,
      },
    ],
  ],
  [
    'berth-operator-data-plane',
    'apps',
    ['daemonsets'],
    ['delete'],
    [{ file: 'src/registry/node-access-step.ts', call: /deleteIfCached\(\s*daemonSets/ }],
  ],
  [
    'berth-operator-data-plane',
    'batch',
    ['jobs'],
    ['get'],
    [{ file: 'src/gc/controller.ts', call: /client\.get<[\w.]+>\(objectPath\(jobs/ }],
  ],
  [
    'berth-operator-data-plane',
    'batch',
    ['jobs'],
    ['list', 'watch'],
    [{ file: 'src/gc/controller.ts', call: /manager\.informer\(jobs, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    'batch',
    ['jobs'],
    ['create'],
    [
      { file: 'src/gc/controller.ts', call: /client\.create\(collectionPath\(jobs/ },
      { file: 'src/retention/controller.ts', call: /client\.create\(collectionPath\(jobs/ },
    ],
  ],
  [
    'berth-operator-data-plane',
    'networking.k8s.io',
    ['networkpolicies'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.networkPolicies, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    'networking.k8s.io',
    ['networkpolicies'],
    ['create', 'patch'],
    [
      {
        file: 'src/registry/reconciler.ts',
        call: /this\.apply\(resources\.networkPolicies, registryNetworkPolicy/,
      },
    ],
  ],
  [
    'berth-operator-data-plane',
    'networking.k8s.io',
    ['ingresses'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.ingresses, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    'networking.k8s.io',
    ['ingresses'],
    ['create', 'patch', 'delete'],
    [
      { file: 'src/registry/reconciler.ts', call: /applyOrDelete\(\s*resources\.ingresses/ },
      { file: 'src/registry/reconciler.ts', call: /deleteIfExists\(objectPath\(type, name, namespace\)\)/ },
    ],
  ],
  [
    'berth-operator-data-plane',
    'policy',
    ['poddisruptionbudgets'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.pdbs, owned\)/ }],
  ],
  [
    'berth-operator-data-plane',
    'policy',
    ['poddisruptionbudgets'],
    ['create', 'patch', 'delete'],
    [{ file: 'src/registry/reconciler.ts', call: /applyOrDelete\(\s*resources\.pdbs/ }],
  ],
  // berth-operator-credentials
  [
    'berth-operator-credentials',
    '',
    ['secrets'],
    ['get'],
    [
      // a user's TLS or S3 Secret, cert-manager's Secret: runtime/secrets.ts reads what is not cached
      { file: 'src/registry/reconciler.ts', call: /findSecret\(this\.deps\.client, \w+\.ref\.namespace/ },
      { file: 'src/repository/tags.ts', call: /objectPath\(resources\.secrets, names\.adminSecret/ },
    ],
  ],
  [
    'berth-operator-credentials',
    '',
    ['secrets'],
    ['list', 'watch'],
    [
      { file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.secrets, owned\)/ },
      {
        file: 'src/pullsecrets/controller.ts',
        call: /manager\.informer\(resources\.secrets, \{ labelSelector: managedBySelector \}\)/,
      },
    ],
  ],
  [
    'berth-operator-credentials',
    '',
    ['secrets'],
    ['create', 'patch'],
    [
      { file: 'src/registry/reconciler.ts', call: /this\.apply\(resources\.secrets, caSecret\(/ },
      { file: 'src/pullsecrets/reconciler.ts', call: /applyOwned\(/ },
    ],
  ],
  [
    'berth-operator-credentials',
    '',
    ['secrets'],
    ['delete'],
    [
      { file: 'src/pullsecrets/reconciler.ts', call: /deleteIfExists\(objectPath\(resources\.secrets/ },
      { file: 'src/repository/reconciler.ts', call: /deleteIfExists\(objectPath\(resources\.secrets/ },
    ],
  ],
  [
    'berth-operator-credentials',
    '',
    ['serviceaccounts'],
    ['list', 'watch'],
    [{ file: 'src/pullsecrets/controller.ts', call: /manager\.informer\(resources\.serviceAccounts\)/ }],
  ],
  [
    'berth-operator-credentials',
    '',
    ['serviceaccounts'],
    ['create'],
    [
      { file: 'src/retention/controller.ts', call: /core\.serviceAccounts,\s*retentionServiceAccountObject/ },
      { file: 'src/registry/token-identity-step.ts', call: /core\.serviceAccounts,\s*serviceAccount/ },
    ],
  ],
  [
    'berth-operator-credentials',
    '',
    ['serviceaccounts'],
    ['patch'],
    [
      { file: 'src/pullsecrets/reconciler.ts', call: /objectPath\(resources\.serviceAccounts/ },
      { file: 'src/retention/controller.ts', call: /core\.serviceAccounts,\s*retentionServiceAccountObject/ },
      { file: 'src/registry/token-identity-step.ts', call: /core\.serviceAccounts,\s*serviceAccount/ },
    ],
  ],
  // berth-operator-job-access
  [
    'berth-operator-job-access',
    'rbac.authorization.k8s.io',
    ['clusterrolebindings'],
    ['create', 'patch'],
    [
      { file: 'src/retention/controller.ts', call: /clusterRoleBindings,\s*retentionClusterBinding\(/ },
      { file: 'src/registry/token-identity-step.ts', call: /clusterRoleBindings,\s*binding/ },
    ],
  ],
  [
    'berth-operator-job-access',
    'rbac.authorization.k8s.io',
    ['rolebindings'],
    ['create', 'patch'],
    [{ file: 'src/retention/controller.ts', call: /roleBindings,\s*retentionReportBinding\(/ }],
  ],
  [
    'berth-operator-job-access',
    'rbac.authorization.k8s.io',
    ['clusterroles'],
    ['bind'],
    [
      { file: 'src/retention/controller-job.ts', call: /kind: 'ClusterRole', name: roles\.cluster/ },
      { file: 'src/retention/controller-job.ts', call: /kind: 'ClusterRole', name: roles\.report/ },
      { file: 'src/registry/desired/token-service.ts', call: /kind: 'ClusterRole', name: clusterRole/ },
    ],
  ],
  // berth-operator-cluster-view
  [
    'berth-operator-cluster-view',
    '',
    ['namespaces'],
    ['list', 'watch'],
    [{ file: 'src/registry/controller.ts', call: /manager\.informer\(resources\.namespaces\)/ }],
  ],
  [
    'berth-operator-cluster-view',
    '',
    ['pods'],
    ['list'],
    [
      { file: 'src/jobs/placement.ts', call: /client\.list<[\w.]+>\(collectionPath\(core\.pods/ },
      { file: 'src/gc/controller.ts', call: /client\.list<[\w.]+>\(collectionPath\(core\.pods/ },
    ],
  ],
  [
    'berth-operator-cluster-view',
    'apiextensions.k8s.io',
    ['customresourcedefinitions'],
    ['get'],
    [{ file: 'src/registry/reconciler.ts', call: /client\.find\(objectPath\(resources\.crds/ }],
  ],
  [
    'berth-operator-cluster-view',
    'events.k8s.io',
    ['events'],
    ['create'],
    [{ file: 'src/runtime/events.ts', call: /\.create\(collectionPath\(core\.events/ }],
  ],
  [
    'berth-operator-cluster-view',
    'events.k8s.io',
    ['events'],
    ['patch'],
    [{ file: 'src/runtime/events.ts', call: /mergePatch\(objectPath\(core\.events/ }],
  ],
  // berth-operator-cert-manager
  [
    'berth-operator-cert-manager',
    'cert-manager.io',
    ['certificates'],
    ['create', 'patch'],
    [{ file: 'src/registry/reconciler.ts', call: /applyOwned\(this\.deps\.client, resources\.certificates/ }],
  ],
  // berth-leader-election
  [
    'berth-leader-election',
    'coordination.k8s.io',
    ['leases'],
    ['get'],
    [{ file: 'src/runtime/leader.ts', call: /call<Lease>\('GET'/ }],
  ],
  [
    'berth-leader-election',
    'coordination.k8s.io',
    ['leases'],
    ['create'],
    [{ file: 'src/runtime/leader.ts', call: /call<Lease>\('POST'/ }],
  ],
  [
    'berth-leader-election',
    'coordination.k8s.io',
    ['leases'],
    ['update'],
    [{ file: 'src/runtime/leader.ts', call: /call<Lease>\('PUT'/ }],
  ],
  // berth-token-review (the token service: ServiceAccount tokens, docs/identity.md)
  [
    'berth-token-review',
    'authentication.k8s.io',
    ['tokenreviews'],
    ['create'],
    [{ file: 'src/token/service.ts', call: /'POST', '\/apis\/authentication\.k8s\.io\/v1\/tokenreviews'/ }],
  ],
  // berth-retention (the retention Job)
  [
    'berth-retention',
    '',
    ['pods'],
    ['list'],
    [{ file: 'src/retention/run/in-use.ts', call: /path: '\/api\/v1\/pods'/ }],
  ],
  [
    'berth-retention',
    'apps',
    ['deployments', 'statefulsets', 'daemonsets', 'replicasets'],
    ['list'],
    [
      {
        file: 'src/retention/run/in-use.ts',
        call: /'\/apis\/apps\/v1\/deployments'[\s\S]*'\/apis\/apps\/v1\/statefulsets'[\s\S]*'\/apis\/apps\/v1\/daemonsets'[\s\S]*'\/apis\/apps\/v1\/replicasets'/,
      },
    ],
  ],
  [
    'berth-retention',
    'batch',
    ['jobs', 'cronjobs'],
    ['list'],
    [
      {
        file: 'src/retention/run/in-use.ts',
        call: /'\/apis\/batch\/v1\/jobs'[\s\S]*'\/apis\/batch\/v1\/cronjobs'/,
      },
    ],
  ],
  [
    'berth-retention',
    'berth.dev',
    ['retentionpolicies'],
    ['get'],
    [
      {
        file: 'src/retention/run/command.ts',
        call: /kube\.get\(\s*berthPath\(config\.policy\.namespace, 'retentionpolicies'/,
      },
    ],
  ],
  [
    'berth-retention',
    'berth.dev',
    ['registries'],
    ['get'],
    [
      {
        file: 'src/retention/run/command.ts',
        call: /kube\.get\(\s*berthPath\(regRef\.namespace, 'registries'/,
      },
    ],
  ],
  [
    'berth-retention',
    'berth.dev',
    ['repositories'],
    ['list'],
    [
      {
        file: 'src/retention/run/command.ts',
        call: /kube\.list\(berthPath\(config\.policy\.namespace, 'repositories'\)\)/,
      },
    ],
  ],
  // berth-retention-report (the retention Job, in the policy's namespace)
  [
    'berth-retention-report',
    '',
    ['configmaps'],
    ['get'],
    [{ file: 'src/retention/run/report.ts', call: /client\.find<ConfigMap>\(/ }],
  ],
  [
    'berth-retention-report',
    '',
    ['configmaps'],
    ['create'],
    [{ file: 'src/retention/run/report.ts', call: /client\.create\(path, body\)/ }],
  ],
  [
    'berth-retention-report',
    '',
    ['configmaps'],
    ['update'],
    [{ file: 'src/retention/run/report.ts', call: /client\.replace\(/ }],
  ],
];

function roles(): Role[] {
  const dir = path.join(root, 'config/rbac');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) =>
      parseAllDocuments(readFileSync(path.join(dir, f), 'utf8'))
        .map((d) => d.toJS() as Role)
        .filter((o) => o && (o.kind === 'ClusterRole' || o.kind === 'Role')),
    );
}

const berthRoles = () =>
  roles().filter((r) => r.metadata.labels?.['app.kubernetes.io/component'] !== 'user-roles');

function granted(): Set<Grant> {
  const out = new Set<Grant>();
  for (const role of berthRoles())
    for (const rule of role.rules ?? [])
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs) out.add(grant(role.metadata.name, group, resource, verb));
  return out;
}

function justified(): Set<Grant> {
  const out = new Set<Grant>();
  for (const [role, group, resources, verbs] of uses)
    for (const resource of resources) for (const verb of verbs) out.add(grant(role, group, resource, verb));
  return out;
}

describe('every permission berth holds has a user in src/', () => {
  const grants = granted();
  const reasons = justified();
  test('no rule grants a verb that no code needs', () => {
    const missing = [...grants].filter((g) => !reasons.has(g));
    expect(missing).toEqual([]);
  });

  test('no justification names a permission that no rule grants', () => {
    const stale = [...reasons].filter((g) => !grants.has(g));
    expect(stale).toEqual([]);
  });

  test('every named call is still in its file', () => {
    const gone: string[] = [];
    for (const [role, group, resources, verbs, list] of uses)
      for (const use of list) {
        const text = readFileSync(path.join(root, use.file), 'utf8');
        if (!use.call.test(text))
          gone.push(`${role} ${group}/${resources.join(',')} ${verbs.join(',')}: ${use.file} ${use.call}`);
      }
    expect(gone).toEqual([]);
  });

  test('no wildcard and no verb that escalates (escalate, impersonate, bind without resourceNames)', () => {
    const bad: string[] = [];
    for (const role of roles())
      for (const rule of role.rules ?? []) {
        const all = [...rule.apiGroups, ...rule.resources, ...rule.verbs];
        if (all.includes('*')) bad.push(`${role.metadata.name}: *`);
        if (rule.verbs.some((v) => v === 'escalate' || v === 'impersonate'))
          bad.push(`${role.metadata.name}: ${rule.verbs.join(',')}`);
        if (rule.verbs.includes('bind') && !rule.resourceNames?.length)
          bad.push(`${role.metadata.name}: bind on any role`);
      }
    expect(bad).toEqual([]);
  });

  test('docs/rbac.md names every role and every file that needs a permission', () => {
    const doc = readFileSync(path.join(root, 'docs/rbac.md'), 'utf8');
    const names = roles().map((r) => r.metadata.name);
    const files = [...new Set(uses.flatMap(([, , , , list]) => list.map((u) => u.file)))];
    expect([...names, ...files].filter((x) => !doc.includes(`\`${x}\``))).toEqual([]);
  });
});
