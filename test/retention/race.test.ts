// The retention run against the real registry (and the shared API server) with things changed
// between its plan and its deletes. The test plays the users: it moves tags and creates workloads.
// 1. A tag the plan kept is moved onto a digest the plan deletes (a rollback, `crane tag
//    app@sha256:old v1`), and onto an untagged manifest the plan deletes. Neither digest may be
//    deleted, so the moved tags still pull; the rest of the plan still runs.
// 2. With protect.inUse: the run lists what workloads use before its snapshot (it plans each
//    repository as its snapshot arrives), so images that become in use after that listing, or get
//    a new tag, must still be kept: a Pod that starts with a doomed digest, a Deployment that names
//    a doomed tag, a Pod that runs one child of a doomed multi-arch index (the index and its other
//    child go with it), a tag pushed onto a doomed digest. Only what nothing uses is deleted.
import { utimesSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import winston from 'winston';
import { systemClock } from '../../src/runtime/clock.ts';
import { runRetention, type RetentionRunConfig } from '../../src/retention/run/command.ts';
import { readReport } from '../../src/retention/run/report.ts';
import { KubeClient } from '../../src/runtime/kube/client.ts';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import type { RegistryClient } from '../harness/registry.ts';
import { mint, startTokenGround, type TokenGround } from '../token/fixture.ts';

const H = 3_600_000;
const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });
const now = Date.now();
const berth = (ns: string, plural: string) => `/apis/berth.dev/v1alpha1/namespaces/${ns}/${plural}`;

let ground: TokenGround;
let crane: RegistryClient;
let kube: KubeClient;
let ns: string;
let config: RetentionRunConfig;
const d: Record<string, string> = {};
const repo = () => `${ns}/app`;
const ref = (suffix: string, repository = repo()) => `${ground.registry.host}/${repository}${suffix}`;

function setMtime(file: string, hoursAgo: number): void {
  const t = new Date(now - hoursAgo * H);
  utimesSync(file, t, t);
}
const repoDir = (repository = repo()) =>
  path.join(ground.registry.storageDir, 'docker/registry/v2/repositories', repository);

async function pushAt(tag: string, hoursAgo: number, repository = repo()): Promise<string> {
  const digest = await crane.pushRandomImage(ref(`:${tag}`, repository), { layers: 1, layerBytes: 2048 });
  setMtime(path.join(repoDir(repository), '_manifests/tags', tag, 'current/link'), hoursAgo);
  return digest;
}

/** Every manifest revision of `repository` stored long ago (its tags carry the time line). */
function revisionsLongAgo(repository: string): void {
  const dir = path.join(repoDir(repository), '_manifests/revisions/sha256');
  for (const hex of readdirSync(dir)) setMtime(path.join(dir, hex, 'link'), 200);
}

beforeAll(async () => {
  ground = await startTokenGround({ credentials: [admin] });
  crane = ground.client(admin);
  const kc = testKubeConfig();
  kube = new KubeClient(kc);
  ns = await createTestNamespace(kc, 'rt-race');

  d.release = await pushAt('v1', 100);
  await crane.must(['tag', ref(':v1'), 'v2']);
  setMtime(path.join(repoDir(), '_manifests/tags/v2/current/link'), 100);
  d.main0 = await pushAt('main-0', 60);
  d.main1 = await pushAt('main-1', 50);
  d.untagged = await pushAt('main-2', 30); // then main-2 moves on: this one is left untagged
  d.main2 = await pushAt('main-2', 10);
  revisionsLongAgo(repo());

  await kube.create(berth(ns, 'registries'), {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name: 'main', namespace: ns },
    spec: { storage: { emptyDir: {} } },
  });
  await kube.create(berth(ns, 'retentionpolicies'), {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'RetentionPolicy',
    metadata: { name: 'race', namespace: ns },
    spec: {
      registryRef: { name: 'main', namespace: ns },
      schedule: '0 2 * * *',
      repositories: { include: [repo()] },
      mode: 'Enforce',
      rules: [
        { name: 'releases', tags: { include: ['v*'] }, keep: { all: true } },
        { name: 'ci', tags: { include: ['main-*'] }, keep: { mostRecent: 1 } },
      ],
      untagged: { delete: true, olderThan: '24h' },
      protect: { inUse: false, minAge: '0s' },
    },
  });
  const dockerConfig = path.join(ground.dir, 'race-dockerconfig.json');
  writeFileSync(
    dockerConfig,
    JSON.stringify({ auths: { [ground.registry.host]: { username: 'admin', password: admin.secret } } }),
  );
  const caFile = path.join(ground.dir, 'race-ca.pem');
  writeFileSync(caFile, ground.ca.certPem);
  config = {
    policy: { namespace: ns, name: 'race' },
    registryUrl: ground.registry.url,
    caFile,
    dockerConfig,
    storage: { kind: 'filesystem', root: ground.registry.storageDir },
    report: { name: 'race-report', namespace: ns },
    now,
    concurrency: 4,
  };
}, 300_000);

