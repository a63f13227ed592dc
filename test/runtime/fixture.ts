// Starts fixtures/operator.ts as a real process against a cluster, for the runtime's suites.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '../harness/net.ts';
import { ProcessGroup, repoRoot, type ManagedProcess } from '../harness/processes.ts';

export interface FixtureOperator {
  process: ManagedProcess;
  healthUrl: string;
  metricsUrl: string;
  logs(lines?: number): string;
  metrics(): Promise<string>;
  /** SIGTERM, then wait for the exit code. */
  terminate(): Promise<number | string>;
  kill(): void;
  cleanup(): Promise<void>;
}

export async function startFixtureOperator(options: {
  kubeconfig: string;
  args?: string[];
  env?: Record<string, string>;
  name?: string;
}): Promise<FixtureOperator> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-runtime-'));
  const group = new ProcessGroup(dir);
  const health = await freePort();
  const metrics = await freePort();
  const proc = group.start(
    options.name ?? 'operator',
    process.execPath,
    [
      path.join(repoRoot, 'test/runtime/fixtures/operator.ts'),
      `--kubeconfig=${options.kubeconfig}`,
      `--health-bind-address=127.0.0.1:${health}`,
      `--metrics-bind-address=127.0.0.1:${metrics}`,
      '--log-level=debug',
      ...(options.args ?? []),
    ],
    options.env ?? {},
  );
  const op: FixtureOperator = {
    process: proc,
    healthUrl: `http://127.0.0.1:${health}`,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    logs: (lines = 80) => ProcessGroup.tail(proc.logFile, lines),
    metrics: async () => (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text(),
    terminate: async () => {
      proc.child.kill('SIGTERM');
      return proc.exited;
    },
    kill: () => proc.child.kill('SIGKILL'),
    cleanup: () => group.stopAll({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' }),
  };
  await waitFor(
    'the test operator to serve /healthz',
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`operator exited with ${proc.child.exitCode}`);
      return (await fetch(`${op.healthUrl}/healthz`)).ok;
    },
    { timeoutMs: 60_000, describe: () => op.logs(40) },
  );
  return op;
}

/** The value of one sample in Prometheus text, or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}
