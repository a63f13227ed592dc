// `berth retention-run` as a real process against the real registry (token auth, admin credential)
// with images pushed by crane, and the shared control plane for the RetentionPolicy, Registry,
// Repository objects, a Pod that uses one digest, and the report ConfigMap.
import { execFile } from 'node:child_process';
import { utimesSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { KubeClient, type KubeObject } from '../../src/runtime/kube/client.ts';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import type { RegistryClient } from '../harness/registry.ts';
import { mint, startTokenGround, type TokenGround } from '../token/fixture.ts';

const exec = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const H = 3_600_000;

interface Entry {
  repository: string;
  tag?: string;
  digest: string;
  decision: 'delete' | 'keep';
  rule?: string;
  reason: string;
}
interface Summary {
  mode: string;
  evaluated: number;
  deleted: number;
  kept: number;
  protected: number;
  refused: boolean;
  refusedReason?: string;
  result: string;
  message: string;
}

const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });

let ground: TokenGround;
let crane: RegistryClient;
let kube: KubeClient;
let regNs: string;
let teamA: string;
let teamB: string;
let dockerConfigFile: string;
let caFile: string;
const now = Date.now();
const d: Record<string, string> = {};

function setMtime(file: string, hoursAgo: number): void {
  const t = new Date(now - hoursAgo * H);
  utimesSync(file, t, t);
}
const repoDir = (repo: string) =>
  path.join(ground.registry.storageDir, 'docker/registry/v2/repositories', repo);
const tagLink = (repo: string, tag: string) =>
  path.join(repoDir(repo), '_manifests/tags', tag, 'current/link');

async function pushAt(repo: string, tag: string, hoursAgo: number): Promise<string> {
  const digest = await crane.pushRandomImage(`${ground.registry.host}/${repo}:${tag}`, {
    layers: 2,
    layerBytes: 2048,
  });
  setMtime(tagLink(repo, tag), hoursAgo);
  return digest;
}

async function tagAt(repo: string, from: string, tag: string, hoursAgo: number): Promise<void> {
  await crane.must(['tag', `${ground.registry.host}/${repo}:${from}`, tag]);
  setMtime(tagLink(repo, tag), hoursAgo);
}

const berth = (ns: string, plural: string) => `/apis/berth.dev/v1alpha1/namespaces/${ns}/${plural}`;

async function createPolicy(ns: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await kube.create(berth(ns, 'retentionpolicies'), {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'RetentionPolicy',
    metadata: { name, namespace: ns },
    spec: { registryRef: { name: 'main', namespace: regNs }, schedule: '0 2 * * *', ...spec },
  });
}

async function run(
  policy: string,
  report: string,
  extra: string[] = [],
): Promise<{ code: number; summary: Summary; entries: Entry[]; output: string }> {
  const [ns] = policy.split('/');
  let code = 0;
  let output: string;
  try {
    const res = await exec(
      process.execPath,
      [
        path.join(repoRoot, 'src/main.ts'),
        'retention-run',
        `--policy=${policy}`,
        `--registry-url=${ground.registry.url}`,
        `--ca-file=${caFile}`,
        `--docker-config=${dockerConfigFile}`,
        `--storage-root=${ground.registry.storageDir}`,
        `--report-configmap=${report}`,
        `--now=${new Date(now).toISOString()}`,
        ...extra,
      ],
      { env: { ...process.env, KUBECONFIG: process.env.BERTH_TEST_KUBECONFIG }, timeout: 120_000 },
    );
    output = res.stdout + res.stderr;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    code = e.code ?? 1;
    output = (e.stdout ?? '') + (e.stderr ?? '');
  }
  const cm = await kube.get<KubeObject & { data: Record<string, string> }>(
    `/api/v1/namespaces/${ns}/configmaps/${report}`,
  );
  expect(cm.metadata?.labels).toMatchObject({
    'app.kubernetes.io/managed-by': 'berth',
    'berth.dev/retention-policy': policy.split('/')[1],
  });
  return {
    code,
    output,
    summary: JSON.parse(cm.data['summary.json'] ?? '{}') as Summary,
    entries: JSON.parse(cm.data['report.json'] ?? '[]') as Entry[],
  };
}

const key = (e: Entry) => (e.tag ? `${e.repository}:${e.tag}` : `${e.repository}@${e.digest}`);
const decisions = (entries: Entry[]) => Object.fromEntries(entries.map((e) => [key(e), e.decision]));

async function allTags(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const repo of await crane.catalog(ground.registry.host))
    out[repo] = (await crane.tags(`${ground.registry.host}/${repo}`)).sort();
  return out;
}

