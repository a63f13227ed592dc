// The retention bench's planning child (bench/retention.ts starts one process per row). It loads the
// retention run's modules from `--modules=<dir>` (the compiled dist/ the image runs, or src/ through
// Node's type stripping), measures its RSS at rest, then plans BENCH_RETENTION_REPOS (1000)
// repositories × BENCH_RETENTION_TAGS (100) tags (a third of the digests carry a second tag, every
// tenth repository has a signature per image) with a release rule and a CI rule keeping the 10 most
// recent, and encodes the report. `--way=`:
//   streamed  as the run does now: each repository planned as its snapshot arrives, then let go;
//   held      as the run did before: the whole snapshot read first, then planned.
// Prints its figures as one JSON line. It imports nothing at the top (types only), so what it
// loads is the run's modules and their libraries, not the bench's.
import type { InUse, Plan, PlannerPolicy, RepositoryState } from '../../src/retention/run/model.ts';
import type * as Planner from '../../src/retention/run/planner.ts';
import type * as Report from '../../src/retention/run/report.ts';

const repos = Number(process.env.BENCH_RETENTION_REPOS ?? 1000);
const tagsPerRepo = Number(process.env.BENCH_RETENTION_TAGS ?? 100);
const H = 3_600_000;
const now = Date.parse('2025-06-01T00:00:00Z');
const hex = (n: number) => n.toString(16).padStart(64, '0');
const MiB = 2 ** 20;

/** Repository `r` as a snapshot reads it (`tagsPerRepo` tags); digests numbered from `r`. */
function syntheticRepository(r: number): RepositoryState {
  const state: RepositoryState = { name: `team-${r % 50}/app-${r}`, tags: [], manifests: [] };
  const signed = r % 10 === 0;
  let n = r * tagsPerRepo * 2 + 1;
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
    if (t % 3 === 0 && state.tags.length < tagsPerRepo) state.tags.push({ tag: `pr-${t}`, digest, pushedAt });
    if (signed && state.tags.length < tagsPerRepo) {
      const sig = `sha256:${hex(n++)}`;
      state.manifests.push({ ...manifest, digest: sig });
      state.tags.push({ tag: `${digest.replace(':', '-')}.sig`, digest: sig, pushedAt });
    }
  }
  return state;
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

export interface PlanFigures {
  way: string;
  tags: number;
  entries: number;
  wouldDelete: number;
  /** Time in the planner (add and finish), without making the synthetic snapshots. */
  planMs: number;
  reportMs: number;
  reportParts: number;
  knownRepositories: number;
  reportGzBytes: number;
  rssAtRestMiB: number;
  peakRssMiB: number;
}

function arg(name: string): string {
  const value = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (!value) throw new Error(`--${name}= is required`);
  return value;
}

interface Planned {
  plan: Plan;
  ms: number;
  tags: number;
  /** held: the tag names the run kept beside the plan for the checks before each delete */
  known: Map<string, Set<string>>;
}

/** Plans every repository the way `way` says; the time spent in the planner only. */
function plan(planner: Planner.RetentionPlanner, way: string): Planned {
  const known = new Map<string, Set<string>>();
  let ms = 0;
  let tags = 0;
  const add = (repo: RepositoryState) => {
    const started = performance.now();
    planner.add(repo);
    // Before, the run also kept every repository's tag names; now it finds them in the entries.
    if (way === 'held') known.set(repo.name, new Set(repo.tags.map((t) => t.tag)));
    ms += performance.now() - started;
    tags += repo.tags.length;
  };
  if (way === 'streamed') for (let r = 0; r < repos; r++) add(syntheticRepository(r));
  else {
    const state = Array.from({ length: repos }, (_, r) => syntheticRepository(r));
    for (let repo = state.shift(); repo; repo = state.shift()) add(repo);
  }
  const started = performance.now();
  const out = planner.finish();
  return { plan: out, ms: ms + performance.now() - started, tags, known };
}

async function main(): Promise<void> {
  const way = arg('way');
  const modules = arg('modules');
  const ext = arg('ext');
  await import(`${modules}/retention/run/command${ext}`); // the run's modules and libraries
  const { createPlanner } = (await import(`${modules}/retention/run/planner${ext}`)) as typeof Planner;
  const { applyOutcomes, reportData } = (await import(
    `${modules}/retention/run/report${ext}`
  )) as typeof Report;
  global.gc?.();
  const rssAtRest = process.memoryUsage().rss;
  const first = syntheticRepository(0);
  const inUse: InUse = {
    digests: new Map([[`${first.name}@${first.tags[50]?.digest}`, 'Pod a/b']]),
    tags: new Map<string, string>(),
  };
  const planned = plan(createPlanner(policy, inUse, now), way);
  const summary = {
    mode: 'DryRun' as const,
    ...{ evaluated: 0, deleted: 0, kept: 0, protected: 0, refused: false },
    ...{ startTime: '', completionTime: '', result: 'Succeeded' as const, message: '' },
  };
  const reportStarted = performance.now();
  const parts = reportData('bench', summary, applyOutcomes(planned.plan, undefined).entries);
  const figures: PlanFigures = {
    way,
    tags: planned.tags,
    entries: planned.plan.counts.evaluated,
    wouldDelete: planned.plan.wouldDelete,
    planMs: planned.ms,
    reportMs: performance.now() - reportStarted,
    reportParts: parts.length,
    knownRepositories: planned.known.size, // held until here, as the run holds it
    reportGzBytes: parts.reduce(
      (n, p) => n + Buffer.byteLength(p.binaryData?.['report.json.gz'] ?? '', 'base64'),
      0,
    ),
    rssAtRestMiB: rssAtRest / MiB,
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

if (process.argv.some((a) => a.startsWith('--way='))) await main();
