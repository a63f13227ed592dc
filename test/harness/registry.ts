// The real Distribution registry on loopback, started from a configuration folder, and a real
// registry client (crane) to push, pull and list through it.
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './net.ts';
import { binary, ProcessGroup } from './processes.ts';

const exec = promisify(execFile);

export interface RunningRegistry {
  /** host:port, as clients name it */
  host: string;
  /** https://host:port (or http:// when the configuration has no TLS) */
  url: string;
  /** The debug listener (health, metrics). */
  debugUrl: string;
  storageDir: string;
  logFile: string;
  /** Restarts the process with the same folder, ports and storage (a configuration reload). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** A folder holding `config.yml` and whatever files it names (certificates, auth material). */
  configDir: string;
  /** Storage root; default: a new folder. Overrides the configuration's filesystem root. */
  storageDir?: string;
  tls: boolean;
  /** Extra REGISTRY_* environment overrides. */
  env?: Record<string, string>;
  /** Fixed port (default: a free one). */
  port?: number;
}

/** Starts `registry serve <configDir>/config.yml` on 127.0.0.1 and waits for its health check. */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'berth-registry-'));
  const group = new ProcessGroup(workDir);
  const storageDir = options.storageDir ?? path.join(workDir, 'storage');
  mkdirSync(storageDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const debugPort = await freePort();
  const host = `127.0.0.1:${port}`;
  const url = `${options.tls ? 'https' : 'http'}://${host}`;
  const debugUrl = `http://127.0.0.1:${debugPort}`;
  const env = {
    REGISTRY_HTTP_ADDR: host,
    REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${debugPort}`,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: storageDir,
    OTEL_TRACES_EXPORTER: 'none',
    ...options.env,
  };
  let proc = group.start(
    'registry',
    binary('registry'),
    ['serve', path.join(options.configDir, 'config.yml')],
    env,
  );
  const ready = () =>
    waitFor(
      'the registry to answer',
      async () => {
        if (proc.child.exitCode !== null)
          throw new Error(`registry exited: ${ProcessGroup.tail(proc.logFile)}`);
        return (await fetch(`${debugUrl}/debug/health`)).ok;
      },
      { timeoutMs: 30_000, describe: () => ProcessGroup.tail(proc.logFile) },
    );
  try {
    await ready();
  } catch (err) {
    await group.stopAll({ keepDir: true });
    throw err;
  }
  return {
    host,
    url,
    debugUrl,
    storageDir,
    get logFile() {
      return proc.logFile;
    },
    restart: async () => {
      await proc.stop();
      proc = group.start(
        'registry',
        binary('registry'),
        ['serve', path.join(options.configDir, 'config.yml')],
        env,
      );
      await ready();
    },
    stop: () => group.stopAll(),
  };
}

/** The result of a client command. */
export interface ClientResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export interface ClientOptions {
  /** A docker config (`{auths: {...}}`), exactly as a dockerconfigjson Secret holds it. */
  dockerConfig?: unknown;
  /** PEM CA bundle to trust. */
  caPem?: string;
  /** Plain HTTP (no TLS). */
  insecure?: boolean;
}

/** A real registry client (crane) with its own docker config and trust store. */
export class RegistryClient {
  private readonly dir: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly options: ClientOptions;

  constructor(options: ClientOptions = {}) {
    this.options = options;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'berth-client-'));
    writeFileSync(path.join(this.dir, 'config.json'), JSON.stringify(options.dockerConfig ?? { auths: {} }));
    this.env = { ...process.env, DOCKER_CONFIG: this.dir, HOME: this.dir };
    if (options.caPem) {
      const caFile = path.join(this.dir, 'ca.pem');
      writeFileSync(caFile, options.caPem);
      this.env.SSL_CERT_FILE = caFile;
    }
  }

  /** Runs crane with the given arguments; never throws for a refused operation. */
  async run(args: string[], timeoutMs = 60_000): Promise<ClientResult> {
    const fullArgs = this.options.insecure ? [...args, '--insecure'] : args;
    try {
      const { stdout, stderr } = await exec(binary('crane'), fullArgs, {
        env: this.env,
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return { ok: true, stdout: stdout.trim(), stderr: stderr.trim() };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return { ok: false, stdout: (e.stdout ?? '').trim(), stderr: (e.stderr ?? e.message).trim() };
    }
  }

  /** Like run, but throws with crane's message when the command fails. */
  async must(args: string[]): Promise<string> {
    const res = await this.run(args);
    if (!res.ok) throw new Error(`crane ${args.join(' ')} failed: ${res.stderr}`);
    return res.stdout;
  }

  /**
   * Pushes a new single-platform image with `layers` random layers of `layerBytes` each and
   * returns its digest.
   */
  async pushRandomImage(
    ref: string,
    options: { layers?: number; layerBytes?: number } = {},
  ): Promise<string> {
    const { layers = 1, layerBytes = 1024 } = options;
    const args = ['append', '--new_tag', ref, '--platform', 'linux/amd64'];
    for (let i = 0; i < layers; i++) args.push('-f', await this.randomLayer(layerBytes));
    await this.must(args);
    return this.digest(ref);
  }

  private async randomLayer(bytes: number): Promise<string> {
    const src = mkdtempSync(path.join(this.dir, 'layer-'));
    const buf = Buffer.alloc(bytes);
    randomFillSync(buf);
    writeFileSync(path.join(src, 'data.bin'), buf);
    const tar = `${src}.tar`;
    await exec('tar', ['-C', src, '-cf', tar, 'data.bin']);
    if (!existsSync(tar)) throw new Error('tar produced no file');
    return tar;
  }

  async digest(ref: string): Promise<string> {
    return this.must(['digest', ref]);
  }

  /** Pulls the whole image (manifest, config and every layer) into a throw-away tarball. */
  async pull(ref: string): Promise<ClientResult> {
    return this.run(['pull', ref, path.join(this.dir, `pull-${Date.now()}.tar`)]);
  }

  async tags(repository: string): Promise<string[]> {
    const out = await this.must(['ls', repository]);
    return out ? out.split('\n') : [];
  }

  async catalog(host: string): Promise<string[]> {
    const out = await this.must(['catalog', host]);
    return out ? out.split('\n') : [];
  }

  async cleanup(): Promise<void> {
    const { rmSync } = await import('node:fs');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
