// The rules of the berth.dev API that the API server itself enforces (schema, CEL, and the
// Repository admission policy): each invalid object is refused, and the refusal names the field
// at fault and says what to do. Each object has exactly one fault, so the test also proves that
// the rule it aims at is the one that fires.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import { BerthObjects, installAdmissionPolicies, rejection, type KindName, type Obj } from './helpers.ts';

type Spec = Record<string, unknown>;

const registry = (spec: Spec): Spec => ({ storage: { persistentVolumeClaim: { size: '10Gi' } }, ...spec });
const pvc = { persistentVolumeClaim: { size: '10Gi' } };
const s3 = { bucket: 'acme-registry', region: 'us-east-1', secretRef: { name: 'registry-s3' } };
const repository = (spec: Spec): Spec => ({ registryRef: { name: 'main' }, ...spec });
const rule = { name: 'ci', tags: { include: ['main-*'] }, keep: { mostRecent: 10 } };
const policy = (spec: Spec): Spec => ({
  registryRef: { name: 'main' },
  repositories: { include: ['team-a/**'] },
  schedule: '0 2 * * *',
  rules: [rule],
  ...spec,
});

interface Case {
  name: string;
  kind: KindName;
  /** The spec; a function receives the test namespace. */
  spec: Spec | ((namespace: string) => Spec);
  /** The field the API server must name. */
  field: string;
  /** What the message must say (how to fix it). */
  says: RegExp;
  /** Refused by the ValidatingAdmissionPolicy, whose answer names the field in its message only. */
  byPolicy?: true;
}