beforeAll(async () => {
  ground = await startTokenGround({ credentials: [admin] });
  crane = ground.client(admin);
  const kc = testKubeConfig();
  kube = new KubeClient(kc);
  regNs = await createTestNamespace(kc, 'rt-reg');
  teamA = await createTestNamespace(kc, 'rt-a');
  teamB = await createTestNamespace(kc, 'rt-b');
  // As the Registry's admin Secret holds it: one entry, for the in-cluster host name.
  dockerConfigFile = path.join(ground.dir, 'admin-dockerconfig.json');
  writeFileSync(
    dockerConfigFile,
    JSON.stringify({
      auths: {
        [`main.${regNs}.svc:443`]: { auth: Buffer.from(`admin:${admin.secret}`).toString('base64') },
      },
    }),
  );
  caFile = path.join(ground.dir, 'ca.pem');
  writeFileSync(caFile, ground.ca.certPem);

  const app = `${teamA}/app`;
  const multi = `${teamA}/multi`;
  const other = `${teamB}/other`;
  const scratch = `${regNs}/scratch`;
  d.main1 = await pushAt(app, 'main-1', 100);
  await tagAt(app, 'main-1', 'v1.0.0', 100); // two tags, one digest; the release keeps it
  d.main2 = await pushAt(app, 'main-2', 50);
  d.main3 = await pushAt(app, 'main-3', 30); // used by a Pod, by digest
  d.untagged = await pushAt(app, 'main-4', 12); // then main-4 moves: this one is left untagged
  d.main4 = await pushAt(app, 'main-4', 10);
  d.sig = await pushAt(app, `${d.main2.replace(':', '-')}.sig`, 50); // follows main-2
  // A multi-arch index (children untagged in its repository), old and new.
  d.c1 = await pushAt(scratch, 'c1', 300);
  d.c2 = await pushAt(scratch, 'c2', 300);
  await crane.must([
    'index',
    'append',
    '-m',
    `${ground.registry.host}/${scratch}:c1`,
    '-m',
    `${ground.registry.host}/${scratch}:c2`,
    '-t',
    `${ground.registry.host}/${multi}:old-index`,
  ]);
  setMtime(tagLink(multi, 'old-index'), 100);
  d.oldIndex = await crane.digest(`${ground.registry.host}/${multi}:old-index`);
  d.c3 = await pushAt(scratch, 'c3', 300);
  await crane.must([
    'index',
    'append',
    '-m',
    `${ground.registry.host}/${scratch}:c3`,
    '-t',
    `${ground.registry.host}/${multi}:new-index`,
  ]);
  setMtime(tagLink(multi, 'new-index'), 5);
  d.newIndex = await crane.digest(`${ground.registry.host}/${multi}:new-index`);
  d.other1 = await pushAt(other, 'main-1', 100);
  d.other2 = await pushAt(other, 'main-2', 90);
  // Every manifest revision was stored long ago (the tags above carry the time line).
  for (const repo of [app, multi, other, scratch]) {
    const dir = path.join(repoDir(repo), '_manifests/revisions/sha256');
    for (const hex of readdirSync(dir)) setMtime(path.join(dir, hex, 'link'), 200);
  }

  await kube.create(berth(regNs, 'registries'), {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name: 'main', namespace: regNs },
    spec: { storage: { emptyDir: {} } },
  });
  for (const [ns, name] of [
    [teamA, 'app'],
    [teamA, 'multi'],
    [teamB, 'other'],
  ] as const)
    await kube.create(berth(ns, 'repositories'), {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Repository',
      metadata: { name, namespace: ns },
      spec: { registryRef: { name: 'main', namespace: regNs } },
    });
  await kube.create(`/api/v1/namespaces/${teamA}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'uses-main-3', namespace: teamA },
    spec: { containers: [{ name: 'app', image: `main.${regNs}.svc:443/${app}@${d.main3}` }] },
  });
  // The whole registry, from the Registry's namespace.
  await createPolicy(regNs, 'all', {
    repositories: { include: ['**'] },
    mode: 'Enforce',
    rules: [
      { name: 'releases', tags: { include: ['v*.*.*'] }, keep: { all: true } },
      { name: 'ci', tags: { include: ['main-*'] }, keep: { mostRecent: 1 } },
      { name: 'indexes', tags: { include: ['*-index'] }, keep: { mostRecent: 1 } },
    ],
    untagged: { delete: true, olderThan: '24h' },
    protect: { inUse: true, minAge: '2h' },
  });
}, 300_000);

afterAll(async () => {
  await ground?.stop();
  for (const ns of [regNs, teamA, teamB])
    if (ns) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
});

describe('retention-run against the real registry', () => {
  let expected: Record<string, string>;
  let dryRun: Awaited<ReturnType<typeof run>>;

  test('DryRun deletes nothing and reports the plan', async () => {
    expected = {
      [`${teamA}/app:main-1`]: 'keep', // its digest is also v1.0.0
      [`${teamA}/app:v1.0.0`]: 'keep',
      [`${teamA}/app:main-2`]: 'delete',
      [`${teamA}/app:${d.main2?.replace(':', '-')}.sig`]: 'delete', // follows main-2
      [`${teamA}/app:main-3`]: 'keep', // in use by the Pod
      [`${teamA}/app:main-4`]: 'keep',
      [`${teamA}/app@${d.untagged}`]: 'delete',
      [`${teamA}/multi:old-index`]: 'delete',
      [`${teamA}/multi@${d.c1}`]: 'delete',
      [`${teamA}/multi@${d.c2}`]: 'delete',
      [`${teamA}/multi:new-index`]: 'keep',
      [`${teamA}/multi@${d.c3}`]: 'keep',
      [`${teamB}/other:main-1`]: 'delete',
      [`${teamB}/other:main-2`]: 'keep',
      [`${regNs}/scratch:c1`]: 'keep',
      [`${regNs}/scratch:c2`]: 'keep',
      [`${regNs}/scratch:c3`]: 'keep',
    };
    const before = await allTags();
    dryRun = await run(`${regNs}/all`, 'all-dry', ['--mode=DryRun']);
    expect(dryRun.code).toBe(0);
    expect(decisions(dryRun.entries)).toEqual(expected);
    expect(dryRun.summary).toMatchObject({
      mode: 'DryRun',
      result: 'Succeeded',
      refused: false,
      deleted: 7,
      evaluated: 17,
    });
    expect(dryRun.summary.protected).toBeGreaterThanOrEqual(1);
    expect(dryRun.entries.find((e) => e.tag === 'main-3')?.reason).toMatch(/in use by Pod .*uses-main-3/);
    expect(await allTags()).toEqual(before);
    expect(dryRun.output).not.toContain(admin.secret);
  });

  test('Enforce removes exactly the planned tags and manifests; everything else pulls completely', async () => {
    const enforced = await run(`${regNs}/all`, 'all-enforce');
    expect(enforced.code).toBe(0);
    expect(enforced.summary).toMatchObject({ mode: 'Enforce', result: 'Succeeded', deleted: 7 });
    expect(enforced.entries).toEqual(dryRun.entries); // the dry run reported exactly this plan
    const after = await allTags();
    expect(after[`${teamA}/app`]).toEqual(['main-1', 'main-3', 'main-4', 'v1.0.0']);
    expect(after[`${teamA}/multi`]).toEqual(['new-index']);
    expect(after[`${teamB}/other`]).toEqual(['main-2']);
    expect(after[`${regNs}/scratch`]).toEqual(['c1', 'c2', 'c3']);
    for (const [repo, digest] of [
      [`${teamA}/app`, d.untagged],
      [`${teamA}/app`, d.main2],
      [`${teamA}/multi`, d.oldIndex],
      [`${teamA}/multi`, d.c1],
    ])
      expect((await crane.run(['manifest', `${ground.registry.host}/${repo}@${digest}`])).ok).toBe(false);
    for (const [repo, tags] of Object.entries(after))
      for (const tag of tags) {
        const pulled = await crane.pull(`${ground.registry.host}/${repo}:${tag}`);
        expect({ ref: `${repo}:${tag}`, ok: pulled.ok, err: pulled.stderr }).toEqual({
          ref: `${repo}:${tag}`,
          ok: true,
          err: '',
        });
      }
    expect((await crane.run(['manifest', `${ground.registry.host}/${teamA}/multi@${d.c3}`])).ok).toBe(true);
  });

  test('the circuit breaker refuses a run that would delete too much, and deletes nothing', async () => {
    await createPolicy(regNs, 'greedy', {
      repositories: { include: ['**'] },
      mode: 'Enforce',
      rules: [{ name: 'everything', tags: { include: ['*'] }, keep: { mostRecent: 0 } }],
      protect: { inUse: false, minAge: '0s', maxDeletions: { percent: 10 } },
    });
    const before = await allTags();
    const refused = await run(`${regNs}/greedy`, 'greedy');
    expect(refused.code).toBe(0);
    expect(refused.summary).toMatchObject({ result: 'Refused', refused: true, deleted: 0 });
    expect(refused.summary.refusedReason).toMatch(/TooManyDeletions.*maxDeletions.percent 10%/);
    expect(await allTags()).toEqual(before);
  });

  test("a policy in a team's namespace cannot touch another team's repository", async () => {
    await createPolicy(teamA, 'mine', {
      repositories: { include: ['**'] },
      mode: 'Enforce',
      rules: [{ name: 'everything', tags: { include: ['main-*'] }, keep: { mostRecent: 0 } }],
      protect: { inUse: false, minAge: '0s' },
    });
    const res = await run(`${teamA}/mine`, 'mine');
    expect(res.code).toBe(0);
    expect(res.summary.result).toBe('Succeeded');
    expect(new Set(res.entries.map((e) => e.repository))).toEqual(
      new Set([`${teamA}/app`, `${teamA}/multi`]),
    );
    const after = await allTags();
    expect(after[`${teamB}/other`]).toEqual(['main-2']);
    expect(after[`${regNs}/scratch`]).toEqual(['c1', 'c2', 'c3']);
    expect(after[`${teamA}/app`]).toEqual(['main-1', 'v1.0.0']); // main-1 stays with its release tag
  });

  test('a run that cannot reach the registry fails with exit 1 and a Failed summary', async () => {
    const res = await run(`${regNs}/all`, 'unreachable', [
      '--registry-url=https://127.0.0.1:1',
      '--mode=DryRun',
    ]);
    expect(res.code).toBe(1);
    expect(res.summary.result).toBe('Failed');
    expect(res.summary.message).not.toContain(admin.secret);
  });
});
