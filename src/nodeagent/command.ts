// `berth node-agent`: flags (or BERTH_NODE_AGENT_* environment variables) → the node agent,
// until SIGTERM/SIGINT (or one pass with --once).
import { readFlags, UsageError } from '../util/flags.ts';
import http from 'node:http';
import { createProgramLogger, endLogger } from '../runtime/logger.ts';
import { parseListenAddress, type ListenAddress } from '../util/listen.ts';
import { parseDuration } from '../util/duration.ts';
import { NodeAgent, type AgentOptions } from './agent.ts';

export const nodeAgentUsage = `usage: berth node-agent [flags]

Makes this node trust and reach a berth Registry: writes its CA and a hosts.toml per registry host
name into containerd's certs.d, and the registry's names into the hosts file (see docs/node-access.md).

flags (each also read from the environment variable in brackets):
  --registry=NS/NAME       the Registry served                   [BERTH_NODE_AGENT_REGISTRY] required
  --config-dir=PATH        the mounted <registry>-node-access ConfigMap [BERTH_NODE_AGENT_CONFIG_DIR]
                                                                 required unless --cleanup
  --certs-dir=PATH         certs.d as this process sees it        [BERTH_NODE_AGENT_CERTS_DIR] default /etc/containerd/certs.d
  --host-certs-dir=PATH    certs.d as containerd sees it          [BERTH_NODE_AGENT_HOST_CERTS_DIR] default: --certs-dir
  --hosts-file=PATH        the node's hosts file; "none" leaves it alone [BERTH_NODE_AGENT_HOSTS_FILE] default /etc/hosts
  --listen=HOST:PORT       /healthz, /readyz, /metrics           [BERTH_NODE_AGENT_LISTEN]   default 0.0.0.0:9402
  --interval=DURATION      resync interval                        [BERTH_NODE_AGENT_INTERVAL] default 30s
  --cleanup                remove what the agent wrote for this Registry, write nothing
  --once                   one pass, then exit (0 when the node is as wanted)
  --log-level=LEVEL        error, warn, info, debug               [BERTH_NODE_AGENT_LOG_LEVEL] default info`;

export { UsageError };

const stringFlags = {
  registry: 'BERTH_NODE_AGENT_REGISTRY',
  'config-dir': 'BERTH_NODE_AGENT_CONFIG_DIR',
  'certs-dir': 'BERTH_NODE_AGENT_CERTS_DIR',
  'host-certs-dir': 'BERTH_NODE_AGENT_HOST_CERTS_DIR',
  'hosts-file': 'BERTH_NODE_AGENT_HOSTS_FILE',
  listen: 'BERTH_NODE_AGENT_LISTEN',
  interval: 'BERTH_NODE_AGENT_INTERVAL',
  'log-level': 'BERTH_NODE_AGENT_LOG_LEVEL',
} as const;

export interface NodeAgentArgs {
  agent: AgentOptions;
  listen: ListenAddress;
  once: boolean;
  logLevel: string;
}

/** Flags and environment → options. Pure (environment passed in). */
export function parseNodeAgentArgs(argv: string[], env: Record<string, string | undefined>): NodeAgentArgs {
  const flags = readFlags(argv, env, stringFlags, ['cleanup', 'once']);
  const get = flags.get;
  const registry = get('registry');
  if (!registry || !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(registry))
    throw new UsageError('--registry=<namespace>/<name> is required');
  const cleanup = flags.bool('cleanup') ?? false;
  const configDir = get('config-dir');
  if (!cleanup && !configDir) throw new UsageError('--config-dir is required (unless --cleanup)');
  const certsDir = get('certs-dir') ?? '/etc/containerd/certs.d';
  const hostCertsDir = get('host-certs-dir') ?? certsDir;
  for (const [flag, p] of [
    ['certs-dir', certsDir],
    ['host-certs-dir', hostCertsDir],
  ] as const)
    if (!p.startsWith('/')) throw new UsageError(`--${flag} must be an absolute path`);
  const hostsFile = get('hosts-file') ?? '/etc/hosts';
  let intervalMs: number;
  try {
    intervalMs = parseDuration(get('interval') ?? '30s');
  } catch (err) {
    throw new UsageError(`--interval: ${(err as Error).message}`);
  }
  if (intervalMs < 1000) throw new UsageError('--interval must be at least 1s');
  const logLevel = get('log-level') ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel))
    throw new UsageError('--log-level must be error, warn, info or debug');
  const agent: AgentOptions = { registry, certsDir, hostCertsDir, cleanup, intervalMs };
  if (configDir) agent.configDir = configDir;
  if (hostsFile !== 'none') agent.hostsFile = hostsFile;
  return {
    agent,
    listen: parseListenAddress(get('listen') ?? '0.0.0.0:9402', 'listen'),
    once: flags.bool('once') ?? false,
    logLevel,
  };
}

/** Runs the node agent; resolves with the exit code. */
export async function nodeAgentCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(nodeAgentUsage);
    return 0;
  }
  let args: NodeAgentArgs;
  try {
    args = parseNodeAgentArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError) && (err as Error).name !== 'UsageError') throw err;
    console.error(`berth node-agent: ${(err as Error).message}\n\n${nodeAgentUsage}`);
    return 2;
  }
  const logger = createProgramLogger('node-agent', args.logLevel, { registry: args.agent.registry });
  const agent = new NodeAgent(args.agent, { logger });
  if (args.once) {
    const result = await agent.sync();
    await endLogger(logger);
    return agent.ready ? 0 : result.ok ? 3 : 1;
  }
  const server = http.createServer(agent.handler());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.listen.port, args.listen.host, () => resolve());
  });
  await agent.start();
  logger.info('node agent started', {
    event: 'agent.started',
    listen: `${args.listen.host}:${args.listen.port}`,
    cleanup: args.agent.cleanup,
    certsDir: args.agent.certsDir,
    hostsFile: args.agent.hostsFile ?? 'none',
  });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('node agent stopping', { event: 'agent.stopping', signal });
  await agent.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await endLogger(logger);
  return 0;
}
