// bench/fanout: pull-secret fan-out on the local control plane. For N namespaces (each with two
// ServiceAccounts) it measures, in the same run:
//  - berth: the time from creating a Registry with pullSecrets until every namespace is ready,
//    the API requests berth sent (counted by the API server's audit log, not by berth), the writes
//    it sent in a quiet period after convergence (must be zero), and the operator's memory (peak
//    and after convergence, from /proc);
//  - the cost of one event: a ServiceAccount created in one namespace after convergence, with the
//    requests berth sent for it (audit log) and the namespaces it looked at (its own metric);
//  - the floor: a plain client creating the same Secrets and patching the same ServiceAccounts with
//    the same concurrency (8, as berth's namespaceConcurrency).
// And once, on the empty cluster: the operator's memory at rest.
//
// The operator runs as the image runs it (bench/lib/operator-image.ts): compiled dist/ with the
// Dockerfile's entry and the Helm chart's NODE_OPTIONS. At rest it is also measured from src/
// (type stripping, as the test suites run it) with the same options.
//
// The namespaces are built once, growing from one size to the next (1,000, then 4,000 more, ...),
// because creating them is most of the API server's time on a small machine. Each size gets a
// fresh operator (its memory is that size's), a fresh Registry and fresh Secret names; what the
// previous size left (its Registry, its Secrets) is deleted before, so the operator holds only
// this size's objects. ServiceAccounts keep the previous sizes' entries (others' entries, to berth).
// Sizes: BENCH_FANOUT_SIZES (default "1000,5000,10000"), quiet period BENCH_FANOUT_QUIET_S (default 10).
import { openSync, readSync, statSync, closeSync, readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane } from '../test/harness/controlplane.ts';
import { installCRDs } from '../test/harness/crds.ts';
import type { RunningOperator } from '../test/harness/operator.ts';
import { dockerConfigJson } from '../src/util/dockerconfig.ts';
import { printTable, writeResults, type Row } from './lib/results.ts';
import { buildDist, chartNodeOptions, startOperatorAs, type OperatorEntry } from './lib/operator-image.ts';

const sizes = (process.env.BENCH_FANOUT_SIZES ?? '1000,5000,10000')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const quietSeconds = Number(process.env.BENCH_FANOUT_QUIET_S ?? 10);
const floorConcurrency = 8;
const setupConcurrency = 16;
const writeVerbs = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const operatorUser = 'berth-operator';
const floorUser = 'berth-floor';
const registries = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const regNs = 'registry-system';

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
  requestReceivedTimestamp: string;
}

/** The audit log, read from where the last window began (it grows to hundreds of MB at 10,000). */
class AuditLog {
  private readonly file: string;
  constructor(file: string) {
    this.file = file;
  }
  mark(): number {
    return statSync(this.file).size;
  }
  /** berth's (or the floor's) requests received from byte `offset`, between `from` and `to`. */
  window(offset: number, user: string, from: number, to = Infinity) {
    const fd = openSync(this.file, 'r');
    const seen = new Map<string, AuditEvent>();
    try {
      const chunk = Buffer.alloc(8 << 20);
      let pos = offset;
      let rest = '';
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, pos);
        if (n === 0) break;
        pos += n;
        const lines = (rest + chunk.toString('utf8', 0, n)).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.includes(`"username":"${user}"`)) continue;
          const e = JSON.parse(line) as AuditEvent;
          const t = Date.parse(e.requestReceivedTimestamp);
          if (e.user.username !== user || t < from || t > to) continue;
          seen.set(e.auditID, e);
        }
      }
    } finally {
      closeSync(fd);
    }
    const events = [...seen.values()];
    const describe = (e: AuditEvent) =>
      `${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.namespace ?? ''}/${e.objectRef?.name ?? ''}`;
    const writes = events.filter((e) => writeVerbs.has(e.verb));
    const reads = events.filter((e) => !writeVerbs.has(e.verb) && e.verb !== 'watch');
    return {
      requests: events.length,
      writes: writes.length,
      reads: reads.length,
      written: writes.map(describe),
      read: reads.map(describe),
    };
  }
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memoryMiB(operator: RunningOperator): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${operator.process.child.pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

async function namespacesLookedAt(operator: RunningOperator): Promise<number> {
  const text = await (await fetch(operator.metricsUrl)).text();
  return Number(/^berth_pullsecret_namespaces_reconciled_total (\d+)/m.exec(text)?.[1] ?? 0);
}

/** Reconciles of `controller` so far, every result (berth's berth_reconcile_total). */
async function reconciles(operator: RunningOperator, controller: string): Promise<number> {
  const text = await (await fetch(operator.metricsUrl)).text();
  let sum = 0;
  for (const m of text.matchAll(/^berth_reconcile_total\{([^}]*)\} (\d+)/gm))
    if ((m[1] ?? '').includes(`controller="${controller}"`)) sum += Number(m[2]);
  return sum;
}

