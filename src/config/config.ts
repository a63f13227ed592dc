// The operator's configuration: flags (`--name=value`, `--name value`, bare `--flag` for true)
// over environment variables over defaults, parsed into one validated, typed object. Every
// problem is reported at once, with the flag and environment variable it came from.
import { parseDuration } from '../util/duration.ts';
import { logLevels, type LogLevel } from '../runtime/logger.ts';
import { parseAddress } from '../runtime/server.ts';
import { parseAllowedDirs } from '../model/node-dirs.ts';
import { parseHostPatterns } from '../model/hosts.ts';

export interface OperatorConfig {
  /** Namespaces to watch; empty: all. */
  watchNamespaces: string[];
  metricsBindAddress: string;
  healthBindAddress: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Workers per controller. */
  concurrency: number;
  logLevel: LogLevel;
  resyncPeriodMs: number;
  shutdownTimeoutMs: number;
  kubeconfig: string | undefined;
  /** berth's own image: the token service, the node agent and the Jobs run it. */
  image: string;
  /** How long a new credential sits in the credential store before a Secret switches to it. */
  credentialPropagationMs: number;
  /** The ClusterRoles the install ships for retention Jobs (the chart prefixes its release name). */
  retentionClusterRole: string;
  retentionReportClusterRole: string;
  /**
   * Base URL at which registries reach the operator's push-event listener (the operator's
   * Service); empty: registries send no notifications and Repository.status.lastPushTime stays unset.
   */
  registryEventsUrl: string;
  /** Address of the push-event listener (POST /registry-events/<ns>/<name>); "0" disables. */
  eventsBindAddress: string;
  /** Folders the node agents may write (a Registry's nodeAccess.certsDir must lie under one). */
  nodeAgentAllowedDirs: string[];
  /** Hosts besides a Registry's Service names that node agents may configure (`*`, `*.domain`, names). */
  nodeAgentAllowedHosts: string[];
}

interface Option {
  flag: string;
  env: string;
  default: string;
  help: string;
}

