// No split brain, with berth's real controllers: two operator replicas with leader election, each
// with its own client certificate, on a control plane of this file's own (the API server is
// stopped and restarted here, and its audit log tells the replicas apart). While Registries fan
// out pull secrets into namespaces whose labels keep flipping, (a) the leader is frozen with
// SIGSTOP past its lease and resumed, and (b) the API server is stopped past the lease and started
// again while a retention run is in progress. The audit log must show that every write of a
// replica lies inside one of its own terms (from the Lease's writes), and everything converges.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { installCRDs } from '../harness/crds.ts';
import { createTestNamespace, eventually, statusOf } from '../harness/kube.ts';
import { createBoundVolume, createRegistry, manualClaim } from '../harness/objects.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { holdLabel, JobActor } from '../gc/act-as-job.ts';
import { analyseTerms, readAuditLog, type AuditEvent, type TermReport } from './audit-terms.ts';

const users = ['berth-replica-a', 'berth-replica-b'];
const leaseName = 'berth-split-brain';
const leaseDurationMs = 6000;
const teamCount = 24;
const fanOutRegistries = ['main-0', 'main-1'];
const group = { group: 'berth.dev', version: 'v1alpha1' };

let cp: ControlPlane;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let custom: k8s.CustomObjectsApi;
let coordination: k8s.CoordinationV1Api;
let batch: k8s.BatchV1Api;
let actor: JobActor;
let regNs: string;
let retNs: string;
const teams: string[] = [];
const replicas: Record<string, RunningOperator> = {};
const selectorValue = 'split-brain';

interface RegistryObject {
  metadata: k8s.V1ObjectMeta;
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string }[];
    pullSecrets?: { selectedNamespaces?: number; readyNamespaces?: number };
  };
}

const lease = () => coordination.readNamespacedLease({ name: leaseName, namespace: regNs });
const holder = async () => (await lease().catch(() => undefined))?.spec?.holderIdentity ?? '';

/** The replica's identity, from its "Started operator" log line. */
const identities: Record<string, string> = {};
function identityOf(user: string): string {
  if (identities[user]) return identities[user];
  const file = replicas[user]?.process.logFile;
  for (const line of file ? readFileSync(file, 'utf8').split('\n') : []) {
    try {
      const entry = JSON.parse(line) as { message?: string; identity?: string };
      if (entry.message === 'Started operator' && entry.identity) return (identities[user] = entry.identity);
    } catch {
      // not a log line of the operator's
    }
  }
  throw new Error(`no identity in the log of ${user}`);
}

/** The replica whose identity holds the Lease. */
async function leaderUser(): Promise<string | undefined> {
  const h = await holder();
  return users.find((u) => identityOf(u) === h);
}

const label = (namespace: string, selected: boolean) =>
  core.patchNamespace(
    {
      name: namespace,
      body: { metadata: { labels: { 'berth.dev/pull': selected ? selectorValue : null } } },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );

/** Flips every team namespace in and out of the selection until stopped: fan-out never rests. */
function churn(): { stop(): Promise<void> } {
  let running = true;
  let selected = false;
  const loop = (async () => {
    while (running) {
      selected = !selected;
      // (refused while the API server is down: the churn goes on once it is back)
      await Promise.all(teams.map((t) => label(t, selected).catch(() => undefined)));
      await new Promise((r) => setTimeout(r, 700));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

const finalSelection = (i: number) => i % 2 === 0;

async function settle(): Promise<void> {
  await Promise.all(teams.map((t, i) => label(t, finalSelection(i))));
}

const readSecret = (namespace: string, name: string) =>
  core.readNamespacedSecret({ name, namespace }).catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });

/** Converged: each fan-out Registry Ready with 12 of 12 selected namespaces served, Secrets and entries exactly there. */
async function expectConverged(): Promise<void> {
  const selected = teams.filter((_, i) => finalSelection(i)).length;
  for (const name of fanOutRegistries) {
    await eventually(
      `Registry ${name} Ready with ${selected}/${selected} pull-secret namespaces`,
      () =>
        custom.getNamespacedCustomObject({
          ...group,
          plural: 'registries',
          namespace: regNs,
          name,
        }) as Promise<RegistryObject>,
      (r) =>
        r.status?.observedGeneration === r.metadata.generation &&
        r.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' &&
        r.status?.conditions?.find((c) => c.type === 'PullSecretsReady')?.status === 'True' &&
        r.status?.pullSecrets?.selectedNamespaces === selected &&
        r.status?.pullSecrets?.readyNamespaces === selected,
      120_000,
    );
  }
  await eventually(
    'pull Secrets and ServiceAccount entries exactly in the selected namespaces',
    async () =>
      Promise.all(
        teams.flatMap((t) =>
          fanOutRegistries.map(async (reg) => {
            const secret = await readSecret(t, `${reg}-pull`);
            const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: t });
            const entries = (sa.imagePullSecrets ?? []).filter((r) => r.name === `${reg}-pull`).length;
            return { t, reg, secret: secret !== undefined, entries };
          }),
        ),
      ),
    (rows) =>
      rows.every((r) => {
        const want = finalSelection(teams.indexOf(r.t));
        return r.secret === want && r.entries === (want ? 1 : 0);
      }),
    120_000,
  );
}

function termReport(): TermReport {
  return analyseTerms(readAuditLog(cp.auditLog ?? ''), { namespace: regNs, name: leaseName }, users);
}

function describeReport(r: TermReport): string {
  const fmt = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : '…');
  return [
    `terms: ${r.terms.map((t) => `${t.user} ${fmt(t.start)}–${fmt(t.end)}`).join(', ')}`,
    `writes: ${JSON.stringify(r.writesByUser)}; objects written by both replicas: ${r.sharedObjects.length}`,
    ...r.violations
      .slice(0, 20)
      .map(
        (w) => `outside its terms: ${w.user} ${w.verb} ${w.object} ${fmt(w.received)}–${fmt(w.completed)}`,
      ),
  ].join('\n');
}

