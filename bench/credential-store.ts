// Benchmark: the credential store at scale. `node bench/run.ts credential-store`.
// For BENCH_STORE_NAMESPACES (1000,5000,10000) namespaces, each with a pull secret and a
// Repository with a push secret, every credential mid-rotation (4 entries per namespace; the
// fixture is test/registry/credential-store-fixture.ts):
// - assemble: buildCredentialStore from the Secrets and Repositories (what the Registry controller
//   does per reconcile), from scratch and with the Secrets' hashes already read (the reconciler
//   keeps them by Secret object), and the layout into Secrets (src/credentials/layout.ts); the baseline in
//   the same run is the grant lookup as it was (pullablePaths over every Repository for every
//   namespace), timed on 500 namespaces and scaled to all of them;
// - size: the version-1 document (one Secret; the limit is 1 MiB of data) against the sharded
//   store's largest shard and total;
// - reload: the token service's reader (src/token/store-file.ts) loading the store from a folder
//   laid out like its projected volume: a new reader in the bench's process, a cold load in a
//   fresh process (a token pod starting), and after one namespace's rotation (one shard changed);
//   the baseline is the same reader loading the version-1 document.
// Each time is the median of BENCH_STORE_RUNS (5) runs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import winston from 'winston';
import { authenticate } from '../src/credentials/authenticate.ts';
import { layoutCredentialStore } from '../src/credentials/layout.ts';
import { shardFileName } from '../src/credentials/sharded.ts';
import { serializeCredentialStore, type CredentialStore } from '../src/credentials/store.ts';
import { pullablePaths } from '../src/model/grants.ts';
import { buildCredentialStore, type CredentialHashCache } from '../src/model/store.ts';
import { createTokenMetrics } from '../src/token/metrics.ts';
import { CredentialStoreFile } from '../src/token/store-file.ts';
import { presented, scaleFixture } from '../test/registry/credential-store-fixture.ts';
import { printTable, writeResults, type Row } from './lib/results.ts';
import { systemClock } from '../src/runtime/clock.ts';

// `--load-child <folder>`: one cold load in a fresh process (a token pod starting), its time printed.
if (process.argv[2] === '--load-child') {
  const reader = new CredentialStoreFile(process.argv[3] ?? '', {
    logger: winston.createLogger({ silent: true, transports: [new winston.transports.Console()] }),
    metrics: createTokenMetrics(),
    clock: systemClock,
  });
  const cpu = process.cpuUsage();
  const t = performance.now();
  await reader.load();
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  console.log(JSON.stringify({ ms: performance.now() - t, cpuMs, size: reader.current().size }));
  process.exit(0);
}

/**
 * The cold load in a child process: the median of `runs`, wall time and CPU time (on a shared
 * machine the wall time includes waiting for a core; the CPU time is the work).
 */
function coldLoad(dir: string): { ms: number; cpuMs: number } {
  const times: { ms: number; cpuMs: number }[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--load-child', dir], {
      encoding: 'utf8',
    });
    times.push(JSON.parse(out.trim().split('\n').pop() ?? '{}') as { ms: number; cpuMs: number });
  }
  return { ms: median(times.map((t) => t.ms)), cpuMs: median(times.map((t) => t.cpuMs)) };
}

const sizes = (process.env.BENCH_STORE_NAMESPACES ?? '1000,5000,10000').split(',').map(Number);
const runs = Number(process.env.BENCH_STORE_RUNS ?? 5);
const now = new Date('2026-12-02T04:00:00Z');
const KiB = 1024;
const logger = winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function timed<T>(fn: () => T | Promise<T>): Promise<{ ms: number; value: T }> {
  const times: number[] = [];
  let value: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    value = await fn();
    times.push(performance.now() - t);
  }
  return { ms: median(times), value: value as T };
}

/** A folder like the kubelet's projected volume: the files under ..data, symlinked by name. */
class Volume {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-store-'));
  private generation = 0;
  private readonly linked = new Set<string>();

  write(files: Record<string, string>): void {
    const ts = path.join(this.dir, `..${this.generation++}`);
    mkdirSync(ts);
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(ts, name), text);
    symlinkSync(path.basename(ts), path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    for (const name of Object.keys(files))
      if (!this.linked.has(name)) {
        symlinkSync(`..data/${name}`, path.join(this.dir, name));
        this.linked.add(name);
      }
  }

  reader(): CredentialStoreFile {
    return new CredentialStoreFile(this.dir, {
      logger,
      metrics: createTokenMetrics(),
      clock: { now: () => now.getTime() },
    });
  }
}

