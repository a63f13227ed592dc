// The garbage collection controller against the real control plane, with the test acting as the
// Jobs so that it chooses their results (kwok runs pods but executes nothing). The procedure with
// real Jobs from berth's and the registry's images, every phase seen in status and the bytes the
// real collection freed, runs on the real node in test/e2e-node/lifecycle.test.ts. Here: on demand
// and on schedule, each step of the procedure observed in status, the read-only configuration
// rolled out, no collection before every old pod is gone (terminating ones included) and a push
// was tried and refused (the probe Job; a push accepted fails the run and collects nothing), the GC
// Job on the registry pod's node with the registry's image, config and claim, the restart, the
// verification Job, the figures in status.garbageCollection.lastRun; a failed Job leaves the
// registry read-only and Degraded, and a retry recovers; the lock against retention runs in both
// directions.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { createBoundVolume, createRegistry, manualClaim } from '../harness/objects.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { holdLabel, JobActor } from './act-as-job.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);
const actor = new JobActor(kc);
const group = { group: 'berth.dev', version: 'v1alpha1' };
const berthImage = 'ghcr.io/berth-dev/berth:gc-test';
let operator: RunningOperator;
let ns: string;
let team: string;

interface GC {
  phase?: string;
  message?: string;
  handledRequest?: string;
  nextRunTime?: string;
  run?: {
    job?: string;
    restartedAt?: string;
    blobsDeleted?: number;
    bytesFreed?: number;
    trigger?: string;
    startTime?: string;
  };
  lastRun?: {
    result?: string;
    blobsDeleted?: number;
    bytesFreed?: number;
    durationSeconds?: number;
    startTime?: string;
    completionTime?: string;
    trigger?: string;
    message?: string;
  };
}
interface Reg {
  metadata: k8s.V1ObjectMeta;
  status?: {
    garbageCollection?: GC;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

const getRegistry = () =>
  custom.getNamespacedCustomObject({
    ...group,
    plural: 'registries',
    namespace: ns,
    name: 'main',
  }) as Promise<Reg>;
const gcOf = (r: Reg) => r.status?.garbageCollection ?? {};
const cond = (r: Reg, type: string) => r.status?.conditions?.find((c) => c.type === type);
const waitPhase = (phase: string, timeoutMs = 60_000) =>
  eventually(`garbage collection phase ${phase}`, getRegistry, (r) => gcOf(r).phase === phase, timeoutMs);

async function mergePatch(plural: string, name: string, body: unknown, namespace = ns): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { ...group, plural, namespace, name, body },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}
const requestGC = async (at = new Date().toISOString()) => {
  await mergePatch('registries', 'main', { metadata: { annotations: { 'berth.dev/gc-requested-at': at } } });
  return at;
};

async function configReadOnly(): Promise<boolean> {
  const s = await core.readNamespacedSecret({ name: 'main-registry-config', namespace: ns });
  const doc = parse(Buffer.from(s.data?.['config.yml'] ?? '', 'base64').toString()) as {
    storage?: { maintenance?: { readonly?: { enabled?: boolean } } };
  };
  return doc.storage?.maintenance?.readonly?.enabled === true;
}

async function registryPodNode(): Promise<string> {
  const pods = await eventually(
    'a running registry pod',
    () =>
      core.listNamespacedPod({
        namespace: ns,
        labelSelector: 'berth.dev/registry=main,app.kubernetes.io/component=registry',
      }),
    (l) => l.items.some((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp),
  );
  return pods.items.find((p) => p.status?.phase === 'Running')!.spec!.nodeName!;
}

/**
 * Acts as the read-only probe Job of the run in progress: a push refused (exit 0, what `berth
 * gc-run probe` prints), or accepted (exit 1 with its termination message).
 */
async function finishProbe(exitCode = 0, message = '{"verdict":"refused","status":405}'): Promise<k8s.V1Job> {
  const probing = await eventually(
    'the read-only probe Job in status',
    getRegistry,
    (r) => gcOf(r).phase === 'ReadOnly' && /^main-gcp-/.test(gcOf(r).run?.job ?? ''),
    90_000,
  );
  const name = gcOf(probing).run!.job!;
  const [job] = await eventually(
    `Job ${name}`,
    () => actor.jobs(ns, name),
    (l) => l.some((j) => j.metadata?.name === name),
  );
  await actor.finish(ns, name, exitCode, message);
  return job!;
}

let dropVolume: (() => Promise<void>) | undefined;

beforeAll(async () => {
  await actor.holdJobPods();
  ns = await createTestNamespace(kc, 'gc', holdLabel);
  team = await createTestNamespace(kc, 'gcteam', holdLabel);
  dropVolume = await createBoundVolume(kc, ns);
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [`--watch-namespaces=${ns},${team}`, '--resync-period=5s'],
    env: { BERTH_IMAGE: berthImage },
  });
  await createRegistry(kc, ns, 'main', {
    storage: manualClaim(),
    garbageCollection: { schedule: '0 3 * * 0', deleteUntagged: true },
  });
  await eventually('Registry main Ready', getRegistry, (r) => cond(r, 'Ready')?.status === 'True', 120_000);
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await actor.release();
  await dropVolume?.();
});

