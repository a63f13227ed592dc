// Benchmark: the retention engine. `node bench/run.ts retention`.
// 1. Plan: BENCH_RETENTION_REPOS (1000) repositories × BENCH_RETENTION_TAGS (100) tags (100,000
//    tags: a third of the digests carry a second tag, every tenth repository has a signature per
//    image), with a release rule and a CI rule keeping the 10 most recent. Each figure comes from
//    a child process of its own that loads the retention run's modules (src/retention/run/command.ts,
//    so its libraries count), holds the whole snapshot as the run does, plans and encodes the
//    report; its peak RSS is the process's maxRSS. Two children: the run as it is now (each
//    repository's snapshot released once planned, the report serialised one entry at a time), and
//    the baseline in the same run: the plan over the whole snapshot, then the report held as one
//    JSON text and again as one text per entry, as the run did before.
// 2. Deletions/s against the real registry (bin/registry, Distribution, on loopback: plain HTTP, no
//    auth, filesystem storage), BENCH_RETENTION_DELETIONS (500) distinct manifests per row, each in
//    a repository of its own with the same number of tags: berth's executeDeletions (re-resolve
//    every tag, check, DELETE by digest) one deletion at a time (the run before concurrency) and
//    BENCH_RETENTION_CONCURRENCY (8) per repository; and a plain client sending only the DELETEs,
//    one at a time and with the same concurrency: the registry's raw rate.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { executeDeletions, resolveTagsByHead } from '../src/retention/run/execute.ts';
import type { Deletion, PlannerPolicy, RepositoryState } from '../src/retention/run/model.ts';
import { RegistryClient } from '../src/distribution/client.ts';
import { storageTagResolver } from '../src/retention/run/snapshot.ts';
import { FilesystemPushTimes } from '../src/retention/run/storage.ts';
import { mapLimit } from '../src/util/limit.ts';
import { RegistryClient as Crane, startRegistry } from '../test/harness/registry.ts';
import { printTable, writeResults, type Row } from './lib/results.ts';

const repos = Number(process.env.BENCH_RETENTION_REPOS ?? 1000);
const tagsPerRepo = Number(process.env.BENCH_RETENTION_TAGS ?? 100);
const deletions = Number(process.env.BENCH_RETENTION_DELETIONS ?? 500);
const concurrency = Number(process.env.BENCH_RETENTION_CONCURRENCY ?? 8);
const H = 3_600_000;
const now = Date.parse('2025-06-01T00:00:00Z');
const hex = (n: number) => n.toString(16).padStart(64, '0');
const MiB = 2 ** 20;

/** `tagsPerRepo` tags per repository, as a snapshot reads them. */
function synthetic(): RepositoryState[] {
  const out: RepositoryState[] = [];
  let n = 1;
  for (let r = 0; r < repos; r++) {
    const state: RepositoryState = { name: `team-${r % 50}/app-${r}`, tags: [], manifests: [] };
    const signed = r % 10 === 0;
    for (let t = 0; state.tags.length < tagsPerRepo; t++) {
      const digest = `sha256:${hex(n++)}`;
      const pushedAt = now - (t + 1) * 7 * H;
      const manifest = {
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        children: [],
        pushedAt,
      };
      state.manifests.push(manifest);
      state.tags.push({ tag: t % 10 === 0 ? `v1.${t}.0` : `main-${t}`, digest, pushedAt });
      if (t % 3 === 0 && state.tags.length < tagsPerRepo)
        state.tags.push({ tag: `pr-${t}`, digest, pushedAt });
      if (signed && state.tags.length < tagsPerRepo) {
        const sig = `sha256:${hex(n++)}`;
        state.manifests.push({ ...manifest, digest: sig });
        state.tags.push({ tag: `${digest.replace(':', '-')}.sig`, digest: sig, pushedAt });
      }
    }
    out.push(state);
  }
  return out;
}

