// Day two on the real node, with nothing played by the test: a RetentionPolicy in Enforce mode
// and garbage collection each run as real Jobs from berth's image on the node (with the
// registry's claim), the images they keep still pull afterwards and the ones they delete no
// longer do; and with two operator replicas, deleting the leader's pod while a Registry is being
// changed leaves the other replica to finish it. This suite is where the controllers' happy paths
// run for real: the retention Job's contract (flags, identity, read-only claim, the registry
// pod's node) and its report in status; every step of the GC procedure in status (probe, collect,
// restart, verify) with the three Jobs it ran. test/gc and test/retention act as the Jobs only
// for results a test must choose (a failed run, a push that is not refused, a run with no report).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../harness/kube.ts';
import { startNodeGround, type NodeGround } from '../harness/node-ground.ts';
import { binDir } from '../harness/processes.ts';
import {
  appPod,
  berthNamespace,
  createBerthObject,
  createNamespace,
  customObjects,
  group,
  installBerth,
  patchRegistry,
  podSettles,
  pullFailures,
  readRegistry,
  readyWithFirstPush,
  registryReady,
  version,
  type Crane,
  log,
  regNs,
} from './fixture.ts';

const reg = 'life';
const app = 'app';

let ground: NodeGround;
let core: k8s.CoreV1Api;
let endpoint: string;
let admin: Crane;
let keepDigest: string;

interface PolicyObject {
  metadata: { generation?: number };
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    lastRun?: {
      mode?: string;
      result?: string;
      evaluated?: number;
      deleted?: number;
      kept?: number;
      completionTime?: string;
      report?: string;
    };
  };
}

const arg = (job: k8s.V1Job, flag: string) =>
  job.spec?.template.spec?.containers[0]?.args
    ?.find((a) => a.startsWith(`--${flag}=`))
    ?.slice(flag.length + 3);

/** The Jobs in the registry's namespace whose names start with a prefix. */
async function jobsNamed(prefix: string): Promise<k8s.V1Job[]> {
  const jobs = await ground.kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace: regNs });
  return jobs.items.filter((j) => j.metadata?.name?.startsWith(prefix));
}
const complete = (j: k8s.V1Job) =>
  j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') === true;
const registryPodNode = async () =>
  (
    await core.listNamespacedPod({
      namespace: regNs,
      labelSelector: `berth.dev/registry=${reg},app.kubernetes.io/component=registry`,
    })
  ).items.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp)?.spec?.nodeName;

/** A layer of random bytes, so the doomed image has blobs of its own for GC to free. */
function randomLayer(dir: string, bytes: number): string {
  const content = path.join(dir, 'content');
  execFileSync('mkdir', ['-p', content]);
  writeFileSync(path.join(content, 'noise.bin'), randomBytes(bytes));
  const tar = path.join(dir, 'layer.tar');
  execFileSync('tar', ['-C', content, '-cf', tar, 'noise.bin']);
  return tar;
}

