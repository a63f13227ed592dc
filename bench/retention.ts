// Benchmark: the retention engine. `node bench/run.ts retention`.
// 1. Plan: BENCH_RETENTION_REPOS (1000) repositories × BENCH_RETENTION_TAGS (100) tags (100,000
//    tags), each row in a child process of its own (bench/retention/plan-child.ts) that loads the
//    retention run's modules and their libraries, plans and encodes the report; its peak RSS is the
//    process's maxRSS. The child runs what the retention Job runs: the compiled JS (tsc with
//    tsconfig.build.json, as the Dockerfile builds dist/), with the Dockerfile's node flags and the
//    Job's NODE_OPTIONS (src/retention/controller-job.ts). Rows: the run now (each repository
//    planned as its snapshot arrives, then let go), the baseline in the same run (the whole
//    snapshot read first, then planned, as the run did before), the run now from src/ through
//    Node's type stripping (how the tests and `npm start` run it), and the run now without the
//    Job's NODE_OPTIONS (V8's default young generation).
// 2. Deletions/s against the real registry (bin/registry, Distribution, on loopback: plain HTTP, no
//    auth, filesystem storage), BENCH_RETENTION_DELETIONS (500) distinct manifests per row, each in
//    a repository of its own with the same number of tags: berth's executeDeletions (re-resolve
//    every tag, check, DELETE by digest) one deletion at a time (the run before concurrency) and
//    BENCH_RETENTION_CONCURRENCY (8) per repository; and a plain client sending only the DELETEs,
//    one at a time and with the same concurrency: the registry's raw rate.
import { execFileSync, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { executeDeletions, resolveTagsByHead } from '../src/retention/run/execute.ts';
import type { Deletion } from '../src/retention/run/model.ts';
import { retentionNodeOptions } from '../src/retention/controller-job.ts';
import { RegistryClient } from '../src/distribution/client.ts';
import { storageTagResolver } from '../src/retention/run/snapshot.ts';
import { FilesystemPushTimes } from '../src/retention/run/storage.ts';
import { mapLimit } from '../src/util/limit.ts';
import { RegistryClient as Crane, startRegistry } from '../test/harness/registry.ts';
import { printTable, writeResults, type Row } from './lib/results.ts';
import type { PlanFigures } from './retention/plan-child.ts';

const repos = Number(process.env.BENCH_RETENTION_REPOS ?? 1000);
const tagsPerRepo = Number(process.env.BENCH_RETENTION_TAGS ?? 100);
const deletions = Number(process.env.BENCH_RETENTION_DELETIONS ?? 500);
const concurrency = Number(process.env.BENCH_RETENTION_CONCURRENCY ?? 8);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const childSource = path.join(root, 'bench/retention/plan-child.ts');

/** The node flags of the image's ENTRYPOINT (`["node", <flags>..., "/app/dist/main.js"]`). */
function imageNodeFlags(): string[] {
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
  const argv = JSON.parse(entry?.[1] ?? '[]') as string[];
  return argv.slice(1).filter((a) => a.startsWith('--'));
}

/**
 * What the image holds, in a temporary folder: dist/ compiled as the Dockerfile compiles it, the
 * package.json (ESM), node_modules (a link to this checkout's), and the planning child as JS.
 */
function buildImageTree(): { dir: string; dist: string; child: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-retention-dist-'));
  const dist = path.join(dir, 'dist');
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', dist], {
    stdio: 'inherit',
  });
  writeFileSync(path.join(dir, 'package.json'), readFileSync(path.join(root, 'package.json')));
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  const child = path.join(dir, 'plan-child.mjs');
  writeFileSync(child, stripTypeScriptTypes(readFileSync(childSource, 'utf8')));
  return { dir, dist, child };
}

interface PlanRow {
  label: string;
  way: 'streamed' | 'held';
  /** dist: the compiled JS; src: the TypeScript sources through type stripping */
  from: 'dist' | 'src';
  /** The Job's NODE_OPTIONS, or none. */
  jobOptions: boolean;
}

type PlanResult = PlanFigures & { label: string; from: string; nodeFlags: string; nodeOptions: string };

function runPlanChild(row: PlanRow, tree: { dist: string; child: string }): Promise<PlanResult> {
  const script = row.from === 'dist' ? tree.child : childSource;
  const modules = row.from === 'dist' ? tree.dist : path.join(root, 'src');
  const flags = row.from === 'dist' ? imageNodeFlags() : [];
  const nodeOptions = row.jobOptions ? retentionNodeOptions : '';
  const args = ['--expose-gc', ...flags, script, `--way=${row.way}`, `--modules=${modules}`];
  args.push(`--ext=${row.from === 'dist' ? '.js' : '.ts'}`);
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NODE_OPTIONS: nodeOptions };
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`plan child (${row.label}) exited ${code}`));
      try {
        const figures = JSON.parse(out.trim().split('\n').pop() ?? '') as PlanFigures;
        resolve({ ...figures, label: row.label, from: row.from, nodeFlags: flags.join(' '), nodeOptions });
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

const planRows: PlanRow[] = [
  { label: 'before: whole snapshot, then plan', way: 'held', from: 'dist', jobOptions: true },
  { label: 'now: plan as each snapshot arrives', way: 'streamed', from: 'dist', jobOptions: true },
  { label: 'now, from src/ (type stripping)', way: 'streamed', from: 'src', jobOptions: true },
  { label: "now, without the Job's NODE_OPTIONS", way: 'streamed', from: 'dist', jobOptions: false },
];

/** Every planning row, one child each, then their table. */
async function benchPlans(): Promise<PlanResult[]> {
  const tree = buildImageTree();
  const plans: PlanResult[] = [];
  try {
    for (const row of planRows) plans.push(await runPlanChild(row, tree));
  } finally {
    rmSync(tree.dir, { recursive: true, force: true });
  }
  const table: Row[] = plans.map((p) => ({
    run: p.label,
    from: p.from,
    'node flags': [p.nodeFlags, p.nodeOptions].filter((f) => f).join(' ') || '-',
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
  printTable(`retention plan: ${repos} repositories × ${tagsPerRepo} tags (a child process each)`, table);
  return plans;
}

const plans = await benchPlans();
console.log(
  `load average: ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
if (process.env.BENCH_RETENTION_PLAN_ONLY === '1') {
  writeResults('retention', { repos, tagsPerRepo, plans, loadAverage: os.loadavg() });
} else {
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
      'peak RSS MiB (the Job)': Math.round(plans[1]?.peakRssMiB ?? 0),
      'peak RSS MiB before': Math.round(plans[0]?.peakRssMiB ?? 0),
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
    loadAverage: os.loadavg(),
  });
}