beforeAll(async () => {
  cp = await startControlPlane({ nodes: 1, auditUsers: users });
  await installCRDs(cp.kubeconfig);
  kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  batch = kc.makeApiClient(k8s.BatchV1Api);
  actor = new JobActor(kc);
  await actor.holdJobPods();
  regNs = await createTestNamespace(kc, 'sb-reg');
  retNs = await createTestNamespace(kc, 'sb-ret', holdLabel);
  for (let i = 0; i < teamCount; i++) teams.push(await createTestNamespace(kc, `sb-team-${i}`));
  await Promise.all(
    teams.map((namespace) =>
      eventually(
        `the default ServiceAccount in ${namespace}`,
        () => core.readNamespacedServiceAccount({ name: 'default', namespace }).catch(() => undefined),
        (s) => s !== undefined,
      ),
    ),
  );
  await createBoundVolume(kc, retNs);
  for (const user of users) {
    replicas[user] = await startOperator({
      kubeconfig: await cp.userKubeconfig(user, ['system:masters']),
      args: [
        '--leader-elect=true',
        `--leader-election-namespace=${regNs}`,
        `--leader-election-id=${leaseName}`,
        `--leader-election-lease-duration=${leaseDurationMs}ms`,
        '--leader-election-renew-deadline=4s',
        '--leader-election-retry-period=1s',
        `--watch-namespaces=${[regNs, retNs, ...teams].join(',')}`,
        '--resync-period=5s',
        '--credential-propagation=1s',
      ],
      env: { BERTH_IMAGE: 'ghcr.io/berth-dev/berth:split-brain-test' },
    });
  }
  for (const name of fanOutRegistries)
    await createRegistry(kc, regNs, name, {
      storage: { emptyDir: {} },
      tls: { mode: 'SelfSigned', dnsNames: ['localhost'] },
      pullSecrets: {
        namespaceSelector: { matchLabels: { 'berth.dev/pull': selectorValue } },
        secretName: `${name}-pull`,
        serviceAccounts: { names: ['default'] },
        rotation: { interval: '24h', gracePeriod: '1h' },
      },
    });
  await createRegistry(kc, retNs, 'main', { storage: manualClaim() });
  await settle();
  await expectConverged();
}, 300_000);

