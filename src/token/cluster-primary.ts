// The token service on every core: a node:cluster primary and N worker processes.
//
// Why processes (node:cluster) and not worker threads: a token is CPU work from the TLS record to
// the ES256 signature, so every core needs its own event loop with its own listener. node:cluster
// shares one listening socket and hands each new connection to the next worker in turn
// (round-robin, the default on Linux), so keep-alive clients spread evenly; threads would need
// SO_REUSEPORT, whose kernel hashing spreads a handful of long-lived connections unevenly. A
// crashed worker takes only its own connections with it and is replaced. prom-client aggregates
// figures across processes (AggregatorRegistry.aggregate). The cost is memory: one V8 heap and
// module graph per worker (about 50 MiB each).
//
// What each concern becomes:
// - Credential store: every worker reads, watches and polls the mounted file itself, exactly as a
//   single process does (CredentialStoreFile), so a revocation is in force in a worker as soon as
//   that worker sees the new file; /healthz reports the oldest store still in force.
// - Metrics: each worker counts its own; the primary sums them (and adds its own worker figures)
//   on the health listener's /metrics, or a worker asks the primary when /metrics is on the main
//   listener.
// - Health: the primary serves the health listener and asks every worker over IPC (see
//   cluster-health.ts).
// - Shutdown: SIGTERM to the primary → every worker stops accepting, answers what is in flight
//   (grace period), exits; workers still there after it are killed; then the primary exits.
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'winston';
import { clusterHealth, type WorkerHealthAnswer } from './cluster-health.ts';
import {
  isWorkerMessage,
  PendingRequests,
  type MetricsJson,
  type PrimaryMessage,
  type WorkerMessage,
} from './cluster-messages.ts';
import { workerSetupVariable, type WorkerSetup } from './cluster-worker.ts';
import { createTokenClusterMetrics, type TokenClusterMetrics } from './metrics.ts';
import { exitReason, nextRespawn, workerExitDecision } from './respawn.ts';
import { listen, urlHost } from './server.ts';
import { TokenServiceConfigError, type TokenServiceConfig } from './service.ts';
import type { ListenAddress } from '../util/listen.ts';

export interface TokenClusterOptions {
  config: TokenServiceConfig;
  logLevel: string;
  workers: number;
  /** Each worker's V8 old space (`--max-old-space-size`), when the process has a memory limit. */
  workerHeapMiB?: number | undefined;
}

export interface TokenClusterDeps {
  logger: Logger;
  /** Milliseconds since the epoch (for the respawn delays). */
  now?: () => number;
  metrics?: TokenClusterMetrics;
}

export interface RunningTokenCluster {
  url: string;
  port: number;
  healthUrl?: string;
  /** The process ids of the workers serving now. */
  workerPids(): number[];
  /** Stops every worker (letting requests in flight finish for `graceMs`), then the health listener. */
  stop(graceMs: number): Promise<void>;
}

/** How long the health route waits for each worker's answer (the kubelet's probe waits 3 s). */
const healthTimeoutMs = 2_000;
const metricsTimeoutMs = 4_000;
/** Beyond the grace period, how long a worker may take to exit before it is killed. */
const exitMarginMs = 3_000;

/** The worker script beside this module (.ts from source, .js once built). */
function workerEntry(): string {
  const self = fileURLToPath(import.meta.url);
  return path.join(path.dirname(self), `worker-entry${path.extname(self)}`);
}

/**
 * The primary's Node options that a worker gets too: all but a script given on the command line
 * (`-e`, `-p` and their text, `--input-type`), which would run instead of the worker's script.
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i] ?? '';
    if (['-e', '--eval', '-p', '--print'].includes(a)) {
      i++;
      continue;
    }
    if (/^(--eval|--print)=/.test(a) || a.startsWith('--input-type')) continue;
    out.push(a);
  }
  return out;
}

type Ready = Extract<WorkerMessage, { type: 'berth:ready' }>;

/**
 * The primary's state and its parts: the workers serving, the questions asked of them, the
 * replacement of those that end, stopping. Each method says what it reads and writes.
 */
class TokenClusterPrimary {
  /** Worker id → worker, once it serves. */
  readonly serving = new Map<number, Worker>();
  readonly healthAnswers = new PendingRequests<WorkerHealthAnswer>();
  readonly metricsAnswers = new PendingRequests<MetricsJson>();
  stopping = false;
  started = false;
  private exitTimes: number[] = [];
  readonly respawnTimers = new Set<NodeJS.Timeout>();
  private readonly now: () => number;
  readonly metrics: TokenClusterMetrics;

  readonly options: TokenClusterOptions;
  readonly logger: Logger;
  private readonly setup: WorkerSetup;

  constructor(options: TokenClusterOptions, logger: Logger, setup: WorkerSetup, deps: TokenClusterDeps) {
    this.options = options;
    this.logger = logger;
    this.setup = setup;
    this.now = deps.now ?? Date.now;
    this.metrics = deps.metrics ?? createTokenClusterMetrics();
  }

