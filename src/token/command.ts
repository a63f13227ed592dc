// `berth token-service`: flags (or BERTH_TOKEN_* environment variables) → a running token service
// until SIGTERM/SIGINT: one process with --workers=1, else a node:cluster primary and its workers
// (see cluster-primary.ts), by default one worker per CPU the process may use.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { readFlags, UsageError } from '../util/flags.ts';
import { parseDuration } from '../util/duration.ts';
import { startTokenCluster } from './cluster-primary.ts';
import { createProgramLogger, endLogger } from '../runtime/logger.ts';
import { parseListenAddress } from '../util/listen.ts';
import { startTokenService, type TokenServiceConfig } from './service.ts';
import { defaultWorkerCount, readProcessLimits, workerHeapMiB } from './worker-count.ts';

/** How long requests in flight may take to finish after SIGTERM. */
export const shutdownGraceMs = 5_000;
/** More workers than this is a typo, not a machine. */
const maxWorkers = 256;

export const tokenServiceUsage = `usage: berth token-service [flags]

The Docker/OCI token endpoint that a berth Registry's auth.token configuration points to.

flags (each also read from the environment variable in brackets):
  --listen=HOST:PORT         address of /token            [BERTH_TOKEN_LISTEN]      default 0.0.0.0:5001
  --health-listen=HOST:PORT  plain HTTP /healthz, /metrics [BERTH_TOKEN_HEALTH_LISTEN] default: none (on --listen)
  --tls-cert=PATH            serving certificate (PEM)    [BERTH_TOKEN_TLS_CERT]    default: plain HTTP
  --tls-key=PATH             serving key (PEM)            [BERTH_TOKEN_TLS_KEY]
  --signing-key=PATH         token signing key (EC, PEM)  [BERTH_TOKEN_SIGNING_KEY] required
  --signing-cert=PATH        its certificate (the registry's rootcertbundle), checked against the key
                                                          [BERTH_TOKEN_SIGNING_CERT]
  --store=PATH               credential store (JSON)      [BERTH_TOKEN_STORE]       required
  --issuer=NAME              token issuer (auth.token.issuer)   [BERTH_TOKEN_ISSUER]  required
  --service=NAME             token audience (auth.token.service) [BERTH_TOKEN_SERVICE] required
  --ttl=DURATION             token lifetime               [BERTH_TOKEN_TTL]         default 5m
  --store-poll=DURATION      re-read interval of the store [BERTH_TOKEN_STORE_POLL] default 5s
  --workers=N|auto           worker processes (node:cluster); 1 runs a single process
                                                          [BERTH_TOKEN_WORKERS]     default auto: one per
                             CPU it may use (CPU affinity and the cgroup CPU limit, rounded down),
                             as many as the cgroup memory limit holds (96 MiB each beside 88 MiB)
  --service-account-audience=AUD  accept Kubernetes ServiceAccount tokens (username serviceaccount)
                             for this audience, validated by TokenReview
                                                          [BERTH_TOKEN_SA_AUDIENCE] default: none accepted
  --service-account-cache=DURATION  longest a TokenReview decision is kept
                                                          [BERTH_TOKEN_SA_CACHE]    default 30s
  --kubeconfig=PATH          API access for TokenReviews  [BERTH_TOKEN_KUBECONFIG]  default: in-cluster
  --log-level=LEVEL          error, warn, info, debug     [BERTH_TOKEN_LOG_LEVEL]   default info`;

export { UsageError };

const flags = {
  listen: 'BERTH_TOKEN_LISTEN',
  'health-listen': 'BERTH_TOKEN_HEALTH_LISTEN',
  'tls-cert': 'BERTH_TOKEN_TLS_CERT',
  'tls-key': 'BERTH_TOKEN_TLS_KEY',
  'signing-key': 'BERTH_TOKEN_SIGNING_KEY',
  'signing-cert': 'BERTH_TOKEN_SIGNING_CERT',
  store: 'BERTH_TOKEN_STORE',
  issuer: 'BERTH_TOKEN_ISSUER',
  service: 'BERTH_TOKEN_SERVICE',
  ttl: 'BERTH_TOKEN_TTL',
  'store-poll': 'BERTH_TOKEN_STORE_POLL',
  workers: 'BERTH_TOKEN_WORKERS',
  'service-account-audience': 'BERTH_TOKEN_SA_AUDIENCE',
  'service-account-cache': 'BERTH_TOKEN_SA_CACHE',
  kubeconfig: 'BERTH_TOKEN_KUBECONFIG',
  'log-level': 'BERTH_TOKEN_LOG_LEVEL',
} as const;