describe('garbage collection, on demand', () => {
  it('schedules the next run from spec.garbageCollection.schedule', async () => {
    const r = await eventually('nextRunTime', getRegistry, (x) => !!gcOf(x).nextRunTime);
    const next = new Date(gcOf(r).nextRunTime!);
    expect(next.getUTCDay()).toBe(0);
    expect(next.getUTCHours()).toBe(3);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    // A schedule alone starts nothing: no run is in progress (whatever other tests ran before).
    expect([undefined, 'Succeeded', 'Failed']).toContain(gcOf(r).phase);
  });

  it('runs the whole procedure and reports the figures the Job chose to print', async () => {
    const requested = await requestGC();
    // First a push must be refused: the probe Job, once every pod runs the read-only configuration.
    const probing = await eventually(
      'the read-only probe',
      getRegistry,
      (r) => gcOf(r).phase === 'ReadOnly' && /^main-gcp-/.test(gcOf(r).run?.job ?? ''),
      90_000,
    );
    expect(gcOf(probing).message).toMatch(/checking that a push is refused/);
    expect(await configReadOnly()).toBe(true);
    const probe = await actor.waitForJob(ns, 'main-gcp-');
    const pc = probe.spec!.template.spec!.containers[0]!;
    expect(pc.image).toBe(berthImage);
    expect(pc.args).toEqual([
      'gc-run',
      'probe',
      `--registry-url=https://main.${ns}.svc`,
      '--docker-config=/etc/berth/admin/config.json',
      '--ca-file=/etc/berth/ca/ca.crt',
    ]);
    expect(await actor.jobs(ns, 'main-gc-')).toEqual([]); // nothing collected before the push was refused
    await actor.finish(ns, probe.metadata!.name!, 0, '{"verdict":"refused","status":405}');
    const collecting = await waitPhase('Collecting', 90_000);
    expect(gcOf(collecting).handledRequest).toBe(requested);
    expect(await configReadOnly()).toBe(true);
    const deployment = await apps.readNamespacedDeployment({ name: 'main-registry', namespace: ns });
    expect(deployment.status?.updatedReplicas).toBe(1);

    // The GC Job: the registry's image, config and claim, beside the registry pod.
    const job = await actor.waitForJob(ns, 'main-gc-');
    expect(gcOf(collecting).run?.job).toBe(job.metadata?.name);
    const node = await registryPodNode(); // after the read-only rollout, which may have moved it
    const pod = job.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.image).toBe('registry:3.1.1');
    expect(c.command?.join(' ')).toMatch(
      /registry' garbage-collect --delete-untagged '\/etc\/distribution\/config.yml'/,
    );
    expect(pod.volumes?.find((v) => v.name === 'config')?.secret?.secretName).toBe('main-registry-config');
    expect(pod.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe('main-data');
    expect(c.volumeMounts?.find((m) => m.name === 'data')?.mountPath).toBe('/var/lib/registry');
    const terms =
      pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(terms?.[0]?.matchFields?.[0]).toMatchObject({
      key: 'metadata.name',
      operator: 'In',
      values: [node],
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Registry', name: 'main' });

    // Act as the Job: its output, then Complete.
    await actor.finish(ns, job.metadata!.name!, 0, '{"blobsDeleted":42,"bytesFreed":123456789}\n');

    // Restart (stamp on the pod template), back to read-write, verification Job.
    const verifying = await waitPhase('Verifying', 90_000);
    expect(gcOf(verifying).run).toMatchObject({ blobsDeleted: 42, bytesFreed: 123456789 });
    const restarted = await apps.readNamespacedDeployment({ name: 'main-registry', namespace: ns });
    expect(restarted.spec?.template.metadata?.annotations?.['berth.dev/restarted-at']).toBe(
      gcOf(verifying).run?.restartedAt ?? 'missing',
    );
    expect(await configReadOnly()).toBe(false);
    const verify = await actor.waitForJob(ns, 'main-gcv-');
    const vc = verify.spec!.template.spec!.containers[0]!;
    expect(vc.image).toBe(berthImage);
    expect(vc.args).toEqual([
      'gc-run',
      'verify',
      `--registry-url=https://main.${ns}.svc`,
      '--docker-config=/etc/berth/admin/config.json',
      '--ca-file=/etc/berth/ca/ca.crt',
    ]);
    await actor.finish(ns, verify.metadata!.name!, 0, '{"repositories":0}');

    const done = await waitPhase('Succeeded');
    const last = gcOf(done).lastRun!;
    expect(last).toMatchObject({
      result: 'Succeeded',
      trigger: 'OnDemand',
      blobsDeleted: 42,
      bytesFreed: 123456789,
    });
    expect(last.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(last.completionTime!)).toBeGreaterThanOrEqual(Date.parse(last.startTime!));
    expect(gcOf(done).run).toBeUndefined();
    const ready = await eventually('Ready again', getRegistry, (r) => cond(r, 'Ready')?.status === 'True');
    expect(cond(ready, 'Degraded')?.status).toBe('False');
    const ev = await events.listNamespacedEvent({ namespace: ns });
    expect(
      ev.items.some((e) => e.reason === 'GarbageCollectionSucceeded' && e.note?.includes('42 blobs deleted')),
    ).toBe(true);
  }, 240_000);

  it('a failed GC Job leaves the registry read-only and Degraded; a retry recovers', async () => {
    await requestGC(new Date(Date.now() + 1000).toISOString());
    await finishProbe();
    await waitPhase('Collecting', 90_000);
    const before = (await getRegistry()).status?.garbageCollection?.run?.job ?? '';
    const previous = (await actor.jobs(ns, 'main-gc-')).map((j) => j.metadata?.name ?? '');
    const job = await actor.waitForJob(
      ns,
      'main-gc-',
      previous.filter((n) => n !== before),
      30_000,
    );
    expect(job.metadata?.name).toBe(before);
    await actor.finish(ns, before, 1, 'filesystem: permission denied\n');

    const failed = await waitPhase('Failed');
    expect(gcOf(failed).lastRun).toMatchObject({ result: 'Failed' });
    expect(gcOf(failed).message).toMatch(/CollectFailed.*BackoffLimitExceeded.*permission denied/);
    const degraded = await eventually('Degraded', getRegistry, (r) => cond(r, 'Degraded')?.status === 'True');
    expect(cond(degraded, 'Degraded')).toMatchObject({ reason: 'GarbageCollectionFailed' });
    expect(cond(degraded, 'Degraded')?.message).toMatch(/read-only.*berth.dev\/gc-requested-at/);
    expect(await configReadOnly()).toBe(true);
    await eventually(
      'a GarbageCollectionFailed Warning',
      () => events.listNamespacedEvent({ namespace: ns }),
      (l) => l.items.some((e) => e.reason === 'GarbageCollectionFailed' && e.type === 'Warning'),
    );

    // Retry on demand: the whole procedure again, this time it succeeds.
    const known = (await actor.jobs(ns, 'main-gc-')).map((j) => j.metadata?.name ?? '');
    await requestGC(new Date(Date.now() + 2000).toISOString());
    await finishProbe();
    const retry = await actor.waitForJob(ns, 'main-gc-', known, 90_000);
    await actor.finish(ns, retry.metadata!.name!, 0, '{"blobsDeleted":1,"bytesFreed":10}');
    const verify = await eventually(
      'a new verify Job',
      () => actor.jobs(ns, 'main-gcv-'),
      (l) => l.some((j) => !j.status?.conditions?.length),
      90_000,
    );
    await actor.finish(ns, verify.find((j) => !j.status?.conditions?.length)!.metadata!.name!, 0, 'verified');
    const ok = await waitPhase('Succeeded');
    expect(gcOf(ok).lastRun).toMatchObject({ result: 'Succeeded', blobsDeleted: 1, bytesFreed: 10 });
    await eventually('not Degraded', getRegistry, (r) => cond(r, 'Degraded')?.status === 'False');
    expect(await configReadOnly()).toBe(false);
  }, 240_000);
});

describe('the read-only check before collecting', () => {
  /** Lets the run in progress finish as its Jobs would (so the next test starts from Succeeded). */
  async function completeRun(): Promise<void> {
    await finishProbe();
    await waitPhase('Collecting', 90_000);
    await actor.finish(ns, (await getRegistry()).status!.garbageCollection!.run!.job!, 0, '{}');
    const verify = await eventually(
      'the verify Job',
      () => actor.jobs(ns, 'main-gcv-'),
      (l) => l.some((j) => !j.status?.conditions?.length),
      90_000,
    );
    await actor.finish(ns, verify.find((j) => !j.status?.conditions?.length)!.metadata!.name!, 0, 'verified');
    await waitPhase('Succeeded');
  }

  it('a push that is not refused: nothing is collected, the registry stays read-only and Degraded', async () => {
    const collectJobs = (await actor.jobs(ns, 'main-gc-')).length;
    await requestGC(new Date(Date.now() + 1000).toISOString());
    await finishProbe(
      1,
      'the registry accepted a push (POST /v2/berth-gc-probe/readonly/blobs/uploads/ answered HTTP 202): it is not read-only, so nothing was collected; the throw-away upload was cancelled',
    );
    const failed = await waitPhase('Failed');
    expect(gcOf(failed).message).toMatch(
      /^PushNotRefused: the read-only check Job main-gcp-\w+ failed: .*the registry accepted a push .*HTTP 202/,
    );
    expect(gcOf(failed).lastRun).toMatchObject({ result: 'Failed' });
    const degraded = await eventually('Degraded', getRegistry, (r) => cond(r, 'Degraded')?.status === 'True');
    expect(cond(degraded, 'Degraded')?.message).toMatch(/accepted a push/);
    expect(await configReadOnly()).toBe(true);
    expect((await actor.jobs(ns, 'main-gc-')).length).toBe(collectJobs);

    await requestGC(new Date(Date.now() + 2000).toISOString()); // a retry recovers
    await completeRun();
  }, 300_000);

  it('an old registry pod that is still terminating holds the collection back until it is gone', async () => {
    // A pod of the previous (writable) configuration that has not finished terminating, as during a
    // RollingUpdate on shared storage: the Deployment's counts no longer show it, but it serves.
    const stale = 'main-registry-old-writable';
    // On a node object with no kubelet or kwok behind it (kwok would finish the termination at once,
    // and a pod on a node that does not exist is failed by the pod garbage collector).
    const node = `berth-test-${ns}`;
    await core.createNode({
      body: {
        metadata: { name: node },
        spec: { unschedulable: true, taints: [{ key: 'berth-test/no-kubelet', effect: 'NoSchedule' }] },
      },
    });
    try {
      await holdWithStalePod(stale, node);
    } finally {
      await core.deleteNode({ name: node }).catch(() => undefined);
    }
  }, 300_000);

  async function holdWithStalePod(stale: string, node: string): Promise<void> {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: {
          name: stale,
          labels: { 'berth.dev/registry': 'main', 'app.kubernetes.io/component': 'registry' },
          annotations: { 'berth.dev/config-checksum': 'the-previous-writable-configuration' },
          finalizers: ['berth-test/still-terminating'],
        },
        spec: {
          nodeName: node,
          containers: [{ name: 'registry', image: 'registry:3.1.1' }],
        },
      },
    });
    await core.deleteNamespacedPod({ namespace: ns, name: stale, gracePeriodSeconds: 0 });
    const probes = (await actor.jobs(ns, 'main-gcp-')).length;
    await requestGC(new Date(Date.now() + 1000).toISOString());
    const held = await eventually(
      'ReadOnly, waiting for the old pod',
      getRegistry,
      (r) => gcOf(r).phase === 'ReadOnly' && /waiting for 1 registry pod/.test(gcOf(r).message ?? ''),
      90_000,
    );
    expect(gcOf(held).message).toMatch(/previous configuration to go \(terminating ones included\)/);
    expect(
      (await apps.readNamespacedDeployment({ name: 'main-registry', namespace: ns })).status,
    ).toMatchObject({ replicas: 1, updatedReplicas: 1, availableReplicas: 1 });
    await new Promise((r) => setTimeout(r, 8000)); // several resyncs
    expect(gcOf(await getRegistry()).phase).toBe('ReadOnly');
    expect((await actor.jobs(ns, 'main-gcp-')).length).toBe(probes);

    // The old pod goes: the push is tried, and the collection runs.
    await core.patchNamespacedPod(
      { namespace: ns, name: stale, body: { metadata: { finalizers: null } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await completeRun();
  }
});

describe('the lock between garbage collection and retention runs', () => {
  it('GC waits for a running retention Job, and no retention run starts during GC', async () => {
    // A retention run in progress (as the retention controller labels its Jobs).
    await actor.batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: {
          name: 'retention-running',
          labels: {
            'app.kubernetes.io/managed-by': 'berth',
            'berth.dev/retention-policy': 'other',
            'berth.dev/retention-policy-namespace': team,
            'berth.dev/registry': 'main',
          },
        },
        spec: {
          backoffLimit: 0,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: berthImage }] } },
        },
      },
    });
    await requestGC(new Date(Date.now() + 3000).toISOString());
    const pending = await eventually('GC waiting', getRegistry, (r) =>
      /1 retention run/.test(gcOf(r).message ?? ''),
    );
    expect(gcOf(pending).phase).toBe('Pending');
    await new Promise((r) => setTimeout(r, 8000)); // beyond the lock's settle time
    expect(gcOf(await getRegistry()).phase).toBe('Pending');
    expect(await configReadOnly()).toBe(false);

    await actor.finish(ns, 'retention-running', 0, 'retention done');
    await finishProbe();
    await waitPhase('Collecting', 90_000);

    // During the collection a RetentionPolicy of this Registry is due on demand: it must wait.
    await custom.createNamespacedCustomObject({
      ...group,
      plural: 'retentionpolicies',
      namespace: team,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'RetentionPolicy',
        metadata: {
          name: 'during-gc',
          annotations: { 'berth.dev/run-requested-at': new Date().toISOString() },
        },
        spec: {
          registryRef: { name: 'main', namespace: ns },
          repositories: { include: [`${team}/**`] },
          schedule: '0 2 * * *',
          rules: [{ name: 'all', tags: { include: ['*'] }, keep: { mostRecent: 1 } }],
        },
      },
    });
    await eventually(
      'a RunWaiting event',
      () => events.listNamespacedEvent({ namespace: team }),
      (l) => l.items.some((e) => e.reason === 'RunWaiting' && e.regarding?.name === 'during-gc'),
      60_000,
    );
    expect((await actor.jobs(ns, 'retention-during-gc-')).length).toBe(0);

    const job = (await getRegistry()).status?.garbageCollection?.run?.job ?? '';
    await actor.finish(ns, job, 0, '{}');
    const verify = await eventually(
      'the verify Job',
      () => actor.jobs(ns, 'main-gcv-'),
      (l) => l.some((j) => !j.status?.conditions?.length),
      90_000,
    );
    expect((await actor.jobs(ns, 'retention-during-gc-')).length).toBe(0);
    await actor.finish(ns, verify.find((j) => !j.status?.conditions?.length)!.metadata!.name!, 0, 'verified');
    await waitPhase('Succeeded');
    // The lock is released: the waiting retention run starts.
    const retention = await actor.waitForJob(ns, 'retention-during-gc-', [], 60_000);
    await actor.finish(ns, retention.metadata!.name!, 0, 'done'); // let it go: the next test collects again
  }, 300_000);
});

