import { describe, expect, it } from '@jest/globals';
import { crossProblems, parseConfig, readFlags, type OperatorConfig } from './config.ts';

describe('parseConfig', () => {
  it('has working defaults', () => {
    const r = parseConfig([], {});
    expect(r.ok && r.config).toMatchObject({
      watchNamespaces: [],
      metricsBindAddress: ':8080',
      healthBindAddress: ':8081',
      leaderElect: true,
      leaderElectionNamespace: 'berth-system',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      concurrency: 2,
      logLevel: 'info',
      resyncPeriodMs: 36_000_000,
      shutdownTimeoutMs: 30_000,
    });
  });

  it('takes flags over environment over defaults', () => {
    const r = parseConfig(
      ['--concurrency=4', '--leader-elect=false', '--watch-namespaces', 'a, b', '--log-level=DEBUG'],
      { BERTH_CONCURRENCY: '8', BERTH_LOG_LEVEL: 'warn', POD_NAMESPACE: 'ops', BERTH_SHUTDOWN_TIMEOUT: '1m' },
    );
    expect(r.ok && r.config).toMatchObject({
      concurrency: 4,
      leaderElect: false,
      watchNamespaces: ['a', 'b'],
      logLevel: 'debug',
      leaderElectionNamespace: 'ops',
      shutdownTimeoutMs: 60_000,
    });
  });

  it('reads a bare boolean flag as true', () => {
    const r = parseConfig(['--leader-elect', '--concurrency', '3'], { BERTH_LEADER_ELECT: 'false' });
    expect(r.ok && r.config).toMatchObject({ leaderElect: true, concurrency: 3 });
  });

  it.each([
    [['--concurrency=0'], '--concurrency: "0" is not a whole number from 1 to 100'],
    [['--log-level=loud'], '--log-level: "loud" is not one of error, warn, info, debug'],
    [['--metrics-bind-address=localhost'], '--metrics-bind-address: "localhost" is not an address'],
    [['--leader-elect=maybe'], '--leader-elect: "maybe" is not true or false'],
    [['--leader-election-lease-duration=5s'], 'renew deadline must be shorter than the lease duration'],
    [['--resync-period=soon'], '--resync-period: "soon" is not a duration'],
    [['--watch-namespaces=Team_A'], 'not namespace names: Team_A'],
    [['--frobnicate'], 'unknown flag --frobnicate'],
    [['stray'], 'unexpected argument "stray"'],
  ])('rejects %j with a clear message', (argv, message) => {
    const r = parseConfig(argv, {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.message).toContain(message);
  });

  it('reads the node agent allow-lists (folders, Ingress hosts) and rejects what is not one', () => {
    const d = parseConfig([], {});
    expect(d.ok && d.config).toMatchObject({
      nodeAgentAllowedDirs: ['/etc/containerd/certs.d'],
      nodeAgentAllowedHosts: ['*'],
    });
    const set = parseConfig(
      [
        '--node-agent-allowed-dirs=/etc/containerd/certs.d/,/var/lib/rancher/k3s/agent/etc/containerd/certs.d',
      ],
      { BERTH_NODE_AGENT_ALLOWED_HOSTS: '*.example.com,registry.example.org' },
    );
    expect(set.ok && set.config).toMatchObject({
      nodeAgentAllowedDirs: ['/etc/containerd/certs.d', '/var/lib/rancher/k3s/agent/etc/containerd/certs.d'],
      nodeAgentAllowedHosts: ['*.example.com', 'registry.example.org'],
    });
    const bad = parseConfig(['--node-agent-allowed-dirs=etc,/a/../b', '--node-agent-allowed-hosts=a b'], {});
    expect(!bad.ok && bad.error.problems).toEqual([
      "--node-agent-allowed-dirs: not absolute paths without '..': etc, /a/../b",
      '--node-agent-allowed-hosts: not host names or *.domain patterns: a b',
    ]);
  });

  it('names the environment variable a bad value came from, and reports every problem', () => {
    const r = parseConfig([], { BERTH_CONCURRENCY: 'many', BERTH_SHUTDOWN_TIMEOUT: 'x' });
    expect(!r.ok && r.error.problems).toEqual([
      '$BERTH_CONCURRENCY: "many" is not a whole number from 1 to 100',
      '$BERTH_SHUTDOWN_TIMEOUT: "x" is not a duration such as 30s, 5m or 10h',
    ]);
  });

  it('reads the push-event listener and the URL registries send events to', () => {
    const off = parseConfig([], {});
    expect(off.ok && off.config).toMatchObject({ registryEventsUrl: '', eventsBindAddress: ':8082' });
    const on = parseConfig(['--registry-events-url=http://berth-operator-events.berth-system.svc:8082/'], {
      BERTH_EVENTS_BIND_ADDRESS: '127.0.0.1:9000',
    });
    expect(on.ok && on.config).toMatchObject({
      registryEventsUrl: 'http://berth-operator-events.berth-system.svc:8082',
      eventsBindAddress: '127.0.0.1:9000',
    });
    const bad = parseConfig(['--registry-events-url=ftp://x', '--events-bind-address=nope'], {});
    expect(!bad.ok && bad.error.problems).toEqual([
      '--registry-events-url: "ftp://x" is not an http(s) URL',
      '--events-bind-address: "nope" is not an address such as :8080 or 127.0.0.1:8080 (0 disables)',
    ]);
    const nowhere = parseConfig(['--registry-events-url=http://x:8082', '--events-bind-address=0'], {});
    expect(!nowhere.ok && nowhere.error.problems[0]).toContain('--events-bind-address is 0');
  });
});

describe('readFlags', () => {
  it.each([
    ['--name=value', ['--concurrency=3'], [['concurrency', '3']], []],
    ['--name value', ['--concurrency', '3'], [['concurrency', '3']], []],
    ['an empty value after =', ['--image='], [['image', '']], []],
    ['a bare --leader-elect at the end', ['--leader-elect'], [['leaderElect', 'true']], []],
    [
      'a bare --leader-elect before a flag',
      ['--leader-elect', '--concurrency=2'],
      [
        ['leaderElect', 'true'],
        ['concurrency', '2'],
      ],
      [],
    ],
    ['--leader-elect with a value', ['--leader-elect', 'false'], [['leaderElect', 'false']], []],
    ['a flag without its value', ['--concurrency'], [], ['flag --concurrency needs a value']],
    ['an unknown flag', ['--nope=1'], [], ['unknown flag --nope']],
    ['a stray argument', ['x', '--image=a'], [['image', 'a']], ['unexpected argument "x"']],
    ['the last of a repeated flag', ['--image=a', '--image=b'], [['image', 'b']], []],
  ])('%s', (_name, argv, flags, problems) => {
    const r = readFlags(argv);
    expect([...r.flags]).toEqual(flags);
    expect(r.problems).toEqual(problems);
  });
});

describe('crossProblems', () => {
  const base = parseConfig([], {});
  if (!base.ok) throw base.error;
  const of = (over: Partial<OperatorConfig>) => ({ ...base.config, ...over });
  it.each([
    ['the defaults', of({}), []],
    [
      'an events URL without a listener',
      of({ registryEventsUrl: 'http://x', eventsBindAddress: '0' }),
      [
        '$URL is set, but --events-bind-address is 0: registries would send events to a listener that does not run',
      ],
    ],
    ['an events URL with a listener', of({ registryEventsUrl: 'http://x' }), []],
    [
      'a renew deadline as long as the lease',
      of({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 1_000 }),
      ['the leader-election renew deadline must be shorter than the lease duration'],
    ],
    [
      'a retry period that jitter takes past the renew deadline',
      of({ renewDeadlineMs: 10_000, retryPeriodMs: 8_400 }),
      ['the leader-election retry period (with 20% jitter) must be shorter than the renew deadline'],
    ],
    ['a retry period just short enough', of({ renewDeadlineMs: 10_000, retryPeriodMs: 8_000 }), []],
    ['an invalid (0) duration checks nothing more', of({ leaseDurationMs: 0, renewDeadlineMs: 0 }), []],
  ])('%s', (_name, config, problems) => {
    expect(crossProblems(config, '$URL')).toEqual(problems);
  });
});