function duration(text: string, flag: string): number {
  try {
    const ms = parseDuration(text);
    if (ms < 1000) throw new UsageError(`--${flag} must be at least 1s`);
    return ms;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

function workerFlag(text: string | undefined): number | 'auto' {
  if (text === undefined || text === 'auto') return 'auto';
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > maxWorkers)
    throw new UsageError(`--workers must be auto or a number from 1 to ${maxWorkers}, got "${text}"`);
  return n;
}

/** The ServiceAccount token flags (docs/identity.md). */
function serviceAccountFlags(
  get: (flag: keyof typeof flags) => string | undefined,
): Pick<TokenServiceConfig, 'serviceAccountAudience' | 'serviceAccountCacheMs' | 'kubeconfigPath'> {
  const audience = get('service-account-audience');
  const cache = get('service-account-cache');
  const kubeconfig = get('kubeconfig');
  if (audience !== undefined && (audience === '' || /[\s,]/.test(audience)))
    throw new UsageError('--service-account-audience must be non-empty, without spaces or commas');
  if (audience === undefined && (cache !== undefined || kubeconfig !== undefined))
    throw new UsageError('--service-account-cache and --kubeconfig need --service-account-audience');
  return {
    ...(audience !== undefined ? { serviceAccountAudience: audience } : {}),
    ...(cache !== undefined ? { serviceAccountCacheMs: duration(cache, 'service-account-cache') } : {}),
    ...(kubeconfig !== undefined ? { kubeconfigPath: kubeconfig } : {}),
  };
}

/** Flags and environment → configuration. Pure (environment passed in). */
export function parseTokenServiceArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): { config: TokenServiceConfig; logLevel: string; workers: number | 'auto' } {
  const { get, required } = readFlags(argv, env, flags);
  const tlsCert = get('tls-cert');
  const tlsKey = get('tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const healthListen = get('health-listen');
  const signingCert = get('signing-cert');
  const logLevel = get('log-level') ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel))
    throw new UsageError(`--log-level must be error, warn, info or debug`);
  const config: TokenServiceConfig = {
    listen: parseListenAddress(get('listen') ?? '0.0.0.0:5001', 'listen'),
    signingKeyPath: required('signing-key'),
    storePath: required('store'),
    issuer: required('issuer'),
    service: required('service'),
    ttlMs: duration(get('ttl') ?? '5m', 'ttl'),
    storePollMs: duration(get('store-poll') ?? '5s', 'store-poll'),
  };
  if (healthListen) config.healthListen = parseListenAddress(healthListen, 'health-listen');
  if (tlsCert && tlsKey) {
    config.tlsCertPath = tlsCert;
    config.tlsKeyPath = tlsKey;
  }
  if (signingCert) config.signingCertPath = signingCert;
  Object.assign(config, serviceAccountFlags(get));
  return { config, logLevel, workers: workerFlag(get('workers')) };
}

function readSmallFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The worker count for `auto`: this machine's CPUs under this process's cgroup CPU and memory limits. */
export function autoWorkerCount(): number {
  return defaultWorkerCount(os.availableParallelism(), readProcessLimits(readSmallFile));
}

/** Runs the token service until SIGTERM or SIGINT; resolves with the exit code. */
export async function tokenServiceCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(tokenServiceUsage);
    return 0;
  }
  let parsed: ReturnType<typeof parseTokenServiceArgs>;
  try {
    parsed = parseTokenServiceArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`berth token-service: ${err.message}\n\n${tokenServiceUsage}`);
    return 2;
  }
  const logger = createProgramLogger('token-service', parsed.logLevel);
  const workers = parsed.workers === 'auto' ? autoWorkerCount() : parsed.workers;
  let stop: (graceMs: number) => Promise<void>;
  try {
    stop =
      workers === 1
        ? (await startTokenService(parsed.config, { logger })).stop
        : (
            await startTokenCluster(
              {
                config: parsed.config,
                logLevel: parsed.logLevel,
                workers,
                workerHeapMiB: workerHeapMiB(readProcessLimits(readSmallFile).memoryBytes, workers),
              },
              { logger },
            )
          ).stop;
  } catch (err) {
    logger.error('token service failed to start', { event: 'service.failed', error: (err as Error).message });
    await endLogger(logger);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('token service stopping', { event: 'service.stopping', signal });
  await stop(shutdownGraceMs);
  logger.info('token service stopped', { event: 'service.stopped' });
  await endLogger(logger);
  return 0;
}