  /** Sends `m` to `worker` unless its channel is closed (it is ending). */
  send(worker: Worker, m: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(m);
  }

  /** The whole service's figures: every serving worker's (those that answer in time) and the primary's. */
  async aggregatedMetrics(): Promise<{ contentType: string; text: string }> {
    const answers = await Promise.all(
      [...this.serving.values()].map((w) =>
        this.metricsAnswers.ask(
          (id) => this.send(w, { type: 'berth:metrics-json-req', id }),
          metricsTimeoutMs,
        ),
      ),
    );
    const all = answers.filter((a): a is MetricsJson => a !== undefined);
    all.push(await this.metrics.registry.getMetricsAsJSON());
    const registry = AggregatorRegistry.aggregate(all);
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  /** The service's health from every serving worker's answer (clusterHealth decides). */
  async health(): Promise<{ status: number; body: unknown }> {
    const answers = await Promise.all(
      [...this.serving.values()].map((w) =>
        this.healthAnswers.ask((id) => this.send(w, { type: 'berth:health-req', id }), healthTimeoutMs),
      ),
    );
    return clusterHealth(answers, this.options.workers, this.stopping);
  }

  /** A worker's message: an answer to a question asked, or its own question for the figures. */
  onMessage(worker: Worker, m: WorkerMessage): void {
    switch (m.type) {
      case 'berth:health-res':
        this.healthAnswers.answer(m.id, { status: m.status, body: m.body });
        return;
      case 'berth:metrics-json-res':
        this.metricsAnswers.answer(m.id, m.metrics);
        return;
      case 'berth:metrics-req':
        this.aggregatedMetrics().then(
          (r) => this.send(worker, { type: 'berth:metrics-res', id: m.id, ...r }),
          (err: unknown) => this.send(worker, { type: 'berth:metrics-res', id: m.id, error: errorText(err) }),
        );
        return;
      case 'berth:ready':
      case 'berth:failed':
        return; // handled by whoever forked the worker
    }
  }

  /** Forks a worker and resolves when it serves (then it is in `serving`), or rejects with why not. */
  fork(): Promise<{ worker: Worker; ready: Ready }> {
    return new Promise((resolve, reject) => {
      const worker = cluster.fork({ [workerSetupVariable]: JSON.stringify(this.setup) });
      let failure: string | undefined;
      const onMsg = (m: unknown) => {
        if (!isWorkerMessage(m)) return;
        if (m.type === 'berth:failed') failure = m.error;
        if (m.type !== 'berth:ready') return;
        worker.off('message', onMsg);
        worker.off('exit', onEarlyExit);
        this.serving.set(worker.id, worker);
        this.metrics.workers.set(this.serving.size);
        worker.once('exit', (code, signal) => this.onExit(worker, code, signal));
        resolve({ worker, ready: m });
      };
      const onEarlyExit = (code: number | null, signal: string | null) =>
        rejectWithLastWord(worker, () => failure, code, signal, reject);
      worker.on('message', onMsg);
      worker.once('exit', onEarlyExit);
    });
  }

  /** Forks a replacement after `nextRespawn`'s delay (unless stopping by then); retries one that fails. */
  replace(): void {
    const next = nextRespawn(this.exitTimes, this.now());
    this.exitTimes = next.exitTimes;
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      if (this.stopping) return;
      this.fork().then(
        ({ worker }) =>
          this.logger.info('token service worker replaced', {
            event: 'worker.replaced',
            worker: worker.id,
            pid: worker.process.pid,
          }),
        (err: unknown) => {
          this.logger.error('a replacement worker failed to start', {
            event: 'worker.failed',
            error: errorText(err),
          });
          if (!this.stopping) this.replace();
        },
      );
    }, next.delayMs);
    this.respawnTimers.add(timer);
  }

  /** A serving worker ended: it leaves `serving`; unless stopping, it is counted, logged and replaced. */
  onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.serving.delete(worker.id);
    this.metrics.workers.set(this.serving.size);
    const decision = workerExitDecision(this.stopping, code, signal);
    if (!decision.replace) return;
    this.metrics.workerExits.inc({ reason: decision.reason });
    this.logger.error('token service worker ended; replacing it', {
      event: 'worker.exited',
      worker: worker.id,
      pid: worker.process.pid,
      reason: decision.reason,
    });
    this.replace();
  }

  /** Kills every worker of node:cluster at once (a failed start, or past the stop's margin). */
  killAll(): void {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
  }

  /** Forks every worker; the first one's `ready`, or (every worker killed) the first failure. */
  async startWorkers(): Promise<Ready> {
    try {
      const results = await Promise.allSettled(
        Array.from({ length: this.options.workers }, () => this.fork()),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return (results[0] as PromiseFulfilledResult<{ ready: Ready }>).value.ready;
    } catch (err) {
      this.stopping = true;
      this.killAll();
      throw err;
    }
  }

  /**
   * Stops every worker (each answers what is in flight for `graceMs`; those left after the
   * margin are killed), then gives up the questions still waiting.
   */
  async stopWorkers(graceMs: number): Promise<void> {
    for (const t of this.respawnTimers) clearTimeout(t);
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    const exited = Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
          }),
      ),
    );
    for (const w of workers) this.send(w, { type: 'berth:shutdown', graceMs });
    const killer = setTimeout(() => this.killAll(), graceMs + exitMarginMs);
    await exited;
    clearTimeout(killer);
    this.healthAnswers.abandon();
    this.metricsAnswers.abandon();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A worker ended before it served: rejects with why (its `berth:failed` message, which may still
 * be in the channel: read it first, up to a second, else its exit code or signal).
 */
