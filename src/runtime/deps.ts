// The dependencies object: everything a controller needs, built once in main.ts and passed
// down explicitly (no module-level singletons), so tests can build their own.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from './clock.ts';
import { KubeEventRecorder, type EventRecorder } from './events.ts';
import { KubeClient } from './kube/client.ts';
import type { KubeAccess } from './kube/config.ts';
import { createLogger, type Logger, type LogLevel } from './logger.ts';
import { RuntimeMetrics } from './metrics.ts';

export interface Deps {
  /** Where the API server is and how to authenticate (src/runtime/kube/config.ts). */
  kubeConfig: KubeAccess;
  /** JSON client for any resource (apply, status, lists and watches as wire objects). */
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  /** The prom-client Registry that /metrics serves; controllers register their own metrics on it. */
  registry: Registry;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  /** This replica's identity (leader election, Event reportingInstance). */
  identity: string;
}

export interface DepsOptions {
  kubeConfig: KubeAccess;
  logLevel?: LogLevel;
  logger?: Logger;
  clock?: Clock;
  identity?: string;
  /** Node's default process metrics (default true). */
  defaultMetrics?: boolean;
}

export function buildDeps(options: DepsOptions): Deps {
  const kc = options.kubeConfig;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(options.logLevel ?? 'info');
  const registry = new Registry();
  const metrics = new RuntimeMetrics(registry, { defaultMetrics: options.defaultMetrics });
  const identity = options.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
  const client = new KubeClient(kc);
  return {
    kubeConfig: kc,
    client,
    clock,
    logger,
    registry,
    metrics,
    events: new KubeEventRecorder({
      client,
      clock,
      logger,
      controller: 'berth.dev/operator',
      instance: identity,
    }),
    identity,
  };
}
