// The operator as users run it: the image's entry (`node --enable-source-maps dist/main.js`, the
// Dockerfile's ENTRYPOINT) on the compiled sources, with the NODE_OPTIONS the Helm chart sets
// (charts/berth/values.yaml `nodeOptions`). In a pod, `--max-old-space-size-percentage` is a share
// of the container's memory limit; the bench has no such limit, so it passes the same share of the
// chart's `resources.limits.memory` as `--max-old-space-size`.
// BENCH_OPERATOR_NODE_OPTIONS replaces the chart's options (to compare settings).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import type { RunningOperator } from '../../test/harness/operator.ts';
import { freePort, waitFor } from '../../test/harness/net.ts';
import { ProcessGroup, repoRoot } from '../../test/harness/processes.ts';

/** Where the bench compiles src/ (as the image's build stage does, into a folder git ignores). */
const distDir = path.join(repoRoot, '.tmp/bench-dist');

export interface OperatorEntry {
  /** `dist`: compiled, as the image runs it; `src`: the TypeScript sources through type stripping. */
  entry: 'dist' | 'src';
  /** NODE_OPTIONS as the process sees them. */
  nodeOptions: string;
}

/** The chart's memory limit in MiB (`512Mi`, `1Gi`), undefined without one. */
export function memoryMiB(quantity: string | undefined): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)?$/.exec(quantity ?? '');
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? '';
  const bytes = { Mi: 2 ** 20, Gi: 2 ** 30, M: 1e6, G: 1e9, '': 1 }[unit] ?? 1;
  return (n * bytes) / 2 ** 20;
}

/** The chart's NODE_OPTIONS for the operator, the percentage of the memory limit made absolute. */
export function chartNodeOptions(): { chart: string; effective: string; limitMiB: number | undefined } {
  const values = parse(readFileSync(path.join(repoRoot, 'charts/berth/values.yaml'), 'utf8')) as {
    nodeOptions?: string;
    resources?: { limits?: { memory?: string } };
  };
  const chart = process.env.BENCH_OPERATOR_NODE_OPTIONS ?? values.nodeOptions ?? '';
  const limitMiB = memoryMiB(values.resources?.limits?.memory);
  const effective = chart
    .split(/\s+/)
    .filter(Boolean)
    .map((flag) => {
      const pct = /^--max-old-space-size-percentage=(\d+(?:\.\d+)?)$/.exec(flag);
      if (!pct || limitMiB === undefined) return flag;
      return `--max-old-space-size=${Math.floor((Number(pct[1]) / 100) * limitMiB)}`;
    })
    .join(' ');
  return { chart, effective, limitMiB };
}

/** Compiles src/ into the bench's dist folder (what the image's build stage runs). */
export function buildDist(): string {
  try {
    execFileSync(
      process.execPath,
      [
        path.join(repoRoot, 'node_modules/typescript/bin/tsc'),
        '-p',
        path.join(repoRoot, 'tsconfig.build.json'),
        '--outDir',
        distDir,
      ],
      { stdio: 'pipe' },
    );
  } catch (err) {
    // tsc emits even when another file does not type-check; the operator's files are what runs
    const out = String((err as { stdout?: Buffer }).stdout ?? '');
    console.log(`  (tsc reported errors; dist/ emitted anyway)\n${out.split('\n').slice(0, 5).join('\n')}`);
  }
  return path.join(distDir, 'main.js');
}

/** Starts `berth operator` from `entry` with `nodeOptions`, as the harness's startOperator does. */
export async function startOperatorAs(
  how: OperatorEntry,
  kubeconfig: string,
  args: string[],
): Promise<RunningOperator> {
  const group = new ProcessGroup(mkdtempSync(path.join(os.tmpdir(), 'berth-operator-')));
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const main =
    how.entry === 'dist'
      ? ['--enable-source-maps', path.join(distDir, 'main.js')]
      : [path.join(repoRoot, 'src/main.ts')];
  const proc = group.start(
    'operator',
    process.execPath,
    [
      ...main,
      'operator',
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-bind-address=127.0.0.1:${healthPort}`,
      '--events-bind-address=0',
      '--leader-elect=false',
      ...args,
    ],
    { KUBECONFIG: kubeconfig, NODE_OPTIONS: how.nodeOptions, NODE_ENV: 'production' },
  );
  const healthUrl = `http://127.0.0.1:${healthPort}`;
  await waitFor(
    'the operator to become ready',
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`operator exited with ${proc.child.exitCode}`);
      return (await fetch(`${healthUrl}/readyz`)).ok;
    },
    { timeoutMs: 60_000, describe: () => ProcessGroup.tail(proc.logFile, 60) },
  );
  return {
    process: proc,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    healthUrl,
    logs: () => ProcessGroup.tail(proc.logFile, 200),
    stop: () => group.stopAll({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' }),
  };
}