const cp = await startControlPlane({ nodes: 1, auditUsers: [operatorUser, floorUser] });
const rows: Row[] = [];
const events: Row[] = [];
const figures: Record<string, unknown>[] = [];
const atRest: Partial<Record<OperatorEntry['entry'], { rss: number; peak: number }>> = {};
const imageOptions = chartNodeOptions();
const asImage: OperatorEntry = { entry: 'dist', nodeOptions: imageOptions.effective };
console.log(
  `operator: node --enable-source-maps dist/main.js (the image's entry, compiled now), NODE_OPTIONS="${asImage.nodeOptions}"` +
    ` (chart: "${imageOptions.chart}", memory limit ${imageOptions.limitMiB ?? 'none'} MiB)`,
);
buildDist();
try {
  await installCRDs(cp.kubeconfig);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const audit = new AuditLog(cp.auditLog ?? '');
  const operatorKubeconfig = await cp.userKubeconfig(operatorUser, ['system:masters']);
  const floorKc = new k8s.KubeConfig();
  floorKc.loadFromFile(await cp.userKubeconfig(floorUser, ['system:masters']));
  const floorCore = floorKc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: regNs } } });

  // At rest: the operator on a cluster with nothing to watch yet, as the image runs it and from src/.
  for (const entry of ['dist', 'src'] as const) {
    const operator = await startOperatorAs({ ...asImage, entry }, operatorKubeconfig, ['--log-level=warn']);
    await sleep(3000);
    atRest[entry] = memoryMiB(operator);
    await operator.stop();
  }

  let built = 0;
  let previous: number | undefined;
  for (const n of sizes) {
    // grow the namespaces to n
    const fresh = Array.from({ length: n - built }, (_, i) => `fan-${built + i}`);
    const setupStart = Date.now();
    await pool(fresh, setupConcurrency, async (name) => {
      await core.createNamespace({ body: { metadata: { name, labels: { 'berth.dev/pull': 'bench' } } } });
      await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'builder' } } });
    });
    await waitUntil(
      `every namespace to have its default ServiceAccount`,
      async () => {
        let count = 0;
        let cont: string | undefined;
        do {
          const page = await core.listServiceAccountForAllNamespaces({ limit: 5000, _continue: cont });
          count += page.items.filter(
            (s) => s.metadata?.name === 'default' && s.metadata.namespace?.startsWith('fan-'),
          ).length;
          cont = page.metadata?._continue || undefined;
        } while (cont);
        return count === n;
      },
      900_000,
      2000,
    );
    built = n;
    const names = Array.from({ length: n }, (_, i) => `fan-${i}`);
    const setupSeconds = (Date.now() - setupStart) / 1000;

    // what the previous size left: its Registry (finalizer released by hand, its operator is
    // gone) and its Secrets
    if (previous !== undefined) {
      const old = `main-${previous}`;
      await custom
        .patchNamespacedCustomObject(
          { ...registries, namespace: regNs, name: old, body: { metadata: { finalizers: null } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )
        .catch(() => undefined);
      await custom
        .deleteNamespacedCustomObject({ ...registries, namespace: regNs, name: old })
        .catch(() => undefined);
      await pool(names.slice(0, previous), setupConcurrency, (namespace) =>
        core.deleteCollectionNamespacedSecret({
          namespace,
          labelSelector: `berth.dev/registry=${old}`,
        }),
      );
      await core.deleteCollectionNamespacedSecret({ namespace: regNs }).catch(() => undefined);
    }

    // The floor: the same Secrets and ServiceAccount patches from a plain client.
    const config = dockerConfigJson(['main.registry-system.svc:443'], 'pull.x', 'x'.repeat(43));
    const floorMark = audit.mark();
    const floorStart = Date.now();
    await pool(names, floorConcurrency, async (namespace) => {
      await floorCore.createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: `floor-${n}` },
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
        },
      });
      for (const sa of ['default', 'builder'])
        await floorCore.patchNamespacedServiceAccount(
          { name: sa, namespace, body: { imagePullSecrets: [{ name: `floor-${n}` }] } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
    });
    const floorSeconds = (Date.now() - floorStart) / 1000;
    const floor = audit.window(floorMark, floorUser, floorStart);

    // berth
    const operator = await startOperatorAs(asImage, operatorKubeconfig, ['--log-level=warn']);
    try {
      const registry = `main-${n}`;
      const startMark = audit.mark();
      const start = Date.now();
      await custom.createNamespacedCustomObject({
        ...registries,
        namespace: regNs,
        body: {
          apiVersion: 'berth.dev/v1alpha1',
          kind: 'Registry',
          metadata: { name: registry },
          spec: {
            storage: { emptyDir: {} },
            pullSecrets: {
              namespaceSelector: { matchLabels: { 'berth.dev/pull': 'bench' } },
              secretName: `pull-${n}`,
              // `late` exists nowhere yet: the one-event figure creates it in one namespace
              serviceAccounts: { names: ['default', 'builder', 'late'] },
            },
          },
        },
      });
      await waitUntil(
        `${n} ready namespaces`,
        async () => {
          const r = (await custom.getNamespacedCustomObject({
            ...registries,
            namespace: regNs,
            name: registry,
          })) as { status?: { pullSecrets?: { readyNamespaces?: number } } };
          return r.status?.pullSecrets?.readyNamespaces === n;
        },
        900_000,
      );
      const berthSeconds = (Date.now() - start) / 1000;
      // let the follow-up work (the credential store, status) settle before the quiet period
      await sleep(5000);
      const converged = audit.window(startMark, operatorUser, start);
      const quietMark = audit.mark();
      const quietStart = Date.now();
      await sleep(quietSeconds * 1000);
      const quiet = audit.window(quietMark, operatorUser, quietStart);
      const memory = memoryMiB(operator);
      const registryReconciles = await reconciles(operator, 'registry');
      const gcReconciles = await reconciles(operator, 'garbage-collection');

      // one event: a ServiceAccount created in one namespace
      const lookedBefore = await namespacesLookedAt(operator);
      const eventMark = audit.mark();
      const eventStart = Date.now();
      await core.createNamespacedServiceAccount({ namespace: 'fan-7', body: { metadata: { name: 'late' } } });
      await waitUntil(
        'the new ServiceAccount to get berth’s entry',
        async () =>
          (
            (await core.readNamespacedServiceAccount({ name: 'late', namespace: 'fan-7' }))
              .imagePullSecrets ?? []
          ).some((e) => e.name === `pull-${n}`),
        60_000,
      );
      await sleep(3000);
      const event = audit.window(eventMark, operatorUser, eventStart);
      const looked = (await namespacesLookedAt(operator)) - lookedBefore;
      await core.deleteNamespacedServiceAccount({ name: 'late', namespace: 'fan-7' });

      rows.push({
        namespaces: n,
        berth_s: Number(berthSeconds.toFixed(1)),
        floor_s: Number(floorSeconds.toFixed(1)),
        ratio: Number((berthSeconds / floorSeconds).toFixed(2)),
        berth_requests: converged.requests,
        berth_writes: converged.writes,
        floor_requests: floor.requests,
        quiet_writes: quiet.writes,
        quiet_requests: quiet.requests,
        peak_MiB: Math.round(memory.peak),
        rss_MiB: Math.round(memory.rss),
        registry_reconciles: registryReconciles,
        gc_reconciles: gcReconciles,
        setup_s: Number(setupSeconds.toFixed(1)),
      });
      events.push({
        namespaces: n,
        event: 'ServiceAccount created in 1 namespace',
        writes: event.writes,
        reads: event.reads,
        namespaces_looked_at: looked,
      });
      figures.push({
        namespaces: n,
        berthSeconds,
        floorSeconds,
        converged: { requests: converged.requests, writes: converged.writes, reads: converged.reads },
        floor: { requests: floor.requests, writes: floor.writes },
        quiet: {
          seconds: quietSeconds,
          requests: quiet.requests,
          writes: quiet.writes,
          written: quiet.written,
        },
        memoryMiB: memory,
        reconciles: { registry: registryReconciles, garbageCollection: gcReconciles },
        oneServiceAccount: { writes: event.written, reads: event.read, namespacesLookedAt: looked },
        setupSeconds,
      });
      if (quiet.writes !== 0) {
        console.log(`  writes in the quiet period at ${n}: ${quiet.written.join('; ')}`);
        process.exitCode = 1; // a steady cluster must see zero writes from berth
      }
    } finally {
      await operator.stop();
    }
    previous = n;
  }
} finally {
  await cp.stop();
}