export const options = {
  watchNamespaces: {
    flag: 'watch-namespaces',
    env: 'BERTH_WATCH_NAMESPACES',
    default: '',
    help: 'comma-separated namespaces to watch; empty: all',
  },
  metricsBindAddress: {
    flag: 'metrics-bind-address',
    env: 'BERTH_METRICS_BIND_ADDRESS',
    default: ':8080',
    help: 'address of /metrics; 0 disables',
  },
  healthBindAddress: {
    flag: 'health-bind-address',
    env: 'BERTH_HEALTH_BIND_ADDRESS',
    default: ':8081',
    help: 'address of /healthz and /readyz; 0 disables',
  },
  leaderElect: {
    flag: 'leader-elect',
    env: 'BERTH_LEADER_ELECT',
    default: 'true',
    help: 'elect a leader with a Lease before reconciling',
  },
  leaderElectionNamespace: {
    flag: 'leader-election-namespace',
    env: 'BERTH_LEADER_ELECTION_NAMESPACE',
    default: '',
    help: 'namespace of the Lease (default: $POD_NAMESPACE, else berth-system)',
  },
  leaderElectionId: {
    flag: 'leader-election-id',
    env: 'BERTH_LEADER_ELECTION_ID',
    default: 'berth-operator',
    help: 'name of the Lease',
  },
  leaseDuration: {
    flag: 'leader-election-lease-duration',
    env: 'BERTH_LEADER_ELECTION_LEASE_DURATION',
    default: '15s',
    help: 'how long a Lease is valid without renewal',
  },
  renewDeadline: {
    flag: 'leader-election-renew-deadline',
    env: 'BERTH_LEADER_ELECTION_RENEW_DEADLINE',
    default: '10s',
    help: 'the leader stops leading if it cannot renew within this',
  },
  retryPeriod: {
    flag: 'leader-election-retry-period',
    env: 'BERTH_LEADER_ELECTION_RETRY_PERIOD',
    default: '2s',
    help: 'time between acquire or renew attempts',
  },
  concurrency: {
    flag: 'concurrency',
    env: 'BERTH_CONCURRENCY',
    default: '2',
    help: 'reconcile workers per controller',
  },
  logLevel: {
    flag: 'log-level',
    env: 'BERTH_LOG_LEVEL',
    default: 'info',
    help: 'error, warn, info or debug',
  },
  resyncPeriod: {
    flag: 'resync-period',
    env: 'BERTH_RESYNC_PERIOD',
    default: '10h',
    help: 'every object is reconciled again at least this often; 0 disables',
  },
  shutdownTimeout: {
    flag: 'shutdown-timeout',
    env: 'BERTH_SHUTDOWN_TIMEOUT',
    default: '30s',
    help: 'how long in-flight reconciles may run after SIGTERM',
  },
  retentionClusterRole: {
    flag: 'retention-cluster-role',
    env: 'BERTH_RETENTION_CLUSTER_ROLE',
    default: 'berth-retention',
    help: 'ClusterRole bound to retention Jobs (read Pods and workloads cluster-wide)',
  },
  retentionReportClusterRole: {
    flag: 'retention-report-cluster-role',
    env: 'BERTH_RETENTION_REPORT_CLUSTER_ROLE',
    default: 'berth-retention-report',
    help: "ClusterRole bound to retention Jobs in the policy's namespace (write the report)",
  },
  credentialPropagation: {
    flag: 'credential-propagation',
    env: 'BERTH_CREDENTIAL_PROPAGATION',
    default: '90s',
    help: 'time for a new credential to reach the token service (kubelet Secret sync) before pull secrets switch to it',
  },
  registryEventsUrl: {
    flag: 'registry-events-url',
    env: 'BERTH_REGISTRY_EVENTS_URL',
    default: '',
    help: "base URL of the operator's push-event listener as registries reach it (http://<service>.<namespace>.svc:8082); empty: no notifications",
  },
  eventsBindAddress: {
    flag: 'events-bind-address',
    env: 'BERTH_EVENTS_BIND_ADDRESS',
    default: ':8082',
    help: 'address of the registry push-event listener; 0 disables',
  },
  nodeAgentAllowedDirs: {
    flag: 'node-agent-allowed-dirs',
    env: 'BERTH_NODE_AGENT_ALLOWED_DIRS',
    default: '/etc/containerd/certs.d',
    help: "comma-separated host folders the node agents may write; a Registry's nodeAccess.certsDir must be one or lie below one",
  },
  nodeAgentAllowedHosts: {
    flag: 'node-agent-allowed-hosts',
    env: 'BERTH_NODE_AGENT_ALLOWED_HOSTS',
    default: '*',
    help: 'comma-separated Ingress hosts (names, *.domain or *) the node agents may configure besides the Service names; public registries never',
  },
  image: {
    flag: 'image',
    env: 'BERTH_IMAGE',
    default: 'ghcr.io/berth-dev/berth:0.1.0',
    help: "berth's own image, run by the token service, the node agent and the Jobs",
  },
  kubeconfig: {
    flag: 'kubeconfig',
    env: 'KUBECONFIG',
    default: '',
    help: 'kubeconfig file (default: in-cluster, else ~/.kube/config)',
  },
} as const satisfies Record<string, Option>;

type Key = keyof typeof options;

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export type ParseResult = { ok: true; config: OperatorConfig } | { ok: false; error: ConfigError };

export function usage(): string {
  return Object.values(options)
    .map((o) => `  --${o.flag.padEnd(34)} ${o.help} (env ${o.env}, default "${o.default}")`)
    .join('\n');
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash;
  } catch {
    return false;
  }
}

