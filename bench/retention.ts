// Benchmark: the retention engine.
// 1. Plan time and memory for BENCH_RETENTION_REPOS (1000) repositories x BENCH_RETENTION_TAGS (100)
//    tags (a third of the digests carry two tags, every tenth repository has a signature per tag),
//    with a release rule and a CI rule keeping the 10 most recent.
// 2. Deletions per second against the real registry on loopback (plain HTTP, no auth, filesystem
//    storage): BENCH_RETENTION_DELETIONS (500) distinct manifests, each deleted the way an
//    enforcing run does it (re-resolve the tag with HEAD, then DELETE by digest), with the
//    run's default concurrency.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { executeDeletions } from '../src/retention/execute.ts';
import type { Deletion, PlannerPolicy, RepositoryState } from '../src/retention/model.ts';
import { planRetention } from '../src/retention/planner.ts';
import { RegistryClient } from '../src/retention/registry-client.ts';
import { RegistryClient as Crane, startRegistry } from '../test/harness/registry.ts';

const repos = Number(process.env.BENCH_RETENTION_REPOS ?? 1000);
const tagsPerRepo = Number(process.env.BENCH_RETENTION_TAGS ?? 100);
const deletions = Number(process.env.BENCH_RETENTION_DELETIONS ?? 500);
const H = 3_600_000;
const now = Date.parse('2025-06-01T00:00:00Z');
const hex = (n: number) => n.toString(16).padStart(64, '0');

function synthetic(): RepositoryState[] {
  const out: RepositoryState[] = [];
  let n = 1;
  for (let r = 0; r < repos; r++) {
    const state: RepositoryState = { name: `team-${r % 50}/app-${r}`, tags: [], manifests: [] };
    for (let t = 0; t < tagsPerRepo; t++) {
      const digest = `sha256:${hex(n++)}`;
      const pushedAt = now - (t + 1) * 7 * H;
      state.manifests.push({
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        children: [],
        pushedAt,
      });
      state.tags.push({ tag: t % 10 === 0 ? `v1.${t}.0` : `main-${t}`, digest, pushedAt });
      if (t % 3 === 0) state.tags.push({ tag: `pr-${t}`, digest, pushedAt });
      if (r % 10 === 0) {
        const sig = `sha256:${hex(n++)}`;
        state.manifests.push({
          digest: sig,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          children: [],
          pushedAt,
        });
        state.tags.push({ tag: `${digest.replace(':', '-')}.sig`, digest: sig, pushedAt });
      }
    }
    out.push(state);
  }
  return out;
}

function benchPlan(): void {
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
  const state = synthetic();
  const tags = state.reduce((s, r) => s + r.tags.length, 0);
  const inUse = {
    digests: new Map([[`${state[0]?.name}@${state[0]?.tags[50]?.digest}`, 'Pod a/b']]),
    tags: new Map(),
  };
  planRetention(state.slice(0, 10), policy, inUse, now); // warm up
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  const plan = planRetention(state, policy, inUse, now);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const heapAfter = process.memoryUsage().heapUsed;
  const reportBytes = Buffer.byteLength(JSON.stringify(plan.entries));
  console.log(
    `plan: ${repos} repositories x ${tagsPerRepo} tags (${tags} tags, ${plan.counts.evaluated} entries): ` +
      `${ms.toFixed(0)} ms, ${((tags / ms) * 1000).toFixed(0)} tags/s; heap +${((heapAfter - heapBefore) / 2 ** 20).toFixed(0)} MiB ` +
      `(rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB); would delete ${plan.wouldDelete}; ` +
      `report.json ${(reportBytes / 2 ** 20).toFixed(1)} MiB`,
  );
}

async function benchDeletions(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-retention-'));
  writeFileSync(
    path.join(dir, 'config.yml'),
    'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: /tmp}\n  delete: {enabled: true}\nhttp: {addr: 127.0.0.1:5000}\n',
  );
  const registry = await startRegistry({ configDir: dir, tls: false });
  const crane = new Crane({ insecure: true });
  try {
    const repo = 'bench/app';
    await crane.pushRandomImage(`${registry.host}/${repo}:base`);
    const base = await fetch(`${registry.url}/v2/${repo}/manifests/base`, {
      headers: {
        accept:
          'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    const mediaType = base.headers.get('content-type') ?? '';
    const manifest = (await base.json()) as Record<string, unknown>;
    const plan: Deletion[] = [];
    const pushStarted = Date.now();
    for (let i = 0; i < deletions; i++) {
      const body = JSON.stringify({ ...manifest, annotations: { 'bench.berth.dev/n': String(i) } });
      const res = await fetch(`${registry.url}/v2/${repo}/manifests/t${i}`, {
        method: 'PUT',
        headers: { 'content-type': mediaType },
        body,
      });
      if (res.status !== 201) throw new Error(`PUT manifest: HTTP ${res.status} ${await res.text()}`);
      plan.push({
        repository: repo,
        digest: res.headers.get('docker-content-digest') ?? '',
        tags: [`t${i}`],
        after: [],
      });
    }
    const pushSeconds = (Date.now() - pushStarted) / 1000;
    const client = new RegistryClient({ url: registry.url });
    const known = new Map([[repo, new Set(['base', ...plan.map((d) => d.tags[0] ?? '')])]]);
    {
      const repositories = 1;
      const started = Date.now();
      const result = await executeDeletions(plan, known, client);
      const seconds = (Date.now() - started) / 1000;
      const deleted = [...result.outcomes.values()].filter((o) => o.status === 'deleted').length;
      if (deleted !== deletions) throw new Error(`deleted ${deleted} of ${deletions}`);
      console.log(
        `deletions: ${deleted} manifests in ${repositories} repository (tag re-resolved, then DELETE by digest): ` +
          `${seconds.toFixed(2)} s, ${(deleted / seconds).toFixed(0)} deletions/s, ${client.requests} requests ` +
          `(setup: ${deletions} manifests stored in ${pushSeconds.toFixed(1)} s)`,
      );
    }
    client.close();
  } finally {
    await registry.stop();
    await crane.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

benchPlan();
await benchDeletions();
