// The RetentionPolicy controller against the real control plane, with the test acting as the
// retention run so that it chooses the report (kwok executes nothing): the run writes its report
// ConfigMap and exits, the real Job controller marks the Job, and the controller must report it.
// The real run, a Job from berth's image on the real node that deletes a tag, its contract and its
// report in status, is test/e2e-node/lifecycle.test.ts. On demand and on schedule, the Job's
// shape (flags of the retention-run contract, admin credential, CA, claim read-only, the registry
// pod's node, its ServiceAccount and bindings), placed as the Registry's pods (nodeSelector,
// priority class, tolerations), no two runs of a policy at once, a failing and a
// refused run, bounded history, a missing Registry, a Registry on emptyDir refused up front, and a
// failed Job's reason (its container's termination message) in Ready.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, testKubeConfig, undoAfterFile } from '../harness/kube.ts';
import { createBoundVolume, createRegistry, manualClaim } from '../harness/objects.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { holdLabel, JobActor } from '../gc/act-as-job.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);
const actor = new JobActor(kc);
const group = { group: 'berth.dev', version: 'v1alpha1' };
const berthImage = 'ghcr.io/berth-dev/berth:retention-test';
let operator: RunningOperator;
let regNs: string;
let team: string;

interface Policy {
  metadata: k8s.V1ObjectMeta;
  status?: {
    lastRun?: Record<string, unknown> & { report?: string; result?: string; startTime?: string };
    nextRunTime?: string;
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}
const getPolicy = (name: string, namespace = team) =>
  custom.getNamespacedCustomObject({
    ...group,
    plural: 'retentionpolicies',
    namespace,
    name,
  }) as Promise<Policy>;
const ready = (p: Policy) => p.status?.conditions?.find((c) => c.type === 'Ready');

async function createPolicy(
  name: string,
  spec: Record<string, unknown>,
  annotations: Record<string, string> = {},
) {
  await custom.createNamespacedCustomObject({
    ...group,
    plural: 'retentionpolicies',
    namespace: team,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'RetentionPolicy',
      metadata: { name, annotations },
      spec: {
        repositories: { include: [`${team}/**`] },
        rules: [{ name: 'ci', tags: { include: ['pr-*'] }, keep: { mostRecent: 2 } }],
        ...spec,
      },
    },
  });
}

async function requestRun(name: string): Promise<string> {
  const at = new Date().toISOString();
  await custom.patchNamespacedCustomObject(
    {
      ...group,
      plural: 'retentionpolicies',
      namespace: team,
      name,
      body: { metadata: { annotations: { 'berth.dev/run-requested-at': at } } },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  return at;
}

/** What `berth retention-run` writes: the report ConfigMap, in the policy's namespace. */
async function writeReport(name: string, policy: string, summary: Record<string, unknown>): Promise<void> {
  await core.createNamespacedConfigMap({
    namespace: team,
    body: {
      metadata: {
        name,
        labels: { 'app.kubernetes.io/managed-by': 'berth', 'berth.dev/retention-policy': policy },
      },
      data: { 'summary.json': JSON.stringify(summary), 'report.json': '{"decisions":[]}' },
    },
  });
}

const arg = (job: k8s.V1Job, flag: string) =>
  job.spec?.template.spec?.containers[0]?.args
    ?.find((a) => a.startsWith(`--${flag}=`))
    ?.slice(flag.length + 3);

let dropVolume: (() => Promise<void>) | undefined;

beforeAll(async () => {
  await actor.holdJobPods();
  regNs = await createTestNamespace(kc, 'rreg', holdLabel);
  team = await createTestNamespace(kc, 'rteam', holdLabel);
  dropVolume = await createBoundVolume(kc, regNs);
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [`--watch-namespaces=${regNs},${team}`, '--resync-period=5s'],
    env: { BERTH_IMAGE: berthImage },
  });
  await createRegistry(kc, regNs, 'main', { storage: manualClaim() });
  await eventually(
    'Registry main Ready',
    () =>
      custom.getNamespacedCustomObject({ ...group, plural: 'registries', namespace: regNs, name: 'main' }),
    (r) => !!(r as Policy).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    120_000,
  );
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await actor.release();
  await dropVolume?.();
});