console.log(
  `pull-secret fan-out: each namespace gets a Secret and 2 ServiceAccount entries; quiet period ${quietSeconds}s; floor concurrency ${floorConcurrency}`,
);
printTable('fan-out (time, requests by the audit log, operator memory from /proc)', rows);
printTable('one event after convergence (audit log; namespaces looked at: berth’s metric)', events);
if (rows.length > 1) {
  const [first, last] = [rows[0]!, rows[rows.length - 1]!];
  const perNs =
    ((Number(last.peak_MiB) - Number(first.peak_MiB)) * 1024) /
    (Number(last.namespaces) - Number(first.namespaces));
  console.log(
    `\npeak RSS grows by about ${perNs.toFixed(1)} KiB per namespace (${first.namespaces} → ${last.namespaces})`,
  );
}
for (const [entry, m] of Object.entries(atRest))
  console.log(
    `operator at rest (nothing to watch), from ${entry === 'dist' ? 'dist/ (as the image runs it)' : 'src/ (type stripping)'}: ` +
      `${m.rss.toFixed(0)} MiB RSS, peak ${m.peak.toFixed(0)} MiB`,
  );
writeResults('fanout', {
  quietSeconds,
  floorConcurrency,
  operator: {
    entry: 'dist/main.js --enable-source-maps',
    nodeOptions: asImage.nodeOptions,
    chart: imageOptions,
  },
  atRestMiB: atRest,
  sizes: figures,
});
