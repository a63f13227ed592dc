// One worker of the token service's cluster: the same token service as a single process (its own
// listener on the shared port, its own credential store reloading, its own signer), answering
// the primary's questions (health, figures) and stopping when it is told to, when it is
// signalled, or when the primary is gone.
import type { Logger } from 'winston';
import {
  isPrimaryMessage,
  PendingRequests,
  type PrimaryMessage,
  type WorkerMessage,
} from './cluster-messages.ts';
import { createTokenMetrics, type TokenMetrics } from './metrics.ts';
import { storeHealth, type MetricsText } from './server.ts';
import { startTokenService, type RunningTokenService, type TokenServiceConfig } from './service.ts';

/** The environment variable that carries a worker's setup. */
export const workerSetupVariable = 'BERTH_TOKEN_WORKER';

/** What the primary hands a worker (through its environment, as JSON). */
export interface WorkerSetup {
  /** The service's configuration without `healthListen` (the primary serves it). */
  config: TokenServiceConfig;
  logLevel: string;
  /** Whether /metrics is on the main listener (there is no health listener to serve it). */
  metricsOnMain: boolean;
}

/** The worker's side of the IPC channel. */
export interface WorkerChannel {
  /** Sends a message; resolves once it is handed to the channel (so exiting then loses nothing). */
  send(message: WorkerMessage): Promise<void>;
  onMessage(listener: (message: unknown) => void): void;
  /** The primary is gone (its end of the channel closed). */
  onDisconnect(listener: () => void): void;
}

export interface WorkerDeps {
  logger: Logger;
  channel: WorkerChannel;
  /** Ends the process with this code. */
  exit(code: number): void;
}

/** How long a worker waits for the primary's /metrics answer. */
const metricsTimeoutMs = 5_000;
/** The grace a worker gives requests in flight when the primary is gone or it is signalled. */
export const workerGraceMs = 5_000;

/** What answering the primary needs: the channel, this worker's figures and service, stopping. */
interface WorkerContext {
  channel: WorkerChannel;
  metrics: TokenMetrics;
  metricsAnswers: PendingRequests<MetricsText | { error: string }>;
  /** The service, once it started. */
  service(): RunningTokenService | undefined;
  stop(graceMs: number): Promise<void>;
  exit(code: number): void;
}

/** The whole service's figures, asked of the primary (for /metrics on the main listener). */
function metricsFromPrimary(
  channel: WorkerChannel,
  answers: PendingRequests<MetricsText | { error: string }>,
): () => Promise<MetricsText> {
  return async () => {
    const answer = await answers.ask(
      (id) => void channel.send({ type: 'berth:metrics-req', id }),
      metricsTimeoutMs,
    );
    if (answer === undefined) throw new Error('the cluster primary did not answer with the metrics');
    if ('error' in answer) throw new Error(answer.error);
    return answer;
  };
}

/** Answers one of the primary's messages: health, figures, a metrics answer, or shutdown. */
async function answerPrimary(m: PrimaryMessage, ctx: WorkerContext): Promise<void> {
  switch (m.type) {
    case 'berth:health-req': {
      const service = ctx.service();
      if (!service) return;
      const h = storeHealth(service.storeFile);
      await ctx.channel.send({ type: 'berth:health-res', id: m.id, status: h.status, body: h.body });
      return;
    }
    case 'berth:metrics-json-req':
      await ctx.channel.send({
        type: 'berth:metrics-json-res',
        id: m.id,
        metrics: await ctx.metrics.registry.getMetricsAsJSON(),
      });
      return;
    case 'berth:metrics-res':
      ctx.metricsAnswers.answer(m.id, 'error' in m ? { error: m.error } : m);
      return;
    case 'berth:shutdown':
      await ctx.stop(m.graceMs);
      ctx.exit(0);
      return;
  }
}

/**
 * Runs one worker: answers the primary, stops when told to or when the primary is gone, starts
 * the token service and says `berth:ready` (or `berth:failed` with why, then exits 1).
 */
export async function runTokenWorker(
  setup: WorkerSetup,
  deps: WorkerDeps,
): Promise<{ stop(graceMs: number): Promise<void> }> {
  const { channel, logger } = deps;
  const metrics = createTokenMetrics();
  const metricsAnswers = new PendingRequests<MetricsText | { error: string }>();
  let service: RunningTokenService | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number): Promise<void> => {
    stopping ??= (async () => {
      logger.info('token service worker stopping', { event: 'worker.stopping', graceMs });
      metricsAnswers.abandon();
      await service?.stop(graceMs);
    })();
    return stopping;
  };
  const ctx: WorkerContext = {
    channel,
    metrics,
    metricsAnswers,
    service: () => service,
    stop,
    exit: deps.exit,
  };
  channel.onMessage((m: unknown) => {
    if (isPrimaryMessage(m)) void answerPrimary(m, ctx);
  });
  channel.onDisconnect(() => {
    logger.warn('the cluster primary is gone; stopping', { event: 'worker.orphaned' });
    void stop(workerGraceMs).then(() => deps.exit(0));
  });
  try {
    service = await startTokenService(setup.config, {
      logger,
      metrics,
      metricsText: metricsFromPrimary(channel, metricsAnswers),
      metricsOnMain: setup.metricsOnMain,
      startedEvent: 'worker.started',
    });
  } catch (err) {
    // Configuration errors name files and codes, never secret material.
    await channel.send({ type: 'berth:failed', error: err instanceof Error ? err.message : String(err) });
    deps.exit(1);
    return { stop };
  }
  await channel.send({
    type: 'berth:ready',
    url: service.server.url,
    port: service.server.port,
    keyId: service.signer.keyId,
  });
  return { stop };
}