const cases: Case[] = [
  // Registry: storage
  {
    name: 'two storage backends',
    kind: 'Registry',
    spec: { storage: { ...pvc, emptyDir: {} } },
    field: 'spec.storage',
    says: /exactly one backend: persistentVolumeClaim, s3 or emptyDir/,
  },
  {
    name: 'no storage backend',
    kind: 'Registry',
    spec: { storage: {} },
    field: 'spec.storage',
    says: /exactly one backend/,
  },
  { name: 'storage left out', kind: 'Registry', spec: {}, field: 'spec.storage', says: /Required value/ },
  {
    name: 'replicas > 1 on a ReadWriteOnce claim',
    kind: 'Registry',
    spec: registry({ replicas: 2 }),
    field: 'spec.replicas',
    says: /needs shared storage: use storage.s3, or a storage.persistentVolumeClaim with accessModes \[ReadWriteMany\]/,
  },
  {
    name: 'replicas > 1 on emptyDir',
    kind: 'Registry',
    spec: { replicas: 3, storage: { emptyDir: {} } },
    field: 'spec.replicas',
    says: /needs shared storage/,
  },
  {
    name: 'replicas 0',
    kind: 'Registry',
    spec: registry({ replicas: 0 }),
    field: 'spec.replicas',
    says: /greater than or equal to 1/,
  },
  {
    name: 'claim size that is not a quantity',
    kind: 'Registry',
    spec: { storage: { persistentVolumeClaim: { size: 'lots' } } },
    field: 'spec.storage.persistentVolumeClaim.size',
    says: /positive quantity such as 50Gi/,
  },
  {
    name: 'claim size zero',
    kind: 'Registry',
    spec: { storage: { persistentVolumeClaim: { size: '0' } } },
    field: 'spec.storage.persistentVolumeClaim.size',
    says: /positive quantity/,
  },
  {
    name: 'claim access mode ReadOnlyMany',
    kind: 'Registry',
    spec: { storage: { persistentVolumeClaim: { size: '1Gi', accessModes: ['ReadOnlyMany'] } } },
    field: 'spec.storage.persistentVolumeClaim.accessModes[0]',
    says: /supported values: "ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"/,
  },
  {
    name: 'emptyDir sizeLimit negative',
    kind: 'Registry',
    spec: { storage: { emptyDir: { sizeLimit: '-1Gi' } } },
    field: 'spec.storage.emptyDir.sizeLimit',
    says: /positive quantity such as 5Gi/,
  },
  {
    name: 's3 without bucket',
    kind: 'Registry',
    spec: { storage: { s3: { region: 'us-east-1', secretRef: { name: 'x' } } } },
    field: 'spec.storage.s3.bucket',
    says: /Required value/,
  },
  {
    name: 's3 endpoint that is not a URL',
    kind: 'Registry',
    spec: { storage: { s3: { ...s3, regionEndpoint: 'minio:9000' } } },
    field: 'spec.storage.s3.regionEndpoint',
    says: /http or https URL/,
  },
  // Registry: TLS
  {
    name: 'unknown TLS mode',
    kind: 'Registry',
    spec: registry({ tls: { mode: 'ACME' } }),
    field: 'spec.tls.mode',
    says: /supported values: "SelfSigned", "CertManager", "Secret", "Disabled"/,
  },
  {
    name: 'CertManager without issuerRef',
    kind: 'Registry',
    spec: registry({ tls: { mode: 'CertManager' } }),
    field: 'spec.tls.issuerRef',
    says: /required when spec.tls.mode is CertManager/,
  },
  {
    name: 'issuerRef with SelfSigned',
    kind: 'Registry',
    spec: registry({ tls: { mode: 'SelfSigned', issuerRef: { name: 'ca' } } }),
    field: 'spec.tls.issuerRef',
    says: /only used with mode CertManager; remove it or set spec.tls.mode to CertManager/,
  },
  {
    name: 'Secret mode without secretName',
    kind: 'Registry',
    spec: registry({ tls: { mode: 'Secret' } }),
    field: 'spec.tls.secretName',
    says: /required when spec.tls.mode is Secret/,
  },
  {
    name: 'duration in days',
    kind: 'Registry',
    spec: registry({ tls: { duration: '90d' } }),
    field: 'spec.tls.duration',
    says: /duration of at least 1h written like 2160h/,
  },
  {
    name: 'renewBefore not shorter than duration',
    kind: 'Registry',
    spec: registry({ tls: { duration: '720h', renewBefore: '720h' } }),
    field: 'spec.tls.renewBefore',
    says: /must be shorter than spec.tls.duration/,
  },
  // Registry: exposure, pull secrets, nodes, GC
  {
    name: 'service port out of range',
    kind: 'Registry',
    spec: registry({ expose: { service: { port: 70000 } } }),
    field: 'spec.expose.service.port',
    says: /less than or equal to 65535/,
  },
  {
    name: 'ingress host with capitals',
    kind: 'Registry',
    spec: registry({ expose: { ingress: { host: 'Registry.Example.com' } } }),
    field: 'spec.expose.ingress.host',
    says: /lowercase DNS name/,
  },
  {
    name: 'pull secret name with an underscore',
    kind: 'Registry',
    spec: registry({ pullSecrets: { secretName: 'main_pull' } }),
    field: 'spec.pullSecrets.secretName',
    says: /valid Secret name: lowercase letters, digits, '-' and '.'/,
  },
  {
    name: 'pull secrets without secretName',
    kind: 'Registry',
    spec: registry({ pullSecrets: { namespaceSelector: {} } }),
    field: 'spec.pullSecrets.secretName',
    says: /Required value/,
  },
  {
    name: 'gracePeriod not shorter than interval',
    kind: 'Registry',
    spec: registry({ pullSecrets: { secretName: 'p', rotation: { interval: '2h', gracePeriod: '120m' } } }),
    field: 'spec.pullSecrets.rotation.gracePeriod',
    says: /must be shorter than spec.pullSecrets.rotation.interval/,
  },
  {
    name: 'rotation interval that is not a duration',
    kind: 'Registry',
    spec: registry({ pullSecrets: { secretName: 'p', rotation: { interval: 'daily', gracePeriod: '1h' } } }),
    field: 'spec.pullSecrets.rotation.interval',
    says: /duration of at least 1m written like 24h/,
  },
  {
    name: 'serviceAccounts with both all and names',
    kind: 'Registry',
    spec: registry({ pullSecrets: { secretName: 'p', serviceAccounts: { all: true, names: ['default'] } } }),
    field: 'spec.pullSecrets.serviceAccounts',
    says: /set either all: true or names, not both/,
  },
  {
    name: 'relative certsDir',
    kind: 'Registry',
    spec: registry({ nodeAccess: { enabled: true, certsDir: 'etc/containerd' } }),
    field: 'spec.nodeAccess.certsDir',
    says: /absolute path/,
  },
  {
    name: 'GC schedule with four fields',
    kind: 'Registry',
    spec: registry({ garbageCollection: { schedule: '0 3 * *' } }),
    field: 'spec.garbageCollection.schedule',
    says: /five-field cron expression/,
  },
  {
    name: 'GC schedule minute 60',
    kind: 'Registry',
    spec: registry({ garbageCollection: { schedule: '60 3 * * 0' } }),
    field: 'spec.garbageCollection.schedule',
    says: /five-field cron expression/,
  },
  {
    name: 'GC schedule left out',
    kind: 'Registry',
    spec: registry({ garbageCollection: { deleteUntagged: true } }),
    field: 'spec.garbageCollection.schedule',
    says: /Required value/,
  },
  {
    name: 'unknown deletionPolicy',
    kind: 'Registry',
    spec: registry({ deletionPolicy: 'Orphan' }),
    field: 'spec.deletionPolicy',
    says: /supported values: "Retain", "Delete"/,
  },
  // Repository
  {
    name: 'registryRef left out',
    kind: 'Repository',
    spec: {},
    field: 'spec.registryRef',
    says: /Required value/,
  },
  {
    name: 'registryRef without name',
    kind: 'Repository',
    spec: { registryRef: { namespace: 'registry-system' } },
    field: 'spec.registryRef.name',
    says: /Required value/,
  },
  {
    name: 'path with capitals',
    kind: 'Repository',
    spec: (ns) => repository({ path: `${ns}/Web` }),
    field: 'spec.path',
    says: /valid OCI repository name/,
  },
  {
    name: 'path with an empty component',
    kind: 'Repository',
    spec: (ns) => repository({ path: `${ns}//web` }),
    field: 'spec.path',
    says: /valid OCI repository name/,
  },
  {
    name: 'path without a namespace component',
    kind: 'Repository',
    spec: repository({ path: 'web' }),
    field: 'spec.path',
    says: /must start with the Repository's namespace and a '\/'/,
  },
  {
    name: "path in another namespace's space",
    kind: 'Repository',
    spec: repository({ path: 'team-b/web' }),
    field: 'spec.path',
    says: /must start with the Repository's namespace: "team-b\/web" is not under "api-invalid-[0-9a-f]+\/"/,
    byPolicy: true,
  },
  {
    name: 'push ServiceAccount of another namespace',
    kind: 'Repository',
    spec: repository({ push: { serviceAccounts: [{ namespace: 'team-b', name: 'ci' }] } }),
    field: 'spec.push.serviceAccounts',
    says: /may name only ServiceAccounts of the Repository's namespace "api-invalid-[0-9a-f]+"/,
    byPolicy: true,
  },
  {
    name: 'pull ServiceAccount name that is not a name',
    kind: 'Repository',
    spec: repository({ pull: { serviceAccounts: [{ namespace: 'team-b', name: 'CI_Bot' }] } }),
    field: 'spec.pull.serviceAccounts[0].name',
    says: /must be a ServiceAccount name/,
  },
  {
    name: 'ServiceAccount token audience with a space',
    kind: 'Registry',
    spec: registry({ auth: { serviceAccountTokens: { audience: 'berth dev' } } }),
    field: 'spec.auth.serviceAccountTokens.audience',
    says: /printable ASCII without spaces or commas/,
  },
  {
    name: 'pull namespace that is not a namespace name',
    kind: 'Repository',
    spec: repository({ pull: { namespaces: ['Team_B'] } }),
    field: 'spec.pull.namespaces[0]',
    says: /must be namespace names/,
  },
  {
    name: 'push secret name with capitals',
    kind: 'Repository',
    spec: repository({ push: { secretName: 'Web-Push' } }),
    field: 'spec.push.secretName',
    says: /valid Secret name/,
  },
  // RetentionPolicy
  {
    name: 'duplicate rule names',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [rule, { ...rule, keep: { all: true } }] }),
    field: 'spec.rules',
    says: /spec.rules\[1\]: Duplicate value: .*"name":"ci"/,
  },
  {
    name: 'keep without any criterion',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [{ ...rule, keep: {} }] }),
    field: 'spec.rules[0].keep',
    says: /must be \{all: true\} or set at least one of mostRecent and pushedWithin/,
  },
  {
    name: 'keep all: false alone',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [{ ...rule, keep: { all: false } }] }),
    field: 'spec.rules[0].keep',
    says: /at least one of mostRecent and pushedWithin/,
  },
  {
    name: 'keep all with a count',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [{ ...rule, keep: { all: true, mostRecent: 3 } }] }),
    field: 'spec.rules[0].keep',
    says: /keep.all cannot be combined with mostRecent or pushedWithin/,
  },
  {
    name: 'negative mostRecent',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [{ ...rule, keep: { mostRecent: -1 } }] }),
    field: 'spec.rules[0].keep.mostRecent',
    says: /greater than or equal to 0/,
  },
  {
    name: 'pushedWithin in days',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [{ ...rule, keep: { pushedWithin: '30d' } }] }),
    field: 'spec.rules[0].keep.pushedWithin',
    says: /duration written like 720h/,
  },
  {
    name: 'maxDeletions.percent above 100',
    kind: 'RetentionPolicy',
    spec: policy({ protect: { maxDeletions: { percent: 101 } } }),
    field: 'spec.protect.maxDeletions.percent',
    says: /less than or equal to 100/,
  },
  {
    name: 'maxDeletions.percent negative',
    kind: 'RetentionPolicy',
    spec: policy({ protect: { maxDeletions: { percent: -1 } } }),
    field: 'spec.protect.maxDeletions.percent',
    says: /greater than or equal to 0/,
  },
  {
    name: 'maxDeletions.count negative',
    kind: 'RetentionPolicy',
    spec: policy({ protect: { maxDeletions: { count: -5 } } }),
    field: 'spec.protect.maxDeletions.count',
    says: /greater than or equal to 0/,
  },
  {
    name: 'unknown mode',
    kind: 'RetentionPolicy',
    spec: policy({ mode: 'Delete' }),
    field: 'spec.mode',
    says: /supported values: "DryRun", "Enforce"/,
  },
  {
    name: 'schedule in words',
    kind: 'RetentionPolicy',
    spec: policy({ schedule: 'every day' }),
    field: 'spec.schedule',
    says: /five-field cron expression .* for example "0 2 \* \* \*"/,
  },
  {
    name: 'schedule with six fields (seconds)',
    kind: 'RetentionPolicy',
    spec: policy({ schedule: '0 0 2 * * *' }),
    field: 'spec.schedule',
    says: /five-field cron expression/,
  },
  {
    name: 'no rules',
    kind: 'RetentionPolicy',
    spec: policy({ rules: [] }),
    field: 'spec.rules',
    says: /should have at least 1 items/,
  },
  {
    name: 'no repository globs',
    kind: 'RetentionPolicy',
    spec: policy({ repositories: { include: [] } }),
    field: 'spec.repositories.include',
    says: /should have at least 1 items/,
  },
];