function rejectWithLastWord(
  worker: Worker,
  failure: () => string | undefined,
  code: number | null,
  signal: string | null,
  reject: (err: Error) => void,
): void {
  const fail = () =>
    reject(
      new TokenServiceConfigError(
        failure() ?? `a token service worker exited before it served (${exitReason(code, signal)})`,
      ),
    );
  if (failure() === undefined && worker.isConnected()) {
    const cap = setTimeout(fail, 1_000);
    worker.once('disconnect', () => {
      clearTimeout(cap);
      fail();
    });
  } else fail();
}

/** The health listener's routes: `/healthz` (`/readyz`) and `/metrics`, from the workers. */
function healthRequestListener(primary: TokenClusterPrimary): http.RequestListener {
  return (req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    const reply = (status: number, contentType: string, body: string) => {
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const answer =
      route === '/healthz' || route === '/readyz'
        ? primary.health().then((h) => reply(h.status, 'application/json', JSON.stringify(h.body)))
        : route === '/metrics'
          ? primary.aggregatedMetrics().then((m) => reply(200, m.contentType, m.text))
          : Promise.resolve(reply(404, 'application/json', JSON.stringify({ error: 'not found' })));
    answer.catch((err: unknown) => {
      primary.logger.error('token service health request failed', {
        event: 'request.error',
        path: route,
        error: errorText(err),
      });
      if (!res.headersSent) reply(500, 'application/json', JSON.stringify({ error: 'internal error' }));
    });
  };
}

/** Starts the health listener; if it cannot listen, every worker is killed and the error thrown. */
async function startHealthListener(
  primary: TokenClusterPrimary,
  address: ListenAddress,
): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(healthRequestListener(primary));
  try {
    const port = await listen(server, address);
    return { server, url: `http://${urlHost(address.host)}:${port}` };
  } catch (err) {
    primary.stopping = true;
    primary.killAll();
    throw err;
  }
}

/** The worker's setup from the service's configuration, and node:cluster's for forking it. */
function setupWorkers(options: TokenClusterOptions): WorkerSetup {
  const { healthListen, ...workerConfig } = options.config;
  cluster.setupPrimary({
    exec: workerEntry(),
    args: [],
    execArgv: [
      ...workerExecArgv(process.execArgv),
      ...(options.workerHeapMiB ? [`--max-old-space-size=${options.workerHeapMiB}`] : []),
    ],
    serialization: 'json',
  });
  return { config: workerConfig, logLevel: options.logLevel, metricsOnMain: healthListen === undefined };
}

/**
 * Starts the cluster: forks the workers and waits until each serves, then the health listener
 * (when configured); logs `service.started`.
 */
export async function startTokenCluster(
  options: TokenClusterOptions,
  deps: TokenClusterDeps,
): Promise<RunningTokenCluster> {
  const primary = new TokenClusterPrimary(options, deps.logger, setupWorkers(options), deps);
  cluster.on('message', (worker, m: unknown) => {
    if (isWorkerMessage(m)) primary.onMessage(worker, m);
  });
  const first = await primary.startWorkers();
  primary.started = true;
  const healthListen = options.config.healthListen;
  const health = healthListen ? await startHealthListener(primary, healthListen) : undefined;
  deps.logger.info('token service started', {
    event: 'service.started',
    url: first.url,
    healthUrl: health?.url,
    workers: options.workers,
    workerPids: [...primary.serving.values()].map((w) => w.process.pid),
    issuer: options.config.issuer,
    service: options.config.service,
    keyId: first.keyId,
    ttlSeconds: Math.round(options.config.ttlMs / 1000),
  });
  return {
    url: first.url,
    port: first.port,
    ...(health ? { healthUrl: health.url } : {}),
    workerPids: () => [...primary.serving.values()].map((w) => w.process.pid ?? 0),
    stop: async (graceMs) => {
      if (!primary.started) return;
      primary.started = false;
      primary.stopping = true;
      await primary.stopWorkers(graceMs);
      if (health) await closeServer(health.server);
    },
  };
}

function closeServer(s: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