describe('garbage collection, on schedule', () => {
  it('starts when the schedule is due', async () => {
    await mergePatch('registries', 'main', { spec: { garbageCollection: { schedule: '* * * * *' } } });
    const scheduled = await eventually(
      'a minute-aligned nextRunTime',
      getRegistry,
      (r) =>
        !!gcOf(r).nextRunTime &&
        new Date(gcOf(r).nextRunTime!).getUTCSeconds() === 0 &&
        Date.parse(gcOf(r).nextRunTime!) - Date.now() <= 61_000,
    );
    const due = Date.parse(gcOf(scheduled).nextRunTime!);
    const started = await eventually(
      'a scheduled run',
      getRegistry,
      (r) => gcOf(r).run?.trigger === 'Schedule',
      90_000,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(due);
    expect(Date.parse(gcOf(started).run!.startTime!)).toBeGreaterThanOrEqual(due);
    // Stop scheduling; let this run finish as the Jobs would.
    await mergePatch('registries', 'main', { spec: { garbageCollection: { schedule: '0 3 * * 0' } } });
    await finishProbe();
    await waitPhase('Collecting', 90_000);
    await actor.finish(ns, (await getRegistry()).status!.garbageCollection!.run!.job!, 0, '{}');
    const verify = await eventually(
      'the verify Job',
      () => actor.jobs(ns, 'main-gcv-'),
      (l) => l.some((j) => !j.status?.conditions?.length),
      90_000,
    );
    await actor.finish(ns, verify.find((j) => !j.status?.conditions?.length)!.metadata!.name!, 0, 'verified');
    const done = await waitPhase('Succeeded');
    expect(gcOf(done).lastRun).toMatchObject({ result: 'Succeeded', trigger: 'Schedule' });
  }, 240_000);
});