afterAll(async () => {
  await ground?.stop();
  if (ns) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
});

describe('retention-run with tags moved between plan and delete', () => {
  test('a kept tag moved onto a doomed digest keeps it; the rest of the plan is deleted', async () => {
    const logger = winston.createLogger({ silent: true });
    let hookRan = false;
    const summary = await runRetention(config, {
      kube,
      logger,
      clock: systemClock,
      afterPlan: async () => {
        hookRan = true;
        // A rollback of a release onto main-1's digest, and another onto the untagged manifest.
        await crane.must(['tag', ref(`@${d.main1}`), 'v1']);
        await crane.must(['tag', ref(`@${d.untagged}`), 'v2']);
      },
    });
    expect(hookRan).toBe(true);

    // What the user sees in the registry: both releases still resolve, where they were moved to,
    // and pull completely; main-0, which nothing points to any more, is gone.
    expect(await crane.digest(ref(':v1'))).toBe(d.main1);
    expect(await crane.digest(ref(':v2'))).toBe(d.untagged);
    for (const tag of ['v1', 'v2', 'main-1', 'main-2']) {
      const pulled = await crane.pull(ref(`:${tag}`));
      expect({ tag, ok: pulled.ok, err: pulled.stderr }).toEqual({ tag, ok: true, err: '' });
    }
    expect((await crane.tags(ref(''))).sort()).toEqual(['main-1', 'main-2', 'v1', 'v2']);
    expect((await crane.run(['manifest', ref(`@${d.main0}`)])).ok).toBe(false);

    // And in the report: the two deletions were skipped, with the reason.
    expect(summary).toMatchObject({ mode: 'Enforce', result: 'Succeeded', deleted: 1 });
    expect(summary.message).toMatch(/2 deletions skipped/);
    const report = await readReport(kube, ns, 'race-report');
    const entry = (tag: string | undefined, digest: string | undefined) =>
      report.entries.find((e) => e.digest === digest && e.tag === tag);
    expect(entry('main-1', d.main1)).toMatchObject({
      decision: 'keep',
      reason: expect.stringMatching(
        /planned deletion skipped: tag v1, which the plan kept, now points to it/,
      ),
    });
    expect(entry(undefined, d.untagged)).toMatchObject({
      decision: 'keep',
      reason: expect.stringMatching(
        /planned deletion skipped: tag v2, which the plan kept, now points to it/,
      ),
    });
    expect(entry('main-0', d.main0)).toMatchObject({ decision: 'delete' });
  });
});