describe('RetentionPolicy runs', () => {
  it('on demand: a Job of the retention-run contract, and every figure of a chosen report lands in status', async () => {
    const requested = new Date().toISOString();
    await createPolicy(
      'ci',
      { registryRef: { name: 'main', namespace: regNs }, schedule: '0 2 * * *', mode: 'Enforce' },
      { 'berth.dev/run-requested-at': requested },
    );
    const job = await actor.waitForJob(regNs, 'retention-ci-');
    const pod = job.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.image).toBe(berthImage);
    expect(c.args?.[0]).toBe('retention-run');
    expect(arg(job, 'policy')).toBe(`${team}/ci`);
    expect(arg(job, 'registry-url')).toBe(`https://main.${regNs}.svc`);
    expect(arg(job, 'mode')).toBe('Enforce');
    expect(arg(job, 'report-namespace')).toBe(team);
    expect(arg(job, 'ca-file')).toBe('/etc/berth/ca/ca.crt');
    expect(arg(job, 'docker-config')).toBe('/etc/berth/admin/config.json');
    expect(arg(job, 'storage-root')).toBe('/var/lib/registry');
    const report = arg(job, 'report-configmap')!;
    expect(job.metadata?.annotations?.['berth.dev/report-configmap']).toBe(report);
    expect(pod.serviceAccountName).toBe('berth-retention');
    expect(pod.volumes?.find((v) => v.name === 'admin')?.secret?.secretName).toBe('main-admin');
    expect(pod.volumes?.find((v) => v.name === 'ca')?.configMap?.name).toBe('main-ca');
    expect(pod.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim).toEqual({
      claimName: 'main-data',
      readOnly: true,
    });
    expect(c.volumeMounts?.find((m) => m.name === 'data')).toMatchObject({
      mountPath: '/var/lib/registry',
      readOnly: true,
    });
    const registryPods = await core.listNamespacedPod({
      namespace: regNs,
      labelSelector: 'berth.dev/registry=main,app.kubernetes.io/component=registry',
    });
    const node = registryPods.items.find((p) => p.status?.phase === 'Running')?.spec?.nodeName;
    expect(
      pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]
        ?.matchFields?.[0]?.values,
    ).toEqual([node]);
    expect(job.metadata?.labels).toMatchObject({
      'berth.dev/retention-policy': 'ci',
      'berth.dev/retention-policy-namespace': team,
      'berth.dev/registry': 'main',
    });
    // Its identity: a ServiceAccount bound to the shipped ClusterRoles, reports only in the team's namespace.
    await core.readNamespacedServiceAccount({ name: 'berth-retention', namespace: regNs });
    const crb = await rbac.readClusterRoleBinding({ name: `berth-retention:${regNs}` });
    expect(crb.roleRef.name).toBe('berth-retention');
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'berth-retention', namespace: regNs }]);
    const rb = await rbac.readNamespacedRoleBinding({
      name: `berth-retention-report:${regNs}`,
      namespace: team,
    });
    expect(rb.roleRef.name).toBe('berth-retention-report');

    const running = await eventually(
      'lastRun started',
      () => getPolicy('ci'),
      (p) => p.status?.lastRun?.report === report,
    );
    expect(running.status?.lastRun).toMatchObject({ mode: 'Enforce', report });
    expect(running.status?.lastRun?.result).toBeUndefined();
    expect(Date.parse(running.status!.nextRunTime!)).toBeGreaterThan(Date.now());

    // Act as the run: the report, then exit 0.
    await writeReport(report, 'ci', {
      mode: 'Enforce',
      evaluated: 10,
      deleted: 3,
      kept: 6,
      protected: 1,
      startTime: new Date(Date.now() - 2000).toISOString(),
      completionTime: new Date().toISOString(),
      result: 'Succeeded',
      message: '3 tags deleted',
    });
    await actor.finish(regNs, job.metadata!.name!, 0, 'done');
    const done = await eventually(
      'lastRun recorded',
      () => getPolicy('ci'),
      (p) => p.status?.lastRun?.result === 'Succeeded',
    );
    expect(done.status?.lastRun).toMatchObject({
      mode: 'Enforce',
      result: 'Succeeded',
      evaluated: 10,
      deleted: 3,
      kept: 6,
      protected: 1,
      report,
    });
    expect(ready(done)).toMatchObject({ status: 'True', reason: 'Scheduled' });
    expect(done.status?.observedGeneration).toBe(done.metadata.generation);
    await eventually(
      'a RunSucceeded event',
      () => events.listNamespacedEvent({ namespace: team }),
      (l) => l.items.some((e) => e.reason === 'RunSucceeded' && e.regarding?.name === 'ci'),
    );
  }, 120_000);

  it('never runs a policy twice at once; a failing and a refused run are reported', async () => {
    const known = (await actor.jobs(regNs, 'retention-ci-')).map((j) => j.metadata?.name ?? '');
    await new Promise((r) => setTimeout(r, 1100)); // Job names carry the second
    await requestRun('ci');
    const b = await actor.waitForJob(regNs, 'retention-ci-', known);
    await new Promise((r) => setTimeout(r, 1100));
    await requestRun('ci'); // while b runs
    await new Promise((r) => setTimeout(r, 6000));
    expect((await actor.jobs(regNs, 'retention-ci-')).length).toBe(known.length + 1);
    await eventually(
      'a RunSkipped event',
      () => events.listNamespacedEvent({ namespace: team }),
      (l) => l.items.some((e) => e.reason === 'RunSkipped' && e.note?.includes(b.metadata!.name!)),
    );

    // b fails: exit 1, its summary says why.
    await writeReport(arg(b, 'report-configmap')!, 'ci', {
      mode: 'Enforce',
      result: 'Failed',
      message: 'registry unreachable: connection refused',
    });
    await actor.finish(regNs, b.metadata!.name!, 1, 'registry unreachable');
    const failed = await eventually(
      'lastRun Failed',
      () => getPolicy('ci'),
      (p) => p.status?.lastRun?.result === 'Failed',
    );
    expect(ready(failed)).toMatchObject({ status: 'False', reason: 'RunFailed' });
    await eventually(
      'a RunFailed warning',
      () => events.listNamespacedEvent({ namespace: team }),
      (l) =>
        l.items.some(
          (e) => e.reason === 'RunFailed' && e.type === 'Warning' && !!e.note?.includes('connection refused'),
        ),
    );

    // The request made while b ran is served now, by a new run; it is refused by the circuit breaker.
    const c = await actor.waitForJob(regNs, 'retention-ci-', [...known, b.metadata!.name!]);
    await writeReport(arg(c, 'report-configmap')!, 'ci', {
      mode: 'Enforce',
      evaluated: 100,
      deleted: 0,
      kept: 100,
      protected: 0,
      result: 'Refused',
      refusedReason: 'would delete 80 tags (80%), more than protect.maxDeletions (30%)',
    });
    await actor.finish(regNs, c.metadata!.name!, 0, 'refused');
    const refused = await eventually(
      'lastRun Refused',
      () => getPolicy('ci'),
      (p) => p.status?.lastRun?.result === 'Refused',
    );
    expect(ready(refused)).toMatchObject({ status: 'False', reason: 'TooManyDeletions' });
    expect(refused.status?.lastRun).toMatchObject({ evaluated: 100, deleted: 0 });
  }, 120_000);

  it('keeps a bounded history of runs and reports', async () => {
    // Its own policy, so the count does not depend on the runs of the other tests.
    const policy = 'history';
    const runOnce = async (first: boolean): Promise<k8s.V1Job> => {
      const before = (await actor.jobs(regNs, `retention-${policy}-`)).map((j) => j.metadata?.name ?? '');
      if (first)
        await createPolicy(
          policy,
          { registryRef: { name: 'main', namespace: regNs }, schedule: '0 2 * * *', mode: 'Enforce' },
          { 'berth.dev/run-requested-at': new Date().toISOString() },
        );
      else {
        await new Promise((r) => setTimeout(r, 1100)); // a new request time (second resolution)
        await requestRun(policy);
      }
      const job = await actor.waitForJob(regNs, `retention-${policy}-`, before);
      await writeReport(arg(job, 'report-configmap')!, policy, {
        mode: 'Enforce',
        result: 'Succeeded',
        evaluated: 1,
        deleted: 0,
        kept: 1,
        protected: 0,
      });
      await actor.finish(regNs, job.metadata!.name!, 0, 'done');
      await eventually(
        'the run recorded',
        () => getPolicy(policy),
        (p) =>
          p.status?.lastRun?.report === arg(job, 'report-configmap') && !!p.status?.lastRun?.completionTime,
      );
      return job;
    };
    const first = await runOnce(true);
    const oldestReport = arg(first, 'report-configmap')!;
    for (let i = 0; i < 2; i++) await runOnce(false);
    expect((await actor.jobs(regNs, `retention-${policy}-`)).length).toBe(3);
    const last = await runOnce(false);
    await eventually(
      'three runs kept',
      () => actor.jobs(regNs, `retention-${policy}-`),
      (l) => l.filter((j) => !j.metadata?.deletionTimestamp).length === 3,
    );
    const reports = await eventually(
      'the oldest report deleted',
      () =>
        core.listNamespacedConfigMap({
          namespace: team,
          labelSelector: `berth.dev/retention-policy=${policy}`,
        }),
      (l) => !l.items.some((cm) => cm.metadata?.name === oldestReport),
    );
    expect(reports.items.length).toBe(3);
    const ok = await eventually(
      'Ready again',
      () => getPolicy(policy),
      (p) => ready(p)?.status === 'True',
    );
    expect(ok.status?.lastRun?.report).toBe(arg(last, 'report-configmap'));
  }, 180_000);

  it('starts a run on schedule', async () => {
    await createPolicy('nightly', { registryRef: { name: 'main', namespace: regNs }, schedule: '* * * * *' });
    const scheduled = await eventually(
      'nextRunTime',
      () => getPolicy('nightly'),
      (p) => !!p.status?.nextRunTime,
    );
    const due = Date.parse(scheduled.status!.nextRunTime!);
    expect(ready(scheduled)?.message).toMatch(/reports \(DryRun\)/);
    const job = await actor.waitForJob(regNs, 'retention-nightly-', [], 90_000);
    expect(Date.parse(String(job.metadata?.creationTimestamp))).toBeGreaterThanOrEqual(due - 1000);
    expect(arg(job, 'mode')).toBe('DryRun');
    const started = await eventually(
      'lastRun',
      () => getPolicy('nightly'),
      (p) => !!p.status?.lastRun?.startTime,
    );
    expect(Date.parse(started.status!.nextRunTime!)).toBeGreaterThan(due);
    await actor.finish(regNs, job.metadata!.name!, 0, 'done'); // without a report
    const failed = await eventually(
      'no report: Failed',
      () => getPolicy('nightly'),
      (p) => p.status?.lastRun?.result === 'Failed',
    );
    expect(ready(failed)?.reason).toBe('RunFailed');
  }, 150_000);

  it('reports a missing Registry', async () => {
    await createPolicy('lost', { registryRef: { name: 'nowhere', namespace: regNs }, schedule: '0 2 * * *' });
    const p = await eventually(
      'RegistryNotFound',
      () => getPolicy('lost'),
      (x) => ready(x)?.reason === 'RegistryNotFound',
    );
    expect(ready(p)).toMatchObject({ status: 'False' });
    expect(ready(p)?.message).toContain(`${regNs}/nowhere`);
  }, 60_000);

  it('refuses a policy of a Registry on emptyDir up front: Ready=False, a Warning, and no Job', async () => {
    await createRegistry(kc, regNs, 'scratch', { storage: { emptyDir: {} } });
    await createPolicy(
      'on-scratch',
      { registryRef: { name: 'scratch', namespace: regNs }, schedule: '0 2 * * *' },
      { 'berth.dev/run-requested-at': new Date().toISOString() },
    );
    const p = await eventually(
      'RetentionUnsupported',
      () => getPolicy('on-scratch'),
      (x) => ready(x)?.reason === 'RetentionUnsupported',
    );
    expect(ready(p)).toMatchObject({ status: 'False' });
    expect(ready(p)?.message).toMatch(/^spec\.storage\.emptyDir: .*PersistentVolumeClaim or S3/);
    await eventually(
      'a RetentionUnsupported warning',
      () => events.listNamespacedEvent({ namespace: team }),
      (l) =>
        l.items.some(
          (e) =>
            e.reason === 'RetentionUnsupported' && e.type === 'Warning' && e.regarding?.name === 'on-scratch',
        ),
    );
    await new Promise((r) => setTimeout(r, 6000)); // beyond a resync: the requested run never starts
    expect(await actor.jobs(regNs, 'retention-on-scratch-')).toEqual([]);
    expect((await getPolicy('on-scratch')).status?.lastRun).toBeUndefined();
  }, 60_000);

  it("places a run's Job as the Registry's own pods: its nodeSelector, priority class and tolerations", async () => {
    const scheduling = kc.makeApiClient(k8s.SchedulingV1Api);
    const priorityClass = `berth-test-${regNs}`;
    await scheduling.createPriorityClass({ body: { metadata: { name: priorityClass }, value: 1000 } });
    undoAfterFile(async () => {
      await scheduling.deletePriorityClass({ name: priorityClass }).catch(() => undefined);
    });
    const tolerations = [{ key: 'berth-test/dedicated', operator: 'Exists', effect: 'NoSchedule' }];
    // S3 storage: the run may go to any node of the nodeSelector (no claim pins it to the registry pod).
    await createRegistry(kc, regNs, 'placed', {
      storage: { s3: { bucket: 'images', region: 'eu-west-1', secretRef: { name: 'placed-s3' } } },
      nodeSelector: { 'berth-test/pool': 'registry' },
      priorityClassName: priorityClass,
      tolerations,
    });
    await createPolicy(
      'placed',
      { registryRef: { name: 'placed', namespace: regNs }, schedule: '0 2 * * *' },
      { 'berth.dev/run-requested-at': new Date().toISOString() },
    );
    const job = await actor.waitForJob(regNs, 'retention-placed-');
    const pod = job.spec!.template.spec!;
    expect(pod.nodeSelector).toEqual({ 'berth-test/pool': 'registry' });
    expect(pod.priorityClassName).toBe(priorityClass);
    expect(pod.tolerations).toEqual(tolerations);
    expect(pod.affinity).toBeUndefined();
    expect(arg(job, 's3-bucket')).toBe('images');
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Registry', name: 'placed' });
  }, 60_000);

  it("a Job that fails without a report: its container's termination message is in Ready", async () => {
    await createPolicy(
      'broken',
      { registryRef: { name: 'main', namespace: regNs }, schedule: '0 2 * * *' },
      { 'berth.dev/run-requested-at': new Date().toISOString() },
    );
    const job = await actor.waitForJob(regNs, 'retention-broken-');
    expect(job.spec?.template.spec?.containers[0]?.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    // As the container would: it exits 2 before writing any report, and says why.
    await actor.finish(
      regNs,
      job.metadata!.name!,
      2,
      'berth retention-run: --storage-root (or BERTH_RETENTION_STORAGE_ROOT) or --s3-bucket is required\n',
    );
    const failed = await eventually(
      'lastRun Failed',
      () => getPolicy('broken'),
      (p) => p.status?.lastRun?.result === 'Failed' && ready(p)?.reason === 'RunFailed',
    );
    const message = ready(failed)?.message ?? '';
    expect(message).toMatch(
      /^the last run failed: Job retention-broken-\S+ failed: berth retention-run: --storage-root .* or --s3-bucket is required$/,
    );
    expect(message).not.toMatch(/ConfigMap/); // it wrote none
    await eventually(
      'a RunFailed warning with the reason',
      () => events.listNamespacedEvent({ namespace: team }),
      (l) =>
        l.items.some(
          (e) =>
            e.reason === 'RunFailed' &&
            e.regarding?.name === 'broken' &&
            !!e.note?.includes('--s3-bucket is required'),
        ),
    );
    // Still there after further reconciles.
    await new Promise((r) => setTimeout(r, 6000));
    expect(ready(await getPolicy('broken'))?.message).toBe(message);
  }, 90_000);
});
