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
  /** The ClusterRole the install ships for the token service's TokenReviews (docs/identity.md). */
  tokenReviewClusterRole: string;
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
  tokenReviewClusterRole: {
    flag: 'token-review-cluster-role',
    env: 'BERTH_TOKEN_REVIEW_CLUSTER_ROLE',
    default: 'berth-token-review',
    help: 'ClusterRole bound to the token service (create tokenreviews, for ServiceAccount tokens)',
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

/** Where one option's value came from: a flag, an environment variable or its default. */
interface Raw {
  value: string;
  from: string;
}

/** What every reader gets: the raw value of an option, the environment, and where to report a problem. */
interface Reading {
  raw(key: Key): Raw;
  env: NodeJS.ProcessEnv;
  problem(message: string): void;
}

type Reader<T> = (r: Reading) => T;

/**
 * The flags of `argv` (`--name=value`, `--name value`, bare `--leader-elect` for true) by option,
 * with a problem for every argument that is not one. Pure.
 */
export function readFlags(argv: readonly string[]): { flags: Map<Key, string>; problems: string[] } {
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
  return { flags, problems };
}

/** The value of `key`: its flag over its environment variable over its default. Pure. */
function rawValue(key: Key, flags: ReadonlyMap<Key, string>, env: NodeJS.ProcessEnv): Raw {
  const o = options[key];
  if (flags.has(key)) return { value: flags.get(key) ?? '', from: `--${o.flag}` };
  if (env[o.env] !== undefined) return { value: env[o.env] ?? '', from: `$${o.env}` };
  return { value: o.default, from: `--${o.flag} (default)` };
}

const text =
  (key: Key): Reader<string> =>
  (r) =>
    r.raw(key).value;

/** A duration in ms; positive, or also 0 when `allowZero`. A bad one is a problem (and reads 0). */
const duration =
  (key: Key, allowZero = false): Reader<number> =>
  (r) => {
    const { value, from } = r.raw(key);
    try {
      const ms = parseDuration(value);
      if (ms < 0 || (!allowZero && ms === 0)) throw new Error('must be positive');
      return ms;
    } catch {
      r.problem(
        `${from}: "${value}" is not a ${allowZero ? '' : 'positive '}duration such as 30s, 5m or 10h`,
      );
      return 0;
    }
  };

/** A listen address, or "0" (disabled). */
const address =
  (key: Key): Reader<string> =>
  (r) => {
    const { value, from } = r.raw(key);
    if (value === '0') return value;
    try {
      parseAddress(value);
    } catch {
      r.problem(`${from}: "${value}" is not an address such as :8080 or 127.0.0.1:8080 (0 disables)`);
    }
    return value;
  };

const watchNamespaces: Reader<string[]> = (r) => {
  const raw = r.raw('watchNamespaces');
  const list = raw.value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((n) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n));
  if (bad.length) r.problem(`${raw.from}: not namespace names: ${bad.join(', ')}`);
  return list;
};

const leaderElect: Reader<boolean> = (r) => {
  const { value, from } = r.raw('leaderElect');
  const on = /^(true|1|yes)$/i.test(value);
  if (!on && !/^(false|0|no)$/i.test(value)) r.problem(`${from}: "${value}" is not true or false`);
  return on;
};

const concurrency: Reader<number> = (r) => {
  const { value, from } = r.raw('concurrency');
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100)
    r.problem(`${from}: "${value}" is not a whole number from 1 to 100`);
  return n;
};

const logLevel: Reader<LogLevel> = (r) => {
  const { value, from } = r.raw('logLevel');
  const level = value.toLowerCase() as LogLevel;
  if (!logLevels.includes(level)) r.problem(`${from}: "${value}" is not one of ${logLevels.join(', ')}`);
  return level;
};

const image: Reader<string> = (r) => {
  const { value, from } = r.raw('image');
  if (!/^\S+$/.test(value)) r.problem(`${from}: "${value}" is not an image reference`);
  return value;
};

