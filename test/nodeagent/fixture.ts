// The node agent as a process against a temporary root: a fake node (certs.d and a hosts file) and
// its configuration folder laid out like the mounted ConfigMap.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitFor } from '../harness/net.ts';
import { ProcessGroup, repoRoot, type ManagedProcess } from '../harness/processes.ts';

export interface RunningAgent {
  proc: ManagedProcess;
  url: string;
  readyz(): Promise<{ status: number; body: string }>;
  metrics(): Promise<string>;
}

/** Starts `berth node-agent` with `args` (plus --listen) and waits for /healthz. */
export async function startAgent(group: ProcessGroup, name: string, args: string[]): Promise<RunningAgent> {
  const port = await freePort();
  const proc = group.start(name, process.execPath, [
    path.join(repoRoot, 'src/main.ts'),
    'node-agent',
    ...args,
    `--listen=127.0.0.1:${port}`,
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'the node agent',
    async () => {
      if (proc.child.exitCode !== null)
        throw new Error(`node agent exited: ${ProcessGroup.tail(proc.logFile)}`);
      return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok ?? false;
    },
    { timeoutMs: 30_000, describe: () => ProcessGroup.tail(proc.logFile) },
  );
  return {
    proc,
    url,
    readyz: async () => {
      const res = await fetch(`${url}/readyz`);
      return { status: res.status, body: await res.text() };
    },
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
  };
}

/** Every file under `dir` (relative paths, sorted), with its content. */
export function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function mtimeOf(file: string): number {
  return statSync(file).mtimeMs;
}