beforeAll(async () => {
  ground = await startNodeGround({ log });
  core = ground.kc.makeApiClient(k8s.CoreV1Api);
  await installBerth(ground, ['replicaCount=2']);
  await createNamespace(ground.kc, regNs, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  await createNamespace(ground.kc, app, { 'berth.dev/pull': reg });
  await createBerthObject(
    ground.kc,
    'Registry',
    regNs,
    { name: reg },
    {
      storage: { persistentVolumeClaim: { size: '5Gi' } },
      nodeAccess: { enabled: true },
      pullSecrets: { namespaceSelector: { matchLabels: { 'berth.dev/pull': reg } }, secretName: 'life-pull' },
      garbageCollection: { schedule: '0 3 * * 0', deleteUntagged: true },
    },
  );
  await createBerthObject(
    ground.kc,
    'Repository',
    app,
    { name: 'web' },
    { registryRef: { name: reg, namespace: regNs } },
  );
  const pause = path.join(binDir, 'images', 'pause.tar');
  ({ endpoint, admin } = await readyWithFirstPush(ground, regNs, reg, pause, 'app/web:keep'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'berth-e2e-layer-'));
  try {
    const layer = randomLayer(work, 4 * 1024 * 1024);
    await admin.run([
      'append',
      '-b',
      `${endpoint}/app/web:keep`,
      '-f',
      layer,
      '-t',
      `${endpoint}/app/web:old-1`,
    ]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  keepDigest = await admin.run(['digest', `${endpoint}/app/web:keep`]);
  log(`pushed app/web:keep (${keepDigest}) and app/web:old-1`);
}, 900_000);

afterAll(async () => {
  await ground?.stop();
}, 120_000);

describe('retention and garbage collection as real Jobs', () => {
  test('an enforcing RetentionPolicy deletes the tag it should in a Job on the node, and keeps the rest', async () => {
    await createBerthObject(
      ground.kc,
      'RetentionPolicy',
      app,
      { name: 'drop-old', annotations: { 'berth.dev/run-requested-at': new Date().toISOString() } },
      {
        registryRef: { name: reg, namespace: regNs },
        repositories: { include: ['app/**'] },
        schedule: '0 2 * * *',
        mode: 'Enforce',
        rules: [
          { name: 'keep', tags: { include: ['keep'] }, keep: { all: true } },
          { name: 'old', tags: { include: ['old-*'] }, keep: { mostRecent: 0 } },
        ],
        protect: { minAge: '0s' },
      },
    );
    const policy = await eventually(
      'the retention run to complete',
      async () =>
        (await customObjects(ground.kc).getNamespacedCustomObject({
          group,
          version,
          plural: 'retentionpolicies',
          namespace: app,
          name: 'drop-old',
        })) as PolicyObject,
      (p) => Boolean(p.status?.lastRun?.completionTime),
      300_000,
    );
    expect(policy.status?.lastRun).toMatchObject({ mode: 'Enforce', result: 'Succeeded', deleted: 1 });
    expect(policy.status?.lastRun?.evaluated).toBe(2);
    expect(policy.status?.observedGeneration).toBe(policy.metadata.generation);
    expect(policy.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Scheduled',
    });
    // The Job of the retention-run contract: berth's image, the flags, the admin credential and
    // CA, the claim read-only, on the registry pod's node, with its own ServiceAccount.
    const [job] = (await jobsNamed('retention-drop-old-')).filter(complete);
    expect(job).toBeDefined();
    const spec = job!.spec!.template.spec!;
    expect(spec.containers[0]!.image).toBe(ground.images.berth);
    expect(spec.containers[0]!.args?.[0]).toBe('retention-run');
    expect([
      arg(job!, 'policy'),
      arg(job!, 'registry-url'),
      arg(job!, 'mode'),
      arg(job!, 'report-namespace'),
      arg(job!, 'ca-file'),
      arg(job!, 'docker-config'),
      arg(job!, 'storage-root'),
    ]).toEqual([
      `${app}/drop-old`,
      `https://${reg}.${regNs}.svc`,
      'Enforce',
      app,
      '/etc/berth/ca/ca.crt',
      '/etc/berth/admin/config.json',
      '/var/lib/registry',
    ]);
    expect(spec.serviceAccountName).toBe('berth-retention');
    expect(spec.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim).toEqual({
      claimName: `${reg}-data`,
      readOnly: true,
    });
    expect(
      spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]
        ?.matchFields?.[0]?.values,
    ).toEqual([await registryPodNode()]);
    // The report the real run wrote, in the team's namespace, named in status.
    const report = arg(job!, 'report-configmap')!;
    expect(policy.status?.lastRun?.report).toBe(report);
    const cm = await core.readNamespacedConfigMap({ namespace: app, name: report });
    expect(Object.keys({ ...cm.data, ...cm.binaryData }).length).toBeGreaterThan(0);
    const events = await ground.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: app });
    expect(events.items.some((e) => e.reason === 'RunSucceeded' && e.regarding?.name === 'drop-old')).toBe(
      true,
    );
    // It ran as a Job whose pod ran berth's image on the real node.
    const pods = await core.listNamespacedPod({ namespace: regNs });
    const runPods = pods.items.filter((p) => p.metadata?.labels?.['job-name']?.includes('drop-old'));
    expect(runPods.length).toBeGreaterThan(0);
    expect(runPods[0]!.spec?.nodeName).toBe(ground.node.name);
    expect(runPods[0]!.status?.phase).toBe('Succeeded');
    // The registry says so too.
    const tags = (await admin.run(['ls', `${endpoint}/app/web`])).split('\n');
    expect(tags).toEqual(['keep']);
    // The kept image pulls on the node; the deleted tag does not.
    await core.createNamespacedPod({ namespace: app, body: appPod('kept', `${endpoint}/app/web:keep`) });
    expect(await podSettles(ground.kc, app, 'kept')).toMatchObject({ phase: 'Running', ready: true });
    await core.createNamespacedPod({ namespace: app, body: appPod('gone', `${endpoint}/app/web:old-1`) });
    expect(pullFailures).toContain((await podSettles(ground.kc, app, 'gone')).waitingReason);
  }, 420_000);

  test('garbage collection runs as a Job on the node, frees the bytes, and the kept image still pulls', async () => {
    // Collect only what retention left unreferenced: delete a tag by hand first, so the test
    // does not depend on the retention test having run.
    const work = mkdtempSync(path.join(os.tmpdir(), 'berth-e2e-layer-'));
    try {
      await admin.run([
        'append',
        '-b',
        `${endpoint}/app/web:keep`,
        '-f',
        randomLayer(work, 2 * 1024 * 1024),
        '-t',
        `${endpoint}/app/web:scratch`,
      ]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const scratch = await admin.run(['digest', `${endpoint}/app/web:scratch`]);
    await admin.run(['delete', `${endpoint}/app/web@${scratch}`]);
    // Every step of the procedure shows in status: record the phases as they pass.
    const phases: string[] = [];
    let recording = true;
    const recorder = (async () => {
      while (recording) {
        const phase = (await readRegistry(ground.kc, regNs, reg).catch(() => undefined))?.status
          ?.garbageCollection?.phase;
        if (phase && phases.at(-1) !== phase) phases.push(phase);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const requestedAt = new Date().toISOString();
    await patchRegistry(ground.kc, regNs, reg, {
      metadata: { annotations: { 'berth.dev/gc-requested-at': requestedAt } },
    });
    const done = await eventually(
      'garbage collection to finish',
      () => readRegistry(ground.kc, regNs, reg),
      (r) => {
        const last = r.status?.garbageCollection?.lastRun as
          { startTime?: string; result?: string } | undefined;
        return Boolean(last?.result && last.startTime && last.startTime >= requestedAt.slice(0, 19));
      },
      420_000,
    );
    recording = false;
    await recorder;
    const finalPhase = done.status?.garbageCollection?.phase;
    if (finalPhase && phases.at(-1) !== finalPhase) phases.push(finalPhase);
    const lastRun = done.status!.garbageCollection!.lastRun!;
    // The whole record, so that a failure shows its message (which step, and why).
    expect(lastRun).toMatchObject({ result: 'Succeeded', trigger: 'OnDemand' });
    expect(lastRun.bytesFreed).toBeGreaterThan(2 * 1024 * 1024);
    // The phases it went through, in the order of the procedure (a short one may pass unseen).
    const order = ['Pending', 'ReadOnly', 'Collecting', 'Restarting', 'ReadWrite', 'Verifying', 'Succeeded'];
    const ranks = phases.map((p) => order.indexOf(p));
    console.log(`[e2e-node] garbage collection phases seen: ${phases.join(' → ')}`);
    expect(ranks.every((r, i) => r >= 0 && (i === 0 || r > ranks[i - 1]!))).toBe(true);
    expect(phases).toEqual(expect.arrayContaining(['ReadOnly', 'Collecting']));
    expect(phases.at(-1)).toBe('Succeeded');
    // The three Jobs really ran: the read-only probe and the verification from berth's image, the
    // collection from the registry's image with its config and claim, beside the registry pod.
    const [probe] = (await jobsNamed(`${reg}-gcp-`)).filter(complete);
    const [collect] = (await jobsNamed(`${reg}-gc-`)).filter(complete);
    const [verify] = (await jobsNamed(`${reg}-gcv-`)).filter(complete);
    for (const [job, args0] of [
      [probe, ['gc-run', 'probe']],
      [verify, ['gc-run', 'verify']],
    ] as const) {
      const c = job?.spec?.template.spec?.containers[0];
      expect(c?.image).toBe(ground.images.berth);
      expect(c?.args).toEqual([
        ...args0,
        `--registry-url=https://${reg}.${regNs}.svc`,
        '--docker-config=/etc/berth/admin/config.json',
        '--ca-file=/etc/berth/ca/ca.crt',
      ]);
    }
    const gcPod = collect!.spec!.template.spec!;
    expect(gcPod.containers[0]!.image).toBe('registry:3.1.1');
    expect(gcPod.containers[0]!.command?.join(' ')).toMatch(/garbage-collect --delete-untagged/);
    expect(gcPod.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe(
      `${reg}-data`,
    );
    expect(gcPod.automountServiceAccountToken).toBe(false);
    const events = await ground.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: regNs });
    expect(
      events.items.some(
        (e) =>
          e.reason === 'GarbageCollectionSucceeded' &&
          e.note?.includes(`${lastRun.blobsDeleted} blobs deleted`),
      ),
    ).toBe(true);
    console.log(`[e2e-node] garbage collection: ${JSON.stringify(lastRun)}`);
    const pods = await core.listNamespacedPod({ namespace: regNs });
    const gcPods = pods.items.filter((p) => /gc/.test(p.metadata?.labels?.['job-name'] ?? ''));
    expect(gcPods.length).toBeGreaterThan(0);
    expect(gcPods.every((p) => p.spec?.nodeName === ground.node.name)).toBe(true);
    // The registry is writable again and the kept image still pulls (a fresh pull, no cache).
    await registryReady(ground.kc, regNs, reg);
    await core.createNamespacedPod({
      namespace: app,
      body: appPod('after-gc', `${endpoint}/app/web:keep`, 'Always'),
    });
    expect(await podSettles(ground.kc, app, 'after-gc', 180_000)).toMatchObject({
      phase: 'Running',
      ready: true,
    });
    expect(await admin.run(['digest', `${endpoint}/app/web:keep`])).toBe(keepDigest);
  }, 600_000);
});

describe('two operator replicas', () => {
  test('deleting the leader pod while a Registry is being changed: the other replica finishes it', async () => {
    const coordination = ground.kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coordination.readNamespacedLease({
      namespace: berthNamespace,
      name: 'berth-operator',
    });
    const leader = lease.spec?.holderIdentity ?? '';
    const pods = await core.listNamespacedPod({ namespace: berthNamespace });
    const leaderPod = pods.items.find((p) => leader.startsWith(p.metadata?.name ?? '\u0000'));
    expect(leaderPod).toBeDefined();
    // Change the Registry, and take the leader away at once.
    await patchRegistry(ground.kc, regNs, reg, { spec: { podLabels: { 'berth.test/changed': 'yes' } } });
    const deleted = Date.now();
    await core.deleteNamespacedPod({
      namespace: berthNamespace,
      name: leaderPod!.metadata!.name!,
      gracePeriodSeconds: 0,
    });
    const registry = await registryReady(ground.kc, regNs, reg, 180_000);
    console.log(
      `[e2e-node] leader pod deleted: the change was reconciled ${((Date.now() - deleted) / 1000).toFixed(1)}s later`,
    );
    expect(registry.status?.observedGeneration).toBe(registry.metadata.generation);
    const apps = ground.kc.makeApiClient(k8s.AppsV1Api);
    const deployment = await apps.readNamespacedDeployment({ namespace: regNs, name: `${reg}-registry` });
    expect(deployment.spec?.template.metadata?.labels?.['berth.test/changed']).toBe('yes');
    const after = await coordination.readNamespacedLease({
      namespace: berthNamespace,
      name: 'berth-operator',
    });
    expect(after.spec?.holderIdentity).not.toBe(leader);
  }, 300_000);
});
