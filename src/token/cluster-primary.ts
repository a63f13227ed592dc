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
import { recentExits, respawnDelayMs } from './respawn.ts';
import { listen, urlHost } from './server.ts';
import { TokenServiceConfigError, type TokenServiceConfig } from './service.ts';

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

export async function startTokenCluster(
  options: TokenClusterOptions,
  deps: TokenClusterDeps,
): Promise<RunningTokenCluster> {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? createTokenClusterMetrics();
  const { healthListen, ...workerConfig } = options.config;
  const setup: WorkerSetup = {
    config: workerConfig,
    logLevel: options.logLevel,
    metricsOnMain: healthListen === undefined,
  };
  cluster.setupPrimary({
    exec: workerEntry(),
    args: [],
    execArgv: [
      ...workerExecArgv(process.execArgv),
      ...(options.workerHeapMiB ? [`--max-old-space-size=${options.workerHeapMiB}`] : []),
    ],
    serialization: 'json',
  });

  const serving = new Map<number, Worker>(); // worker id → worker, once ready
  const healthAnswers = new PendingRequests<WorkerHealthAnswer>();
  const metricsAnswers = new PendingRequests<MetricsJson>();
  let stopping = false;
  let started = false;
  let exitTimes: number[] = [];
  const respawnTimers = new Set<NodeJS.Timeout>();

  const send = (worker: Worker, m: PrimaryMessage) => {
    if (worker.isConnected()) worker.send(m);
  };

  const aggregatedMetrics = async (): Promise<{ contentType: string; text: string }> => {
    const answers = await Promise.all(
      [...serving.values()].map((w) =>
        metricsAnswers.ask((id) => send(w, { type: 'berth:metrics-json-req', id }), metricsTimeoutMs),
      ),
    );
    const all = answers.filter((a): a is MetricsJson => a !== undefined);
    all.push(await metrics.registry.getMetricsAsJSON());
    const registry = AggregatorRegistry.aggregate(all);
    return { contentType: registry.contentType, text: await registry.metrics() };
  };

  const health = async () => {
    const answers = await Promise.all(
      [...serving.values()].map((w) =>
        healthAnswers.ask((id) => send(w, { type: 'berth:health-req', id }), healthTimeoutMs),
      ),
    );
    return clusterHealth(answers, options.workers, stopping);
  };

  const onMessage = (worker: Worker, m: WorkerMessage) => {
    switch (m.type) {
      case 'berth:health-res':
        healthAnswers.answer(m.id, { status: m.status, body: m.body });
        return;
      case 'berth:metrics-json-res':
        metricsAnswers.answer(m.id, m.metrics);
        return;
      case 'berth:metrics-req':
        aggregatedMetrics().then(
          (r) => send(worker, { type: 'berth:metrics-res', id: m.id, ...r }),
          (err: unknown) =>
            send(worker, {
              type: 'berth:metrics-res',
              id: m.id,
              error: err instanceof Error ? err.message : String(err),
            }),
        );
        return;
      case 'berth:ready':
      case 'berth:failed':
        return; // handled by whoever forked the worker
    }
  };
  cluster.on('message', (worker, m: unknown) => {
    if (isWorkerMessage(m)) onMessage(worker, m);
  });

  /** Forks a worker and resolves when it serves (or rejects with why it could not). */
  const fork = () =>
    new Promise<{ worker: Worker; ready: Extract<WorkerMessage, { type: 'berth:ready' }> }>(
      (resolve, reject) => {
        const worker = cluster.fork({ [workerSetupVariable]: JSON.stringify(setup) });
        let failure: string | undefined;
        const onMsg = (m: unknown) => {
          if (!isWorkerMessage(m)) return;
          if (m.type === 'berth:failed') failure = m.error;
          if (m.type === 'berth:ready') {
            worker.off('message', onMsg);
            worker.off('exit', onEarlyExit);
            serving.set(worker.id, worker);
            metrics.workers.set(serving.size);
            worker.once('exit', (code, signal) => onExit(worker, code, signal));
            resolve({ worker, ready: m });
          }
        };
        const onEarlyExit = (code: number | null, signal: string | null) => {
          const fail = () =>
            reject(
              new TokenServiceConfigError(
                failure ?? `a token service worker exited before it served (${signal ?? `exit ${code}`})`,
              ),
            );
          // Its last message (why it failed) may still be in the channel: read it first.
          if (failure === undefined && worker.isConnected()) {
            const cap = setTimeout(fail, 1_000);
            worker.once('disconnect', () => {
              clearTimeout(cap);
              fail();
            });
          } else fail();
        };
        worker.on('message', onMsg);
        worker.once('exit', onEarlyExit);
      },
    );

  const replace = () => {
    const t = now();
    exitTimes = recentExits([...exitTimes, t], t);
    const delay = respawnDelayMs(exitTimes, t);
    const timer = setTimeout(() => {
      respawnTimers.delete(timer);
      if (stopping) return;
      fork().then(
        ({ worker }) =>
          logger.info('token service worker replaced', {
            event: 'worker.replaced',
            worker: worker.id,
            pid: worker.process.pid,
          }),
        (err: unknown) => {
          logger.error('a replacement worker failed to start', {
            event: 'worker.failed',
            error: err instanceof Error ? err.message : String(err),
          });
          if (!stopping) replace();
        },
      );
    }, delay);
    respawnTimers.add(timer);
  };

  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    serving.delete(worker.id);
    metrics.workers.set(serving.size);
    if (stopping) return;
    const reason = signal ?? `exit ${code}`;
    metrics.workerExits.inc({ reason });
    logger.error('token service worker ended; replacing it', {
      event: 'worker.exited',
      worker: worker.id,
      pid: worker.process.pid,
      reason,
    });
    replace();
  };

  const killAll = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
  };

  let first: Awaited<ReturnType<typeof fork>>['ready'];
  try {
    const forks = Array.from({ length: options.workers }, () => fork());
    const results = await Promise.allSettled(forks);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    first = (results[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof fork>>>).value.ready;
  } catch (err) {
    stopping = true;
    killAll();
    throw err;
  }
  started = true;

  let healthServer: http.Server | undefined;
  let healthUrl: string | undefined;
  if (healthListen) {
    const server = http.createServer((req, res) => {
      const route = (req.url ?? '/').split('?')[0];
      const reply = (status: number, contentType: string, body: string) => {
        res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      const answer =
        route === '/healthz' || route === '/readyz'
          ? health().then((h) => reply(h.status, 'application/json', JSON.stringify(h.body)))
          : route === '/metrics'
            ? aggregatedMetrics().then((m) => reply(200, m.contentType, m.text))
            : Promise.resolve(reply(404, 'application/json', JSON.stringify({ error: 'not found' })));
      answer.catch((err: unknown) => {
        logger.error('token service health request failed', {
          event: 'request.error',
          path: route,
          error: err instanceof Error ? err.message : String(err),
        });
        if (!res.headersSent) reply(500, 'application/json', JSON.stringify({ error: 'internal error' }));
      });
    });
    let port: number;
    try {
      port = await listen(server, healthListen);
    } catch (err) {
      stopping = true;
      killAll();
      throw err;
    }
    healthServer = server;
    healthUrl = `http://${urlHost(healthListen.host)}:${port}`;
  }

  logger.info('token service started', {
    event: 'service.started',
    url: first.url,
    healthUrl,
    workers: options.workers,
    workerPids: [...serving.values()].map((w) => w.process.pid),
    issuer: options.config.issuer,
    service: options.config.service,
    keyId: first.keyId,
    ttlSeconds: Math.round(options.config.ttlMs / 1000),
  });

  return {
    url: first.url,
    port: first.port,
    ...(healthUrl ? { healthUrl } : {}),
    workerPids: () => [...serving.values()].map((w) => w.process.pid ?? 0),
    stop: async (graceMs) => {
      if (!started) return;
      started = false;
      stopping = true;
      for (const t of respawnTimers) clearTimeout(t);
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
      for (const w of workers) send(w, { type: 'berth:shutdown', graceMs });
      const killer = setTimeout(killAll, graceMs + exitMarginMs);
      await exited;
      clearTimeout(killer);
      healthAnswers.abandon();
      metricsAnswers.abandon();
      if (healthServer) {
        const s = healthServer;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
      }
    },
  };
}
