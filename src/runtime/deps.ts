// The dependencies object: everything a controller needs, built once in main.ts and passed
// down explicitly (no module-level singletons), so tests can build their own.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from './clock.ts';
import { KubeEventRecorder, type EventRecorder } from './events.ts';
import { KubeClient } from './kube/client.ts';
import { createLogger, type Logger, type LogLevel } from './logger.ts';
import { RuntimeMetrics } from './metrics.ts';

export interface Deps {
  kubeConfig: k8s.KubeConfig;
  /** JSON client for any resource (apply, status, lists as wire objects). */
  client: KubeClient;
  /** Typed clients, for code that prefers them. */
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  custom: k8s.CustomObjectsApi;
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
  kubeConfig: k8s.KubeConfig;
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
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
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
