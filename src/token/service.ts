// Wires the token service from its configuration: reads the signing key, the TLS material and
// the credential store from files, and starts the listeners and the store reloading.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'winston';
import { createTokenMetrics, type TokenMetrics } from './metrics.ts';
import { startTokenServer, type MetricsText, type RunningTokenServer } from './server.ts';
import { type ListenAddress } from '../util/listen.ts';
import { TokenSigner } from './signer.ts';
import { CredentialStoreFile } from './store-file.ts';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { KubeClient } from '../runtime/kube/client.ts';
import { loadKubeAccess } from '../runtime/kube/config.ts';
import { TokenReviewer } from './token-review.ts';

export interface TokenServiceConfig {
  listen: ListenAddress;
  healthListen?: ListenAddress;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  signingKeyPath: string;
  /** The certificate the registry trusts for the key; checked against the key at start. */
  signingCertPath?: string;
  storePath: string;
  issuer: string;
  service: string;
  ttlMs: number;
  /** How often the store file is re-read (besides folder change events). */
  storePollMs: number;
  /**
   * ServiceAccount tokens (docs/identity.md): the audience they must carry. Absent: none are
   * accepted, and the service makes no Kubernetes API request.
   */
  serviceAccountAudience?: string;
  /** How long a TokenReview's decision is kept at most (default 30 s). */
  serviceAccountCacheMs?: number;
  /** The kubeconfig for TokenReviews; default KUBECONFIG, ~/.kube/config, else in-cluster. */
  kubeconfigPath?: string;
}

export interface TokenServiceDeps {
  logger: Logger;
  clock?: Pick<Clock, 'now'>;
  metrics?: TokenMetrics;
  /** Where /metrics comes from (a cluster worker's: the primary); default this process's registry. */
  metricsText?: () => Promise<MetricsText>;
  /** Serve /metrics on the main listener (default: when there is no health listener). */
  metricsOnMain?: boolean;
  /** The event of the "started" log line; default `service.started` (a worker says `worker.started`). */
  startedEvent?: string;
  /** Posts a TokenReview (tests); default: to the API server of `config.kubeconfigPath`. */
  postTokenReview?: (body: Record<string, unknown>) => Promise<unknown>;
}

export interface RunningTokenService {
  server: RunningTokenServer;
  storeFile: CredentialStoreFile;
  signer: TokenSigner;
  metrics: TokenMetrics;
  /** Stops reloading and closes the listeners, letting requests in flight finish for `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export class TokenServiceConfigError extends Error {
  override name = 'TokenServiceConfigError';
}

async function readText(what: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new TokenServiceConfigError(
      `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/** The TLS certificate and key (PEM), when both are configured. */
async function readTls(config: TokenServiceConfig): Promise<{ certPem: string; keyPem: string } | undefined> {
  if (!config.tlsCertPath || !config.tlsKeyPath) return undefined;
  return {
    certPem: await readText('TLS certificate', config.tlsCertPath),
    keyPem: await readText('TLS key', config.tlsKeyPath),
  };
}

/**
 * How TokenReviews reach the API server: one keep-alive client, 5 s a request. Without API access
 * (no kubeconfig, not in a cluster) the service still starts and serves berth's own credentials;
 * every ServiceAccount token is then answered 503 (the reviewer fails closed and counts it), and
 * the reason is logged once here.
 */
function tokenReviewPoster(
  config: TokenServiceConfig,
  logger: Logger,
): (body: Record<string, unknown>) => Promise<unknown> {
  let client: KubeClient;
  try {
    client = new KubeClient(loadKubeAccess(config.kubeconfigPath));
  } catch (err) {
    const reason = `ServiceAccount tokens need Kubernetes API access for TokenReviews: ${(err as Error).message}`;
    logger.error('ServiceAccount tokens cannot be reviewed; they are refused with 503', {
      event: 'token_review.unavailable',
      reason,
    });
    return () => Promise.reject(new TokenServiceConfigError(reason));
  }
  return (body) =>
    client.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { body, timeoutMs: 5_000 });
}

/** The ServiceAccount token reviewer, when the configuration names an audience. */
function createReviewer(
  config: TokenServiceConfig,
  deps: TokenServiceDeps,
  clock: Pick<Clock, 'now'>,
  metrics: TokenMetrics,
): TokenReviewer | undefined {
  if (config.serviceAccountAudience === undefined) return undefined;
  return new TokenReviewer({
    audience: config.serviceAccountAudience,
    post: deps.postTokenReview ?? tokenReviewPoster(config, deps.logger),
    clock,
    logger: deps.logger,
    metrics,
    ...(config.serviceAccountCacheMs !== undefined ? { boundMs: config.serviceAccountCacheMs } : {}),
  });
}

/**
 * Reads the key, the TLS material and the store (each unreadable or invalid one is a
 * TokenServiceConfigError or CredentialStoreError), starts the listeners, then the store's
 * reloading; logs the started line (`deps.startedEvent`).
 */
export async function startTokenService(
  config: TokenServiceConfig,
  deps: TokenServiceDeps,
): Promise<RunningTokenService> {
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createTokenMetrics();
  if ((config.tlsCertPath === undefined) !== (config.tlsKeyPath === undefined))
    throw new TokenServiceConfigError('TLS needs both a certificate and a key (or neither)');
  const signer = new TokenSigner(
    await readText('token signing key', config.signingKeyPath),
    config.signingCertPath ? await readText('token signing certificate', config.signingCertPath) : undefined,
  );
  const tls = await readTls(config);
  const reviewer = createReviewer(config, deps, clock, metrics);
  const storeFile = new CredentialStoreFile(config.storePath, { logger: deps.logger, metrics, clock });
  await storeFile.load();
  const server = await startTokenServer(
    { issuer: config.issuer, service: config.service, ttlMs: config.ttlMs },
    {
      clock,
      signer,
      logger: deps.logger,
      metrics,
      storeFile,
      reviewer,
      ...(deps.metricsText ? { metricsText: deps.metricsText } : {}),
    },
    {
      listen: config.listen,
      ...(tls ? { tls } : {}),
      ...(config.healthListen ? { healthListen: config.healthListen } : {}),
      ...(deps.metricsOnMain !== undefined ? { metricsOnMain: deps.metricsOnMain } : {}),
    },
  );
  storeFile.start(config.storePollMs);
  deps.logger.info('token service started', {
    event: deps.startedEvent ?? 'service.started',
    url: server.url,
    healthUrl: server.healthUrl,
    issuer: config.issuer,
    service: config.service,
    keyId: signer.keyId,
    ttlSeconds: Math.round(config.ttlMs / 1000),
    serviceAccountAudience: config.serviceAccountAudience,
    serviceAccountCacheSeconds: reviewer ? reviewer.boundMs / 1000 : undefined,
  });
  return {
    server,
    storeFile,
    signer,
    metrics,
    stop: async (graceMs) => {
      storeFile.stop();
      await server.close(graceMs);
    },
  };
}
