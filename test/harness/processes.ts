// Child processes of the test ground: each in its own process group, logging to a file, and
// registered with a reaper that kills them and removes their work folder if this process dies
// without tearing down (Ctrl-C, a jest timeout, SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const binDir = process.env.BERTH_BIN_DIR ?? path.join(repoRoot, 'bin');

/** Path of a test-ground binary built by `make tools`, with a clear error when it is missing. */
export function binary(name: string): string {
  const p = path.join(binDir, name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`make tools\` to build the test ground`);
  return p;
}

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>;
  stop(timeoutMs?: number): Promise<void>;
}

interface ReaperState {
  pgids: number[];
  dirs: string[];
  /** Commands (argv) run after the processes are killed and before the folders go: unmounts, links. */
  cleanup: string[][];
}

/** A group of processes and folders that are removed together. */
export class ProcessGroup {
  private readonly processes: ManagedProcess[] = [];
  private readonly state: ReaperState = { pgids: [], dirs: [], cleanup: [] };
  private readonly stateFile: string;
  readonly workDir: string;

  constructor(workDir: string) {
    this.workDir = workDir;
    mkdirSync(workDir, { recursive: true });
    this.stateFile = path.join(path.dirname(workDir), `.${path.basename(workDir)}.reaper.json`);
    this.state.dirs.push(workDir);
    this.save();
    const reaper = spawn(
      process.execPath,
      [path.join(repoRoot, 'test/harness/reaper.mjs'), String(process.pid), this.stateFile],
      { detached: true, stdio: 'ignore' },
    );
    reaper.unref();
    this.state.dirs.push(this.stateFile);
    this.save();
  }

  private save(): void {
    writeFileSync(this.stateFile, JSON.stringify(this.state));
  }

  /**
   * Registers commands that undo what was made outside the work folder (network links, mounts,
   * cgroups). They run in order on stopAll, after every process has stopped, and by the reaper if
   * this process dies first; each may fail harmlessly when there is nothing left to undo.
   */
  onCleanup(...commands: string[][]): void {
    this.state.cleanup.push(...commands);
    this.save();
  }

  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ManagedProcess {
    const logFile = path.join(this.workDir, `${name}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      child.once('error', (err) => resolve(`spawn failed: ${err.message}`));
    });
    if (child.pid !== undefined) {
      this.state.pgids.push(child.pid);
      this.save();
    }
    const managed: ManagedProcess = {
      name,
      child,
      logFile,
      exited,
      stop: async (timeoutMs = 10_000) => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        signalGroup(child.pid, 'SIGTERM');
        const timer = setTimeout(
          () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'),
          timeoutMs,
        );
        await exited;
        clearTimeout(timer);
        this.state.pgids = this.state.pgids.filter((p) => p !== child.pid);
        this.save();
      },
    };
    this.processes.push(managed);
    return managed;
  }

  /** Stops every process, last started first, and removes the work folder. */
  async stopAll(options: { keepDir?: boolean } = {}): Promise<void> {
    for (const p of [...this.processes].reverse()) await p.stop();
    const { spawnSync } = await import('node:child_process');
    for (const [cmd, ...args] of this.state.cleanup) if (cmd) spawnSync(cmd, args, { stdio: 'ignore' });
    const { rmSync } = await import('node:fs');
    if (!options.keepDir) rmSync(this.workDir, { recursive: true, force: true });
    rmSync(this.stateFile, { force: true });
  }

  /** The last lines of a process's log, for error messages. */
  static tail(logFile: string, lines = 30): string {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