/** Parses flags and environment; never throws. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  const problems: string[] = [];
  const byFlag = new Map<string, Key>(Object.entries(options).map(([k, o]) => [o.flag, k as Key]));
  const flags = new Map<Key, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      problems.push(`unexpected argument "${arg}"`);
      continue;
    }
    const key = byFlag.get(m[1] ?? '');
    if (!key) {
      problems.push(`unknown flag --${m[1]}`);
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (key === 'leaderElect' && (next === undefined || next.startsWith('--'))) value = 'true';
      else if (next === undefined) {
        problems.push(`flag --${m[1]} needs a value`);
        continue;
      } else value = argv[++i] ?? '';
    }
    flags.set(key, value);
  }
  const raw = (key: Key): { value: string; from: string } => {
    const o = options[key];
    if (flags.has(key)) return { value: flags.get(key) ?? '', from: `--${o.flag}` };
    if (env[o.env] !== undefined) return { value: env[o.env] ?? '', from: `$${o.env}` };
    return { value: o.default, from: `--${o.flag} (default)` };
  };
  const duration = (key: Key, allowZero = false): number => {
    const { value, from } = raw(key);
    try {
      const ms = parseDuration(value);
      if (ms < 0 || (!allowZero && ms === 0)) throw new Error('must be positive');
      return ms;
    } catch {
      problems.push(
        `${from}: "${value}" is not a ${allowZero ? '' : 'positive '}duration such as 30s, 5m or 10h`,
      );
      return 0;
    }
  };
  const address = (key: Key): string => {
    const { value, from } = raw(key);
    if (value === '0') return value;
    try {
      parseAddress(value);
    } catch {
      problems.push(`${from}: "${value}" is not an address such as :8080 or 127.0.0.1:8080 (0 disables)`);
    }
    return value;
  };

  const watchNamespaces = raw('watchNamespaces')
    .value.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const badNs = watchNamespaces.filter((n) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n));
  if (badNs.length) problems.push(`${raw('watchNamespaces').from}: not namespace names: ${badNs.join(', ')}`);

  const le = raw('leaderElect');
  const leaderElect = /^(true|1|yes)$/i.test(le.value);
  if (!leaderElect && !/^(false|0|no)$/i.test(le.value))
    problems.push(`${le.from}: "${le.value}" is not true or false`);

  const conc = raw('concurrency');
  const concurrency = Number(conc.value);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100)
    problems.push(`${conc.from}: "${conc.value}" is not a whole number from 1 to 100`);

  const lvl = raw('logLevel');
  const logLevel = lvl.value.toLowerCase() as LogLevel;
  if (!logLevels.includes(logLevel))
    problems.push(`${lvl.from}: "${lvl.value}" is not one of ${logLevels.join(', ')}`);

  const image = raw('image');
  if (!/^\S+$/.test(image.value)) problems.push(`${image.from}: "${image.value}" is not an image reference`);

  const eventsUrl = raw('registryEventsUrl');
  if (eventsUrl.value && !isHttpUrl(eventsUrl.value))
    problems.push(`${eventsUrl.from}: "${eventsUrl.value}" is not an http(s) URL`);

  const dirsRaw = raw('nodeAgentAllowedDirs');
  const allowedDirs = parseAllowedDirs(dirsRaw.value);
  if (allowedDirs.invalid.length)
    problems.push(`${dirsRaw.from}: not absolute paths without '..': ${allowedDirs.invalid.join(', ')}`);
  const hostsRaw = raw('nodeAgentAllowedHosts');
  const allowedHosts = parseHostPatterns(hostsRaw.value);
  if (allowedHosts.invalid.length)
    problems.push(
      `${hostsRaw.from}: not host names or *.domain patterns: ${allowedHosts.invalid.join(', ')}`,
    );

  const config: OperatorConfig = {
    watchNamespaces,
    metricsBindAddress: address('metricsBindAddress'),
    healthBindAddress: address('healthBindAddress'),
    leaderElect,
    leaderElectionNamespace: raw('leaderElectionNamespace').value || env.POD_NAMESPACE || 'berth-system',
    leaderElectionId: raw('leaderElectionId').value,
    leaseDurationMs: duration('leaseDuration'),
    renewDeadlineMs: duration('renewDeadline'),
    retryPeriodMs: duration('retryPeriod'),
    concurrency,
    logLevel,
    resyncPeriodMs: duration('resyncPeriod', true),
    shutdownTimeoutMs: duration('shutdownTimeout', true),
    kubeconfig: raw('kubeconfig').value || undefined,
    image: raw('image').value,
    credentialPropagationMs: duration('credentialPropagation', true),
    retentionClusterRole: raw('retentionClusterRole').value,
    retentionReportClusterRole: raw('retentionReportClusterRole').value,
    registryEventsUrl: eventsUrl.value.replace(/\/+$/, ''),
    eventsBindAddress: address('eventsBindAddress'),
    nodeAgentAllowedDirs: allowedDirs.dirs,
    nodeAgentAllowedHosts: allowedHosts.patterns,
  };
  if (config.registryEventsUrl && config.eventsBindAddress === '0')
    problems.push(
      `${eventsUrl.from} is set, but --events-bind-address is 0: registries would send events to a listener that does not run`,
    );
  if (config.leaseDurationMs && config.renewDeadlineMs && config.renewDeadlineMs >= config.leaseDurationMs)
    problems.push('the leader-election renew deadline must be shorter than the lease duration');
  if (config.retryPeriodMs && config.renewDeadlineMs && config.retryPeriodMs * 1.2 >= config.renewDeadlineMs)
    problems.push(
      'the leader-election retry period (with 20% jitter) must be shorter than the renew deadline',
    );
  return problems.length ? { ok: false, error: new ConfigError(problems) } : { ok: true, config };
}