const files = (texts: string[]) => Object.fromEntries(texts.map((t, i) => [shardFileName(i), t]));

const rows: Row[] = [];
const figures: Record<string, unknown>[] = [];
for (const n of sizes) {
  const fixture = scaleFixture(n, now);
  const input = fixture.input(now);
  const assemble = await timed(() => buildCredentialStore(input));
  // A reconcile after one change: the Secrets' hashes already read (the reconciler's cache).
  const hashCache: CredentialHashCache = new WeakMap();
  buildCredentialStore({ ...input, hashCache });
  const assembleCached = await timed(() => buildCredentialStore({ ...input, hashCache }));
  const store: CredentialStore = assemble.value;
  const layout = await timed(() => layoutCredentialStore(store, 'sharded'));
  const sharded = layout.value;
  const single = serializeCredentialStore(store);
  // Baseline: every namespace's grants looked up over every Repository (as before the index).
  const sample = Math.min(500, n);
  const naive = await timed(() => {
    for (let i = 0; i < sample; i++) pullablePaths(`team-${String(i).padStart(5, '0')}`, {}, fixture.owners);
  });
  const naiveMs = (naive.ms * n) / sample;

  const vol = new Volume();
  vol.write(files(sharded.files));
  const load = await timed(async () => {
    const reader = vol.reader();
    await reader.load();
    return reader;
  });
  const reader = load.value;
  const cold = coldLoad(vol.dir);
  // One namespace rotates: a new pull secret replaces its old one (one shard changes).
  const rotated: CredentialStore = {
    ...store,
    credentials: store.credentials.map((e, i) =>
      i === 1 ? { ...e, secretHash: `sha256:${'0'.repeat(64)}` } : e,
    ),
  };
  const rotatedFiles = layoutCredentialStore(rotated, 'sharded').files;
  const changedShards = rotatedFiles.filter((t, i) => t !== sharded.files[i]).length;
  let flip = false;
  const reload = await timed(async () => {
    flip = !flip;
    vol.write(files(flip ? rotatedFiles : sharded.files));
    if (!(await reader.check())) throw new Error('the reader did not notice a changed shard');
  });
  const v1 = new Volume();
  v1.write({ 'store.json': single });
  const loadV1 = await timed(async () => {
    const r = v1.reader();
    await r.load();
    return r;
  });
  // The store works: a sample of old and new credentials authenticates.
  if (flip) {
    vol.write(files(sharded.files));
    await reader.check();
  }
  const current = reader.current();
  let ok = 0;
  const samples = [0, Math.floor(n / 2), n - 1];
  for (const i of samples)
    for (const kind of ['pull', 'push'] as const)
      for (const gen of ['old', 'new'] as const) {
        const p = presented(kind, i, gen);
        if (authenticate(current, p.username, p.secret, now).ok) ok++;
      }
  if (ok !== samples.length * 4)
    throw new Error(`only ${ok} of ${samples.length * 4} sample credentials authenticate`);
  rmSync(vol.dir, { recursive: true, force: true });
  rmSync(v1.dir, { recursive: true, force: true });

  const totalBytes = sharded.files.reduce((s, f) => s + Buffer.byteLength(f), 0);
  const row = {
    namespaces: n,
    entries: store.credentials.length,
    'assemble ms': Math.round(assemble.ms),
    'assemble cached ms': Math.round(assembleCached.ms),
    'old grants ms (baseline)': Math.round(naiveMs),
    'layout ms': Math.round(layout.ms),
    'v1 KiB (1 Secret)': Math.round(Buffer.byteLength(single) / KiB),
    'v2 total KiB': Math.round(totalBytes / KiB),
    'largest shard KiB': Math.round(sharded.largestBytes / KiB),
    'v2 B/entry': Math.round(totalBytes / store.credentials.length),
    'load ms': Math.round(load.ms),
    'cold load ms': Math.round(cold.ms),
    'cold load cpu ms': Math.round(cold.cpuMs),
    'reload 1 shard ms': Math.round(reload.ms),
    'v1 load ms (baseline)': Math.round(loadV1.ms),
  };
  rows.push(row);
  figures.push({ ...row, changedShardsPerRotation: changedShards, limitBytes: 1024 * KiB });
}
const load = os.loadavg()[0] ?? 0;
printTable(
  `Credential store, n namespaces × (pull + push) mid-rotation, median of ${runs} (limit: 1024 KiB per Secret; load average ${load.toFixed(1)} on ${os.cpus().length} cores)`,
  rows,
);
writeResults('credential-store', { runs, loadAverage: os.loadavg(), rows: figures });