afterAll(async () => {
  for (const op of Object.values(replicas)) {
    if (op.process.child.pid) process.kill(op.process.child.pid, 'SIGCONT');
    await op.stop();
  }
  await cp?.stop({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' });
}, 60_000);

describe('no split brain between two operator replicas', () => {
  it('a leader frozen with SIGSTOP past its lease writes nothing once resumed; the other takes over and everything converges', async () => {
    const writesBefore = termReport().writes.length;
    const load = churn();
    try {
      await new Promise((r) => setTimeout(r, 3000));
      const frozen = await leaderUser();
      expect(frozen).toBeDefined();
      const other = users.find((u) => u !== frozen)!;
      const pid = replicas[frozen!]!.process.child.pid!;
      process.kill(pid, 'SIGSTOP');
      try {
        await eventually(
          'the other replica to take the Lease',
          holder,
          (h) => h === identityOf(other),
          leaseDurationMs * 4,
        );
        await new Promise((r) => setTimeout(r, 3000)); // the new leader writes what the churn asks for
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await new Promise((r) => setTimeout(r, 6000)); // the resumed replica's work would write now
    } finally {
      await load.stop();
    }
    await settle();
    await expectConverged();
    const report = termReport();
    console.log(`[split brain, SIGSTOP] ${describeReport(report)}`);
    expect(report.violations).toEqual([]);
    expect(report.terms.length).toBeGreaterThanOrEqual(2);
    expect(report.writes.length).toBeGreaterThan(writesBefore);
    expect(report.sharedObjects.length).toBeGreaterThan(0);
    for (const user of users) expect(report.writesByUser[user]).toBeGreaterThan(0);
  }, 240_000);

  it('an API server stopped past the lease and started again, during fan-out and a retention run: one run, no overlapping writes, convergence', async () => {
    await custom.createNamespacedCustomObject({
      ...group,
      plural: 'retentionpolicies',
      namespace: retNs,
      body: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'RetentionPolicy',
        metadata: { name: 'ci', annotations: { 'berth.dev/run-requested-at': new Date().toISOString() } },
        spec: {
          registryRef: { name: 'main', namespace: retNs },
          repositories: { include: ['**'] },
          schedule: '0 2 * * *',
          rules: [{ name: 'ci', tags: { include: ['pr-*'] }, keep: { mostRecent: 2 } }],
        },
      },
    });
    const job = await actor.waitForJob(retNs, 'retention-ci-', [], 120_000);
    const termsBefore = termReport().terms.length;
    const load = churn();
    try {
      await new Promise((r) => setTimeout(r, 2000));
      await cp.stopApiServer();
      await new Promise((r) => setTimeout(r, leaseDurationMs * 2));
      await cp.startApiServer();
      await eventually('a leader again', holder, (h) => h !== '', 60_000);
      await new Promise((r) => setTimeout(r, 6000));
    } finally {
      await load.stop();
    }
    await settle();
    await expectConverged();
    const jobs = await batch.listNamespacedJob({
      namespace: retNs,
      labelSelector: 'berth.dev/retention-policy=ci',
    });
    expect(jobs.items.map((j) => j.metadata?.name)).toEqual([job.metadata?.name]);
    const policy = (await custom.getNamespacedCustomObject({
      ...group,
      plural: 'retentionpolicies',
      namespace: retNs,
      name: 'ci',
    })) as { status?: { lastRun?: { report?: string } } };
    expect(policy.status?.lastRun?.report).toBe(job.metadata?.annotations?.['berth.dev/report-configmap']);
    const report = termReport();
    console.log(`[split brain, API server restart] ${describeReport(report)}`);
    expect(report.violations).toEqual([]);
    expect(report.terms.length).toBeGreaterThanOrEqual(termsBefore);
  }, 300_000);
});

describe('the audit-log term check', () => {
  const at = (s: number) => new Date(Date.UTC(2030, 0, 1) + s * 1000).toISOString().replace('Z', '123Z'); // microseconds, as the API server writes
  const ev = (
    user: string,
    s: number,
    e: number,
    resource: string,
    name: string,
    code = 200,
  ): AuditEvent => ({
    stage: 'ResponseComplete',
    verb: resource === 'leases' ? 'update' : 'patch',
    user: { username: user },
    objectRef: { resource, namespace: 'ns', name },
    responseStatus: { code },
    requestReceivedTimestamp: at(s),
    stageTimestamp: at(e),
  });
  const lease = { namespace: 'ns', name: 'l' };
  it('accepts writes inside their writer’s terms and flags one that ends after the next term began', () => {
    const events = [
      ev('a', 0, 0, 'leases', 'l'),
      ev('a', 1, 2, 'secrets', 's'),
      ev('a', 3, 3, 'leases', 'l'),
      ev('b', 9, 9, 'leases', 'l', 409), // refused: not a term
      ev('b', 10, 10, 'leases', 'l'),
      ev('b', 11, 11, 'secrets', 's'),
      ev('a', 9, 10.5, 'secrets', 't'), // a's write still running when b's term began
      ev('a', 12, 12, 'secrets', 'u', 409), // refused by the server: not a write
    ];
    const r = analyseTerms(events, lease, ['a', 'b']);
    expect(r.terms.map((t) => t.user)).toEqual(['a', 'b']);
    expect(r.violations.map((w) => `${w.user} ${w.object}`)).toEqual(['a core/secrets/ns/t']);
    expect(r.sharedObjects).toEqual(['core/secrets/ns/s']);
    expect(analyseTerms(events.slice(0, 6), lease, ['a', 'b']).violations).toEqual([]);
  });
});
