// Every sample in config/samples is accepted by the real API server and reads back with the
// schema's defaults filled in; what the sample sets is kept as written.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import { repoRoot } from '../harness/processes.ts';
import { BerthObjects, installAdmissionPolicies, kubectl, sample, sampleIn } from './helpers.ts';

/** What the API server fills in when a minimal sample leaves the field out. */
const defaultsOfMinimal: Record<string, unknown> = {
  'registry-minimal.yaml': {
    image: 'registry:3.1.1',
    replicas: 1,
    storage: { persistentVolumeClaim: { size: '20Gi', accessModes: ['ReadWriteOnce'] } },
    tls: { mode: 'SelfSigned', duration: '2160h', renewBefore: '720h' },
    expose: { service: { type: 'ClusterIP', port: 443 } },
    auth: { anonymousPull: false },
    pullSecrets: {
      secretName: 'main-pull',
      serviceAccounts: { names: ['default'] },
      rotation: { interval: '24h', gracePeriod: '2h' },
    },
    nodeAccess: { enabled: true, certsDir: '/etc/containerd/certs.d' },
    deletionPolicy: 'Retain',
  },
  'repository-minimal.yaml': { registryRef: { name: 'main', namespace: 'registry-system' } },
  'retentionpolicy-minimal.yaml': {
    mode: 'DryRun',
    untagged: { delete: false, olderThan: '24h' },
    protect: { inUse: true, minAge: '2h' },
  },
};

/** Defaults that apply inside what the full samples set. */
const defaultsOfFull: Record<string, unknown> = {
  'registry-full.yaml': { storage: { persistentVolumeClaim: { accessModes: ['ReadWriteMany'] } } },
  'repository-full.yaml': {},
  'retentionpolicy-full.yaml': {},
};

const files = readdirSync(path.join(repoRoot, 'config/samples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('config/samples', () => {
  const kc = testKubeConfig();
  const objects = new BerthObjects(kc);
  let namespace = '';

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'api-samples');
    await installAdmissionPolicies(objects, namespace);
  });

  test('holds a minimal and a full sample of each kind', () => {
    expect(files).toEqual([
      'registry-full.yaml',
      'registry-minimal.yaml',
      'repository-full.yaml',
      'repository-minimal.yaml',
      'retentionpolicy-full.yaml',
      'retentionpolicy-minimal.yaml',
    ]);
    expect(files.map((f) => sample(f).kind)).toEqual([
      'Registry',
      'Registry',
      'Repository',
      'Repository',
      'RetentionPolicy',
      'RetentionPolicy',
    ]);
  });

  test.each(files)('%s is accepted and reads back with its defaults', async (file) => {
    const obj = sampleIn(file, namespace);
    await objects.create(obj);
    const got = await objects.get(obj.kind, namespace, obj.metadata.name!);
    // Everything the sample says is kept as written ...
    expect(got.spec).toMatchObject(obj.spec as Record<string, unknown>);
    // ... and the defaults are filled in.
    const defaults = file.includes('minimal') ? defaultsOfMinimal[file] : defaultsOfFull[file];
    expect(defaults).toBeDefined();
    expect(got.spec).toMatchObject(defaults as Record<string, unknown>);
  });

  test('a defaulted Registry shows its key figures in kubectl get, and the category lists every kind', async () => {
    const table = await kubectl(['get', 'reg', '-n', namespace]);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+READY\s+ENDPOINT\s+TLS\s+REPLICAS\s+NAMESPACES\s+AGE$/);
    expect(table).toMatch(/\nmain\s+SelfSigned\s+1\s+/);
    const all = await kubectl(['get', 'berth', '-n', namespace, '-o', 'name']);
    expect(all.trim().split('\n').sort()).toEqual([
      'registry.berth.dev/main',
      'registry.berth.dev/production',
      'repository.berth.dev/api',
      'repository.berth.dev/web',
      'retentionpolicy.berth.dev/ci-builds',
      'retentionpolicy.berth.dev/keep-recent',
    ]);
    const rp = await kubectl(['get', 'rp', '-n', namespace]);
    expect(rp.split('\n')[0]).toMatch(
      /^NAME\s+READY\s+REGISTRY\s+MODE\s+SCHEDULE\s+DELETED\s+LAST RUN\s+AGE$/,
    );
    expect(rp).toMatch(/\nkeep-recent\s+main\s+DryRun\s+0 2 \* \* \*\s+/);
  });
});