describe('retention-run with protect.inUse and workloads created between plan and delete', () => {
  const svc = () => `${ns}/svc`;
  /** An image reference as workloads name this registry (its Service's name). */
  const inCluster = (suffix: string) => `main.${ns}.svc:443/${svc()}${suffix}`;
  const s: Record<string, string> = {};

  beforeAll(async () => {
    for (let i = 0; i <= 4; i++)
      s[`main${i}`] = await pushAt(`main-${i}`, [70, 60, 50, 40, 10][i] ?? 0, svc());
    // A multi-arch index whose children are untagged in svc (pushed elsewhere, copied by the index).
    s.c1 = await pushAt('c1', 300, `${ns}/parts`);
    s.c2 = await pushAt('c2', 300, `${ns}/parts`);
    await crane.must([
      'index',
      'append',
      '-m',
      ref(':c1', `${ns}/parts`),
      '-m',
      ref(':c2', `${ns}/parts`),
      '-t',
      ref(':idx-old', svc()),
    ]);
    setMtime(path.join(repoDir(svc()), '_manifests/tags/idx-old/current/link'), 100);
    s.index = await crane.digest(ref(':idx-old', svc()));
    revisionsLongAgo(svc());
    await kube.create(berth(ns, 'retentionpolicies'), {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'RetentionPolicy',
      metadata: { name: 'in-use', namespace: ns },
      spec: {
        registryRef: { name: 'main', namespace: ns },
        schedule: '0 2 * * *',
        repositories: { include: [svc()] },
        mode: 'Enforce',
        rules: [
          { name: 'ci', tags: { include: ['main-*'] }, keep: { mostRecent: 1 } },
          { name: 'indexes', tags: { include: ['idx-*'] }, keep: { mostRecent: 0 } },
        ],
        untagged: { delete: true, olderThan: '24h' },
        protect: { inUse: true, minAge: '0s' },
      },
    });
  }, 300_000);

  const pod = (name: string, image: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: { containers: [{ name: 'app', image }] },
  });

  test('an image that becomes in use or gets a tag after the plan is not deleted; the rest is', async () => {
    const summary = await runRetention(
      {
        ...config,
        policy: { namespace: ns, name: 'in-use' },
        report: { name: 'in-use-report', namespace: ns },
      },
      {
        kube,
        logger: winston.createLogger({ silent: true }),
        clock: systemClock,
        afterPlan: async () => {
          // After the plan (and so after its in-use listing): a tag, and three workloads.
          await crane.must(['tag', ref(`@${s.main1}`, svc()), 'hotfix']);
          await kube.create(`/api/v1/namespaces/${ns}/pods`, pod('late-digest', inCluster(`@${s.main2}`)));
          await kube.create(`/apis/apps/v1/namespaces/${ns}/deployments`, {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'late-tag', namespace: ns },
            spec: {
              selector: { matchLabels: { app: 'late-tag' } },
              template: {
                metadata: { labels: { app: 'late-tag' } },
                spec: { containers: [{ name: 'app', image: inCluster(':main-3') }] },
              },
            },
          });
          await kube.create(`/api/v1/namespaces/${ns}/pods`, pod('late-child', inCluster(`@${s.c1}`)));
        },
      },
    );

    // What the user sees in the registry: everything in use or tagged since the plan still pulls
    // completely (the index with both children); only main-0, which nothing uses, is gone.
    expect((await crane.tags(ref('', svc()))).sort()).toEqual([
      'hotfix',
      'idx-old',
      'main-1',
      'main-2',
      'main-3',
      'main-4',
    ]);
    for (const suffix of ['@' + s.main2, ':main-3', ':hotfix', ':idx-old', '@' + s.c1, '@' + s.c2]) {
      const pulled = await crane.pull(ref(suffix, svc()));
      expect({ suffix, ok: pulled.ok, err: pulled.stderr }).toEqual({ suffix, ok: true, err: '' });
    }
    expect((await crane.run(['manifest', ref(`@${s.main0}`, svc())])).ok).toBe(false);

    // And in the report: each kept with the reason, found in the listing after the plan.
    expect(summary).toMatchObject({ mode: 'Enforce', result: 'Succeeded', deleted: 1 });
    expect(summary.message).toMatch(/6 deletions skipped/);
    const report = await readReport(kube, ns, 'in-use-report');
    const reason = (tag: string | undefined, digest: string | undefined) =>
      report.entries.find((e) => e.digest === digest && e.tag === tag && e.decision === 'keep')?.reason;
    expect(reason('main-1', s.main1)).toMatch(/skipped: tag hotfix was pushed to it after the plan/);
    expect(reason('main-2', s.main2)).toMatch(/skipped: it is in use by Pod .*\/late-digest/);
    // The first of the listing's workloads that names it: the Deployment, or what the control plane
    // made from it (its ReplicaSet, its Pod).
    expect(reason('main-3', s.main3)).toMatch(
      /skipped: tag main-3 of it is in use by (Deployment|ReplicaSet|Pod) .*\/late-tag/,
    );
    expect(reason('idx-old', s.index)).toMatch(
      /skipped: sha256:\w+, of its unit, is in use by Pod .*\/late-child/,
    );
    expect(reason(undefined, s.c1)).toMatch(/skipped/);
    expect(reason(undefined, s.c2)).toMatch(/skipped/);
    expect(report.entries.find((e) => e.tag === 'main-0')).toMatchObject({ decision: 'delete' });
  });
});