const registryEventsUrl: Reader<string> = (r) => {
  const { value, from } = r.raw('registryEventsUrl');
  if (value && !isHttpUrl(value)) r.problem(`${from}: "${value}" is not an http(s) URL`);
  return value.replace(/\/+$/, '');
};

const nodeAgentAllowedDirs: Reader<string[]> = (r) => {
  const { value, from } = r.raw('nodeAgentAllowedDirs');
  const parsed = parseAllowedDirs(value);
  if (parsed.invalid.length)
    r.problem(`${from}: not absolute paths without '..': ${parsed.invalid.join(', ')}`);
  return parsed.dirs;
};

const nodeAgentAllowedHosts: Reader<string[]> = (r) => {
  const { value, from } = r.raw('nodeAgentAllowedHosts');
  const parsed = parseHostPatterns(value);
  if (parsed.invalid.length)
    r.problem(`${from}: not host names or *.domain patterns: ${parsed.invalid.join(', ')}`);
  return parsed.patterns;
};

/**
 * How each field of the configuration is read, in the order its problems are reported.
 */
const readers: { [K in keyof OperatorConfig]: Reader<OperatorConfig[K]> } = {
  watchNamespaces,
  leaderElect,
  concurrency,
  logLevel,
  image,
  registryEventsUrl,
  nodeAgentAllowedDirs,
  nodeAgentAllowedHosts,
  metricsBindAddress: address('metricsBindAddress'),
  healthBindAddress: address('healthBindAddress'),
  leaderElectionNamespace: (r) =>
    r.raw('leaderElectionNamespace').value || r.env.POD_NAMESPACE || 'berth-system',
  leaderElectionId: text('leaderElectionId'),
  leaseDurationMs: duration('leaseDuration'),
  renewDeadlineMs: duration('renewDeadline'),
  retryPeriodMs: duration('retryPeriod'),
  resyncPeriodMs: duration('resyncPeriod', true),
  shutdownTimeoutMs: duration('shutdownTimeout', true),
  kubeconfig: (r) => r.raw('kubeconfig').value || undefined,
  credentialPropagationMs: duration('credentialPropagation', true),
  retentionClusterRole: text('retentionClusterRole'),
  retentionReportClusterRole: text('retentionReportClusterRole'),
  tokenReviewClusterRole: text('tokenReviewClusterRole'),
  eventsBindAddress: address('eventsBindAddress'),
};

/**
 * What is wrong between fields that are each valid: events sent to a listener that does not run,
 * leader-election timings that cannot work. `eventsUrlFrom` says where the events URL came from. Pure.
 */
export function crossProblems(config: OperatorConfig, eventsUrlFrom: string): string[] {
  const problems: string[] = [];
  if (config.registryEventsUrl && config.eventsBindAddress === '0')
    problems.push(
      `${eventsUrlFrom} is set, but --events-bind-address is 0: registries would send events to a listener that does not run`,
    );
  if (config.leaseDurationMs && config.renewDeadlineMs && config.renewDeadlineMs >= config.leaseDurationMs)
    problems.push('the leader-election renew deadline must be shorter than the lease duration');
  if (config.retryPeriodMs && config.renewDeadlineMs && config.retryPeriodMs * 1.2 >= config.renewDeadlineMs)
    problems.push(
      'the leader-election retry period (with 20% jitter) must be shorter than the renew deadline',
    );
  return problems;
}

/** Parses flags and environment; never throws. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  const { flags, problems } = readFlags(argv);
  const reading: Reading = {
    raw: (key) => rawValue(key, flags, env),
    env,
    problem: (message) => problems.push(message),
  };
  const config = {} as Record<keyof OperatorConfig, unknown>;
  for (const [field, read] of Object.entries(readers) as [keyof OperatorConfig, Reader<unknown>][])
    config[field] = read(reading);
  problems.push(...crossProblems(config as OperatorConfig, reading.raw('registryEventsUrl').from));
  return problems.length
    ? { ok: false, error: new ConfigError(problems) }
    : { ok: true, config: config as OperatorConfig };
}
