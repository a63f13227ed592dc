// Runs an operator process: Deps from the configuration, the health/metrics servers, the manager
// with the registered controllers, and graceful shutdown on SIGTERM/SIGINT (stop taking work,
// let in-flight reconciles finish within the deadline, release the Lease, exit 0).
import type { OperatorConfig } from './config/config.ts';
import { buildDeps, type Deps } from './runtime/deps.ts';
import { errorMessage } from './runtime/errors.ts';
import { KubeEventRecorder } from './runtime/events.ts';
import { loadKubeAccess, type KubeAccess } from './runtime/kube/config.ts';
import { Manager } from './runtime/manager.ts';
import { startServers, type HttpRoute } from './runtime/server.ts';

/** Registers the controllers; may return HTTP routes they serve (see src/controllers.ts). */
export type RegisterControllers = (
  deps: Deps,
  manager: Manager,
  config: OperatorConfig,
) => void | HttpRoute[];

export interface RunOptions {
  /** Resolves when the operator should stop (default: the first SIGTERM or SIGINT). */
  stopSignal?: Promise<string>;
}

export function loadKubeConfig(file: string | undefined): KubeAccess {
  return loadKubeAccess(file);
}

function signals(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGTERM', on('SIGTERM'));
    process.once('SIGINT', on('SIGINT'));
  });
}

export async function runOperator(
  config: OperatorConfig,
  register: RegisterControllers,
  options: RunOptions = {},
): Promise<number> {
  const deps = buildDeps({ kubeConfig: loadKubeConfig(config.kubeconfig), logLevel: config.logLevel });
  const log = deps.logger;
  const manager = new Manager(deps, {
    namespaces: config.watchNamespaces,
    workers: config.concurrency,
    resyncPeriodMs: config.resyncPeriodMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    leaderElection: config.leaderElect
      ? {
          namespace: config.leaderElectionNamespace,
          name: config.leaderElectionId,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        }
      : undefined,
  });
  const routes = register(deps, manager, config) ?? [];
  const stop = options.stopSignal ?? signals();
  let servers;
  try {
    servers = await startServers({
      healthAddress: config.healthBindAddress,
      metricsAddress: config.metricsBindAddress,
      registry: deps.registry,
      routes,
      logger: log,
      notReady: () => manager.notReady(),
    });
  } catch (err) {
    log.error('Failed to start the HTTP servers', { error: errorMessage(err) });
    return 1;
  }
  log.info('Started operator', {
    identity: deps.identity,
    leaderElection: config.leaderElect,
    namespaces: config.watchNamespaces.length ? config.watchNamespaces : 'all',
  });
  manager.start();
  const signal = await stop;
  log.info('Received signal; shutting down', { signal });
  const drained = await manager.stop();
  if (deps.events instanceof KubeEventRecorder) await deps.events.flush();
  await servers.close();
  log.info('Shut down', { drained });
  await new Promise<void>((resolve) => log.on('finish', resolve).end());
  return 0;
}