/** Whether `field` is `parent` or one of its elements or children. */
function within(field: string, parent: string): boolean {
  return field === parent || field.startsWith(`${parent}.`) || field.startsWith(`${parent}[`);
}

describe('the API server refuses invalid berth objects', () => {
  const kc = testKubeConfig();
  const objects = new BerthObjects(kc);
  let namespace = '';

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'api-invalid');
    await installAdmissionPolicies(objects, namespace);
  });

  test('the table covers at least 30 rules over the three kinds', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    for (const kind of ['Registry', 'Repository', 'RetentionPolicy']) {
      expect(cases.filter((c) => c.kind === kind).length).toBeGreaterThanOrEqual(8);
    }
  });

  test.each(cases)('$kind: $name → $field', async (c) => {
    const obj: Obj = {
      apiVersion: 'berth.dev/v1alpha1',
      kind: c.kind,
      metadata: { name: `invalid-${cases.indexOf(c)}`, namespace },
      spec: typeof c.spec === 'function' ? c.spec(namespace) : c.spec,
    };
    const refused = await rejection(objects.create(obj));
    expect(refused.code).toBe(422);
    expect(refused.reason).toBe('Invalid');
    // The message names the field and says what to do ...
    expect(refused.message).toContain(c.field);
    expect(refused.message).toMatch(c.says);
    // ... and nothing else is blamed: the rule under test is the one that fired.
    if (!c.byPolicy) expect(refused.fields.length).toBeGreaterThan(0);
    for (const field of refused.fields) expect(within(field, c.field)).toBe(true);
  });
});

