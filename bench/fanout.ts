// bench/fanout: pull-secret fan-out on the local control plane. For N namespaces (each with two
// ServiceAccounts) it measures, in the same run:
//  - berth: the time from creating a Registry with pullSecrets until every namespace is ready,
//    the API requests berth sent (counted by the API server's audit log, not by berth), the writes
//    it sent in a quiet period after convergence (must be zero), and the operator's peak memory;
//  - the floor: a plain client creating the same Secrets and patching the same ServiceAccounts with
//    the same concurrency (berth's default --concurrency is per controller; the floor gets 8).
// Sizes: BENCH_FANOUT_SIZES (default "100,1000"), quiet period BENCH_FANOUT_QUIET_S (default 20).
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane } from '../test/harness/controlplane.ts';
import { installCRDs } from '../test/harness/crds.ts';
import { startOperator } from '../test/harness/operator.ts';
import { dockerConfigJson } from '../src/util/dockerconfig.ts';

const sizes = (process.env.BENCH_FANOUT_SIZES ?? '100,1000').split(',').map(Number);
const quietSeconds = Number(process.env.BENCH_FANOUT_QUIET_S ?? 20);
const floorConcurrency = 8;
const writeVerbs = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

interface AuditEvent {
  auditID: string;
  verb: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  user: { username: string };
  stage: string;
  requestReceivedTimestamp: string;
}

function audit(
  file: string,
  user: string,
  from: number,
  to = Infinity,
): { requests: number; writes: number; written: string[] } {
  const seen = new Map<string, AuditEvent>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEvent;
    const t = Date.parse(e.requestReceivedTimestamp);
    if (e.user.username !== user || t < from || t > to) continue;
    seen.set(e.auditID, e);
  }
  const events = [...seen.values()];
  const writes = events.filter((e) => writeVerbs.has(e.verb));
  const written = writes.map(
    (e) =>
      `${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.namespace ?? ''}/${e.objectRef?.name ?? ''}`,
  );
  return { requests: events.length, writes: writes.length, written };
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runOnce(n: number) {
  const cp = await startControlPlane({ nodes: 1, auditUsers: ['berth-operator', 'berth-floor'] });
  try {
    await installCRDs(cp.kubeconfig);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const names = Array.from({ length: n }, (_, i) => `fan-${i}`);
    await core.createNamespace({ body: { metadata: { name: 'registry-system' } } });
    await pool(names, 16, async (name) => {
      await core.createNamespace({ body: { metadata: { name, labels: { 'berth.dev/pull': 'bench' } } } });
      await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'builder' } } });
    });
    await waitUntil(
      'every namespace to have its default ServiceAccount',
      async () =>
        (await core.listServiceAccountForAllNamespaces({ labelSelector: '' })).items.filter(
          (s) => s.metadata?.name === 'default' && s.metadata.namespace?.startsWith('fan-'),
        ).length === n,
      300_000,
    );

    // The floor: the same Secrets and ServiceAccount patches from a plain client.
    const floorKc = new k8s.KubeConfig();
    floorKc.loadFromFile(await cp.userKubeconfig('berth-floor', ['system:masters']));
    const floorCore = floorKc.makeApiClient(k8s.CoreV1Api);
    const config = dockerConfigJson(['main.registry-system.svc:443'], 'pull.x', 'x'.repeat(43));
    const floorStart = Date.now();
    await pool(names, floorConcurrency, async (namespace) => {
      await floorCore.createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: 'floor-pull' },
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
        },
      });
      for (const sa of ['default', 'builder'])
        await floorCore.patchNamespacedServiceAccount(
          { name: sa, namespace, body: { imagePullSecrets: [{ name: 'floor-pull' }] } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
    });
    const floorSeconds = (Date.now() - floorStart) / 1000;
    const floor = audit(cp.auditLog ?? '', 'berth-floor', floorStart);

    // berth
    const operator = await startOperator({
      kubeconfig: await cp.userKubeconfig('berth-operator', ['system:masters']),
      args: ['--log-level=warn'],
      env: { BERTH_LOG_LEVEL: 'warn' },
    });
    try {
      const start = Date.now();
      await custom.createNamespacedCustomObject({
        group: 'berth.dev',
        version: 'v1alpha1',
        plural: 'registries',
        namespace: 'registry-system',
        body: {
          apiVersion: 'berth.dev/v1alpha1',
          kind: 'Registry',
          metadata: { name: 'main' },
          spec: {
            storage: { emptyDir: {} },
            pullSecrets: {
              namespaceSelector: { matchLabels: { 'berth.dev/pull': 'bench' } },
              secretName: 'main-pull',
              serviceAccounts: { names: ['default', 'builder'] },
            },
          },
        },
      });
      await waitUntil(
        `${n} ready namespaces`,
        async () => {
          const r = (await custom.getNamespacedCustomObject({
            group: 'berth.dev',
            version: 'v1alpha1',
            plural: 'registries',
            namespace: 'registry-system',
            name: 'main',
          })) as { status?: { pullSecrets?: { readyNamespaces?: number } } };
          return r.status?.pullSecrets?.readyNamespaces === n;
        },
        900_000,
      );
      const berthSeconds = (Date.now() - start) / 1000;
      // let the follow-up work (the credential store, status) settle before the quiet period
      await new Promise((r) => setTimeout(r, 5000));
      const converged = audit(cp.auditLog ?? '', 'berth-operator', start);
      const quietStart = Date.now();
      await new Promise((r) => setTimeout(r, quietSeconds * 1000));
      const quiet = audit(cp.auditLog ?? '', 'berth-operator', quietStart);
      const status = readFileSync(`/proc/${operator.process.child.pid}/status`, 'utf8');
      const peakKiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return { n, berthSeconds, floorSeconds, converged, floor, quiet, peakMiB: peakKiB / 1024 };
    } finally {
      await operator.stop();
    }
  } finally {
    await cp.stop();
  }
}

console.log(
  `pull-secret fan-out: each namespace gets a Secret and 2 ServiceAccount entries; quiet period ${quietSeconds}s; floor concurrency ${floorConcurrency}`,
);
console.log(
  'namespaces  berth_s  floor_s  ratio  berth_requests  berth_writes  floor_requests  quiet_writes  quiet_requests  operator_peak_MiB',
);
for (const n of sizes) {
  const r = await runOnce(n);
  console.log(
    [
      String(r.n).padStart(10),
      r.berthSeconds.toFixed(1).padStart(8),
      r.floorSeconds.toFixed(1).padStart(8),
      (r.berthSeconds / r.floorSeconds).toFixed(2).padStart(6),
      String(r.converged.requests).padStart(15),
      String(r.converged.writes).padStart(13),
      String(r.floor.requests).padStart(15),
      String(r.quiet.writes).padStart(13),
      String(r.quiet.requests).padStart(15),
      r.peakMiB.toFixed(0).padStart(18),
    ].join(' '),
  );
  if (r.quiet.writes !== 0) {
    console.log(`  writes in the quiet period: ${r.quiet.written.join('; ')}`);
    process.exitCode = 1; // a steady cluster must see zero writes from berth
  }
}
