// The token service's Prometheus metrics, on their own registry (no module-level singleton).
// With several workers (node:cluster), each worker counts its own and the primary serves their
// sum (prom-client's AggregatorRegistry: counters and histograms add up, gauges say how).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type RefusalReason =
  | 'no-credentials'
  | 'unknown-user'
  | 'wrong-secret'
  | 'expired'
  | 'not-yet-valid'
  | 'bad-request'
  | 'unknown-service'
  | 'unsupported-grant'
  | 'invalid-token'
  | 'review-unavailable';

export interface TokenMetrics {
  registry: Registry;
  issued: Counter<'principal'>;
  refused: Counter<'reason'>;
  deniedActions: Counter;
  duration: Histogram<'outcome'>;
  storeReloads: Counter<'result'>;
  storeCredentials: Gauge;
  storeEntriesSkipped: Counter;
  reviews: Counter<'result'>;
  reviewDuration: Histogram;
}

/** The TokenReview figures (docs/identity.md). */
function reviewMetrics(registers: Registry[]): Pick<TokenMetrics, 'reviews' | 'reviewDuration'> {
  return {
    reviews: new Counter({
      name: 'berth_token_reviews_total',
      help:
        'ServiceAccount tokens judged, by result: authenticated or refused by a TokenReview, cached (a kept decision), ' +
        'prechecked (refused unasked: not a JWT, expired, another audience), error (the API server did not answer; refused).',
      labelNames: ['result'],
      registers,
    }),
    reviewDuration: new Histogram({
      name: 'berth_token_review_duration_seconds',
      help: 'Time the API server took to answer a TokenReview (or to fail).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}

export function createTokenMetrics(options: { defaultMetrics?: boolean } = {}): TokenMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    issued: new Counter({
      name: 'berth_token_issued_total',
      help: 'Tokens issued, by principal kind (credential, serviceAccount or anonymous).',
      labelNames: ['principal'],
      registers,
    }),
    refused: new Counter({
      name: 'berth_token_refused_total',
      help: 'Token requests refused, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    deniedActions: new Counter({
      name: 'berth_token_denied_actions_total',
      help: 'Requested actions left out of issued tokens because the credential does not hold them.',
      registers,
    }),
    duration: new Histogram({
      name: 'berth_token_request_duration_seconds',
      help: 'Time to answer a token request.',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    storeReloads: new Counter({
      name: 'berth_token_store_reloads_total',
      help: 'Credential store (re)loads, by result (ok or error; on error the previous store stays in force).',
      labelNames: ['result'],
      registers,
    }),
    storeCredentials: new Gauge({
      name: 'berth_token_store_credentials',
      help: 'Credentials in the store currently in force.',
      // Every worker holds the whole store: across workers this is the largest, not the sum.
      aggregator: 'max',
      registers,
    }),
    storeEntriesSkipped: new Counter({
      name: 'berth_token_store_entries_skipped_total',
      help: 'Invalid credential store entries left out when a store was loaded (the rest of the store stays in force).',
      registers,
    }),
    ...reviewMetrics(registers),
  };
}

/** The cluster primary's own figures (the workers' are aggregated beside them). */
export interface TokenClusterMetrics {
  registry: Registry;
  workers: Gauge;
  workerExits: Counter<'reason'>;
}

export function createTokenClusterMetrics(): TokenClusterMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    workers: new Gauge({
      name: 'berth_token_workers',
      help: 'Worker processes serving /token now.',
      registers,
    }),
    workerExits: new Counter({
      name: 'berth_token_worker_exits_total',
      help: 'Worker processes that ended without being asked to (each is replaced), by reason (exit code or signal).',
      labelNames: ['reason'],
      registers,
    }),
  };
}
