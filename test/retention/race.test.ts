// The retention run against the real registry with tags moved between its plan and its deletes:
// a tag the plan kept is moved onto a digest the plan deletes (a rollback, `crane tag
// app@sha256:old v1`), and onto an untagged manifest the plan deletes. Neither digest may be
// deleted, so the moved tags still pull; the rest of the plan still runs.
import { utimesSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import winston from 'winston';
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
const ref = (suffix: string) => `${ground.registry.host}/${repo()}${suffix}`;

function setMtime(file: string, hoursAgo: number): void {
  const t = new Date(now - hoursAgo * H);
  utimesSync(file, t, t);
}
const repoDir = () => path.join(ground.registry.storageDir, 'docker/registry/v2/repositories', repo());

async function pushAt(tag: string, hoursAgo: number): Promise<string> {
  const digest = await crane.pushRandomImage(ref(`:${tag}`), { layers: 1, layerBytes: 2048 });
  setMtime(path.join(repoDir(), '_manifests/tags', tag, 'current/link'), hoursAgo);
  return digest;
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
  for (const hex of readdirSync(path.join(repoDir(), '_manifests/revisions/sha256')))
    setMtime(path.join(repoDir(), '_manifests/revisions/sha256', hex, 'link'), 200);

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
      repositories: { include: ['**'] },
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
      clock: Date.now,
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