describe('the API server refuses changes that would lose or strand data', () => {
  const kc = testKubeConfig();
  const objects = new BerthObjects(kc);
  let namespace = '';

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'api-update');
  });

  async function createThenChange(
    kind: KindName,
    name: string,
    spec: Spec,
    change: (spec: Spec) => void,
  ): Promise<Awaited<ReturnType<typeof rejection>>> {
    const created = await objects.create({
      apiVersion: 'berth.dev/v1alpha1',
      kind,
      metadata: { name, namespace },
      spec,
    });
    const changed = structuredClone(created);
    change(changed.spec as Spec);
    return rejection(objects.replace(changed));
  }

  test('a claim cannot shrink', async () => {
    const refused = await createThenChange(
      'Registry',
      'shrink',
      { storage: { persistentVolumeClaim: { size: '10Gi' } } },
      (s) => {
        (s.storage as { persistentVolumeClaim: { size: string } }).persistentVolumeClaim.size = '5Gi';
      },
    );
    expect(refused.fields).toEqual(['spec.storage.persistentVolumeClaim.size']);
    expect(refused.message).toMatch(/cannot shrink/);
  });

  test('a claim can grow', async () => {
    const created = await objects.create({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'grow', namespace },
      spec: { storage: { persistentVolumeClaim: { size: '10Gi' } } },
    });
    (
      created.spec as { storage: { persistentVolumeClaim: { size: string } } }
    ).storage.persistentVolumeClaim.size = '20Gi';
    const updated = await objects.replace(created);
    expect(updated.spec).toMatchObject({ storage: { persistentVolumeClaim: { size: '20Gi' } } });
  });

  test('the storage backend cannot be switched', async () => {
    const refused = await createThenChange(
      'Registry',
      'switch',
      { storage: { persistentVolumeClaim: { size: '10Gi' } } },
      (s) => {
        s.storage = { s3 };
      },
    );
    expect(refused.fields).toEqual(['spec.storage']);
    expect(refused.message).toMatch(/cannot be switched/);
  });

  test("a Repository's path cannot change", async () => {
    const refused = await createThenChange(
      'Repository',
      'moving',
      repository({ path: `${namespace}/a` }),
      (s) => {
        s.path = `${namespace}/b`;
      },
    );
    expect(refused.fields).toEqual(['spec.path']);
    expect(refused.message).toMatch(/spec.path cannot be changed/);
  });

  test("a Repository's registry cannot change", async () => {
    const refused = await createThenChange('Repository', 'elsewhere', repository({}), (s) => {
      s.registryRef = { name: 'other' };
    });
    expect(refused.fields).toEqual(['spec.registryRef']);
    expect(refused.message).toMatch(/spec.registryRef cannot be changed/);
  });
});
