// Runs berth's operator as a real process (`node src/main.ts operator`) against a cluster, for
// suites that test controllers end to end.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './net.ts';
import { ProcessGroup, repoRoot, type ManagedProcess } from './processes.ts';

export interface RunningOperator {
  process: ManagedProcess;
  metricsUrl: string;
  healthUrl: string;
  logs(): string;
  stop(): Promise<void>;
}

export interface OperatorOptions {
  kubeconfig: string;
  /** Extra flags after `operator`. */
  args?: string[];
  env?: Record<string, string>;
  /** Wait until /readyz answers 200 (default true). */
  waitReady?: boolean;
}

export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-operator-'));
  const group = new ProcessGroup(dir);
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const proc = group.start(
    'operator',
    process.execPath,
    [
      path.join(repoRoot, 'src/main.ts'),
      'operator',
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-bind-address=127.0.0.1:${healthPort}`,
      // suites run operators side by side: no shared default port (a suite may pass its own)
      '--events-bind-address=0',
      '--leader-elect=false',
      ...(options.args ?? []),
    ],
    { KUBECONFIG: options.kubeconfig, BERTH_LOG_LEVEL: 'debug', ...options.env },
  );
  const healthUrl = `http://127.0.0.1:${healthPort}`;
  const running: RunningOperator = {
    process: proc,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    healthUrl,
    logs: () => ProcessGroup.tail(proc.logFile, 200),
    stop: () => group.stopAll({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' }),
  };
  if (options.waitReady ?? true) {
    await waitFor(
      'the operator to become ready',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`operator exited with ${proc.child.exitCode}`);
        return (await fetch(`${healthUrl}/readyz`)).ok;
      },
      { timeoutMs: 60_000, describe: () => ProcessGroup.tail(proc.logFile, 60) },
    );
  }
  return running;
}