const policy: PlannerPolicy = {
  rules: [
    { name: 'releases', include: ['v*.*.*'], exclude: [], keep: { all: true } },
    {
      name: 'ci',
      include: ['main-*', 'pr-*'],
      exclude: [],
      keep: { mostRecent: 10, pushedWithinMs: 72 * H },
    },
  ],
  untagged: { delete: true, olderThanMs: 24 * H },
  protect: { inUse: true, minAgeMs: 2 * H },
};

interface PlanFigures {
  way: string;
  tags: number;
  entries: number;
  wouldDelete: number;
  planMs: number;
  reportMs: number;
  reportParts: number;
  reportGzBytes: number;
  rssAtRestMiB: number;
  peakRssMiB: number;
}

/** In a child: plan and encode the report the way `way` says, and print the figures as JSON. */
async function planChild(way: 'streamed' | 'held'): Promise<void> {
  await import('../src/retention/run/command.ts'); // the run's modules and libraries
  const { createPlanner, planRetention } = await import('../src/retention/run/planner.ts');
  const { applyOutcomes, reportData } = await import('../src/retention/run/report.ts');
  global.gc?.();
  const rssAtRest = process.memoryUsage().rss;
  const state = synthetic();
  const tags = state.reduce((s, r) => s + r.tags.length, 0);
  const first = state[0];
  const inUse = {
    digests: new Map([[`${first?.name}@${first?.tags[50]?.digest}`, 'Pod a/b']]),
    tags: new Map<string, string>(),
  };
  const summary = {
    mode: 'DryRun' as const,
    ...{ evaluated: 0, deleted: 0, kept: 0, protected: 0, refused: false },
    ...{ startTime: '', completionTime: '', result: 'Succeeded' as const, message: '' },
  };
  const started = process.hrtime.bigint();
  let plan;
  if (way === 'streamed') {
    const planner = createPlanner(policy, inUse, now);
    const known = new Map<string, Set<string>>();
    for (let repo = state.shift(); repo; repo = state.shift()) {
      planner.add(repo);
      known.set(repo.name, new Set(repo.tags.map((t) => t.tag)));
    }
    plan = planner.finish();
  } else plan = planRetention(state, policy, inUse, now);
  const planned = process.hrtime.bigint();
  let parts: { binaryData?: Record<string, string>; data?: Record<string, string> }[];
  if (way === 'streamed') parts = reportData('bench', summary, applyOutcomes(plan, undefined).entries);
  else {
    // What the report did before: the whole JSON text to size it, then one text per entry to cut it.
    const text = JSON.stringify(plan.entries);
    const lines = plan.entries.map((e) => JSON.stringify(e));
    parts = reportData('bench', summary, plan.entries);
    if (text.length + lines.length < 0) throw new Error('unreachable');
  }
  const reported = process.hrtime.bigint();
  const figures: PlanFigures = {
    way,
    tags,
    entries: plan.counts.evaluated,
    wouldDelete: plan.wouldDelete,
    planMs: Number(planned - started) / 1e6,
    reportMs: Number(reported - planned) / 1e6,
    reportParts: parts.length,
    reportGzBytes: parts.reduce(
      (n, p) => n + Buffer.byteLength(p.binaryData?.['report.json.gz'] ?? '', 'base64'),
      0,
    ),
    rssAtRestMiB: rssAtRest / MiB,
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function runPlanChild(
  way: 'streamed' | 'held',
  nodeFlags: string[] = [],
): Promise<PlanFigures & { nodeFlags: string }> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', ...nodeFlags, self, `--plan-child=${way}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`plan child (${way}) exited ${code}`));
      try {
        const figures = JSON.parse(out.trim().split('\n').pop() ?? '') as PlanFigures;
        resolve({ ...figures, nodeFlags: nodeFlags.join(' ') });
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

interface DeleteFigures {
  client: string;
  inFlight: number;
  deleted: number;
  seconds: number;
  perSecond: number;
  requests: number;
}

/**
 * Where the registry stores in the bench: BENCH_RETENTION_STORAGE, else tmpfs (/dev/shm) when
 * writable, so the figures are the registry's and berth's, not the shared disk's; else the temp dir.
 */
function storageBase(): string {
  const wanted = process.env.BENCH_RETENTION_STORAGE;
  if (wanted) return wanted;
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

async function benchDeletions(): Promise<{ storage: string; rows: DeleteFigures[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-retention-'));
  const storageDir = mkdtempSync(path.join(storageBase(), 'berth-bench-retention-storage-'));
  writeFileSync(
    path.join(dir, 'config.yml'),
    'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: /tmp}\n  delete: {enabled: true}\nhttp: {addr: 127.0.0.1:5000}\n',
  );
  const registry = await startRegistry({ configDir: dir, storageDir, tls: false });
  const crane = new Crane({ insecure: true });
  const out: DeleteFigures[] = [];
  try {
    const accept =
      'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
    /** A repository with `deletions` distinct manifests, each under a tag of its own, plus `base`. */
    const fill = async (repo: string): Promise<Deletion[]> => {
      await crane.pushRandomImage(`${registry.host}/${repo}:base`);
      const base = await fetch(`${registry.url}/v2/${repo}/manifests/base`, { headers: { accept } });
      const mediaType = base.headers.get('content-type') ?? '';
      const manifest = (await base.json()) as Record<string, unknown>;
      return mapLimit(
        Array.from({ length: deletions }, (_, i) => i),
        8,
        async (i): Promise<Deletion> => {
          const body = JSON.stringify({ ...manifest, annotations: { 'bench.berth.dev/n': String(i) } });
          const res = await fetch(`${registry.url}/v2/${repo}/manifests/t${i}`, {
            method: 'PUT',
            headers: { 'content-type': mediaType },
            body,
          });
          if (res.status !== 201) throw new Error(`PUT manifest: HTTP ${res.status} ${await res.text()}`);
          const digest = res.headers.get('docker-content-digest') ?? '';
          return { repository: repo, digest, tags: [`t${i}`], after: [] };
        },
      );
    };
    const setupStarted = Date.now();
    // berth before: one deletion at a time, tags resolved again by HEAD through the registry;
    // berth now: `concurrency` per repository, tags resolved again from their links in the storage.
    const rows = [
      { client: 'raw DELETE (plain client)', inFlight: 1 },
      { client: 'berth before (HEAD per tag)', inFlight: 1 },
      { client: 'berth now (storage links)', inFlight: 1 },
      { client: 'raw DELETE (plain client)', inFlight: concurrency },
      { client: 'berth now (storage links)', inFlight: concurrency },
    ];
    const plans: Deletion[][] = [];
    for (const [i] of rows.entries()) plans.push(await fill(`bench/app-${i}`));
    console.log(
      `deletions setup: ${rows.length} repositories × ${deletions} manifests stored in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`,
    );
    for (const [i, row] of rows.entries()) {
      const plan = plans[i] ?? [];
      const repo = `bench/app-${i}`;
      let deleted = 0;
      let requests = 0;
      const started = Date.now();
      if (row.client.startsWith('raw')) {
        await mapLimit(plan, row.inFlight, async (d) => {
          const res = await fetch(`${registry.url}/v2/${repo}/manifests/${d.digest}`, { method: 'DELETE' });
          await res.arrayBuffer();
          requests++;
          if (res.status === 202) deleted++;
        });
      } else {
        const client = new RegistryClient({ url: registry.url, concurrency });
        const known = new Map([[repo, new Set(['base', ...plan.map((d) => d.tags[0] ?? '')])]]);
        const storage = new FilesystemPushTimes(registry.storageDir);
        const resolveTags = row.client.includes('before')
          ? (r: string) => resolveTagsByHead(r, client)
          : storageTagResolver(client, storage);
        const result = await executeDeletions(plan, known, client, {
          perRepository: row.inFlight,
          resolveTags,
        });
        deleted = [...result.outcomes.values()].filter((o) => o.status === 'deleted').length;
        requests = client.requests;
        client.close();
      }
      const seconds = (Date.now() - started) / 1000;
      if (deleted !== deletions) throw new Error(`${row.client}: deleted ${deleted} of ${deletions}`);
      out.push({ ...row, deleted, seconds, perSecond: deleted / seconds, requests });
    }
  } finally {
    await registry.stop();
    await crane.cleanup();
    rmSync(dir, { recursive: true, force: true });
    rmSync(storageDir, { recursive: true, force: true });
  }
  return { storage: storageDir, rows: out };
}

const childWay = process.argv.find((a) => a.startsWith('--plan-child='))?.slice('--plan-child='.length);
if (childWay === 'streamed' || childWay === 'held') await planChild(childWay);
else {
  // The third: the same run with a small young generation (V8 sizes it from the machine's memory,
  // and on a large machine its semi-spaces alone hold more than the plan's live data).
  const plans = [
    await runPlanChild('held'),
    await runPlanChild('streamed'),
    await runPlanChild('streamed', ['--max-semi-space-size=2']),
  ];
  const planRows: Row[] = plans.map((p) => ({
    run: p.way === 'held' ? 'before: report held whole' : 'now: streamed report',
    'node flags': p.nodeFlags || '-',
    tags: p.tags,
    entries: p.entries,
    'plan ms': Math.round(p.planMs),
    'report ms': Math.round(p.reportMs),
    'total ms': Math.round(p.planMs + p.reportMs),
    'report parts': p.reportParts,
    'report gz KiB': Math.round(p.reportGzBytes / 1024),
    'RSS at rest MiB': Math.round(p.rssAtRestMiB),
    'peak RSS MiB': Math.round(p.peakRssMiB),
    'working set MiB': Math.round(p.peakRssMiB - p.rssAtRestMiB),
  }));
  printTable(`retention plan: ${repos} repositories × ${tagsPerRepo} tags (a child process each)`, planRows);

  const { storage, rows: dels } = await benchDeletions();
  const rate = (client: string, inFlight: number) =>
    dels.find((d) => d.client.startsWith(client) && d.inFlight === inFlight)?.perSecond ?? NaN;
  const delRows: Row[] = dels.map((d) => ({
    client: d.client,
    'in flight': d.inFlight,
    deleted: d.deleted,
    seconds: d.seconds.toFixed(2),
    'deletions/s': Math.round(d.perSecond),
    requests: d.requests,
    'vs raw, same in flight': (d.perSecond / rate('raw', d.inFlight)).toFixed(2),
  }));
  printTable(
    `retention deletions: ${deletions} manifests per row, one repository each (bin/registry, storage in ${path.dirname(storage)})`,
    delRows,
  );
  const berth = rate('berth now', concurrency);
  const summary: Row[] = [
    {
      'plan+report ms (100k tags)': Math.round((plans[1]?.planMs ?? 0) + (plans[1]?.reportMs ?? 0)),
      'peak RSS MiB': Math.round(plans[1]?.peakRssMiB ?? 0),
      'peak RSS MiB, small young gen': Math.round(plans[2]?.peakRssMiB ?? 0),
      'berth deletions/s': Math.round(berth),
      'raw deletes/s': Math.round(rate('raw', concurrency)),
      'berth / raw': (berth / rate('raw', concurrency)).toFixed(2),
      'berth / before': (berth / rate('berth before', 1)).toFixed(2),
    },
  ];
  printTable('retention summary', summary);
  writeResults('retention', {
    repos,
    tagsPerRepo,
    deletions,
    concurrency,
    storage,
    plans,
    deletionRows: dels,
  });
}
