import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, test } from '@jest/globals';
import type { Registry } from '../../api/index.ts';
import { credentialFor, parseRetentionRunArgs, UsageError } from './command.ts';
import { collectInUse, imagesOf, normaliseImage, registryHosts } from './in-use.ts';
import { createLimit } from '../../util/limit.ts';
import { applyOutcomes, gzipParts, reportData, type ReportPart, type Summary } from './report.ts';
import { s3BasePrefix } from './storage-s3.ts';
import { planRetention } from './planner.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const registry = {
  metadata: { name: 'main', namespace: 'registry-system' },
  spec: { storage: {}, expose: { service: { port: 443 }, ingress: { host: 'registry.example.com' } } },
  status: { endpoint: 'main.registry-system.svc:443' },
} as unknown as Registry;
const hosts = registryHosts(registry, ['127.0.0.1:5000']);

describe('normaliseImage', () => {
  test.each([
    ['main.registry-system.svc:443/team-a/web:1.0', { repository: 'team-a/web', tag: '1.0' }],
    ['main.registry-system.svc/team-a/web', { repository: 'team-a/web', tag: 'latest' }],
    ['main.registry-system.svc.cluster.local:443/team-a/web@' + digest, { repository: 'team-a/web', digest }],
    ['registry.example.com/team-a/web:v1@' + digest, { repository: 'team-a/web', tag: 'v1', digest }],
    ['REGISTRY.example.com:443/a/b/c:x', { repository: 'a/b/c', tag: 'x' }],
    [
      'docker-pullable://main.registry-system.svc:443/team-a/web@' + digest,
      { repository: 'team-a/web', digest },
    ],
    ['127.0.0.1:5000/team-a/web:1', { repository: 'team-a/web', tag: '1' }],
    ['docker.io/library/nginx:1', undefined],
    ['nginx', undefined],
    ['main.other-ns.svc:443/team-a/web:1', undefined],
    ['main.registry-system.svc/team-a/web@sha256:short', undefined],
  ])('%s', (ref, expected) => expect(normaliseImage(ref, hosts)).toEqual(expected));
});

describe('imagesOf and collectInUse', () => {
  const pod = {
    metadata: { namespace: 'team-a', name: 'web-0' },
    spec: {
      containers: [{ image: 'main.registry-system.svc/team-a/web:1' }],
      initContainers: [{ image: 'busybox' }],
    },
    status: {
      containerStatuses: [
        { image: 'x', imageID: `docker-pullable://main.registry-system.svc:443/team-a/web@${digest}` },
      ],
    },
  };
  const cron = {
    metadata: { namespace: 'team-b', name: 'nightly' },
    spec: {
      jobTemplate: {
        spec: { template: { spec: { containers: [{ image: 'registry.example.com/team-b/job:v2' }] } } },
      },
    },
  };
  const deploy = {
    metadata: { namespace: 'team-c', name: 'api' },
    spec: {
      template: { spec: { containers: [{ image: 'main.registry-system.svc:443/team-c/api@' + digest }] } },
    },
  };
  test('pods (spec and imageID), cron jobs and workload templates', () => {
    const inUse = collectInUse(
      [imagesOf('Pod', pod), imagesOf('CronJob', cron), imagesOf('Deployment', deploy)],
      hosts,
    );
    expect(Object.fromEntries(inUse.tags)).toEqual({
      'team-a/web:1': 'Pod team-a/web-0',
      'team-b/job:v2': 'CronJob team-b/nightly',
    });
    expect(Object.fromEntries(inUse.digests)).toEqual({
      [`team-a/web@${digest}`]: 'Pod team-a/web-0',
      [`team-c/api@${digest}`]: 'Deployment team-c/api',
    });
  });
});

describe('parseRetentionRunArgs', () => {
  const base = [
    '--policy=team-a/ci',
    '--registry-url=https://r.example:5000',
    '--docker-config=/d',
    '--storage-root=/s',
    '--report-configmap=rep',
  ];
  const s3base = [
    ...base.filter((a) => !a.startsWith('--storage-root')),
    '--s3-bucket=reg',
    '--s3-region=eu-west-1',
  ];
  test('S3 storage: bucket and region, optional endpoint, path style and root directory', () => {
    expect(parseRetentionRunArgs(s3base, {}).storage).toEqual({
      kind: 's3',
      bucket: 'reg',
      region: 'eu-west-1',
    });
    expect(
      parseRetentionRunArgs(
        [
          ...s3base,
          '--s3-force-path-style',
          '--s3-region-endpoint=http://minio:9000',
          '--s3-root-directory=/r',
        ],
        {},
      ).storage,
    ).toEqual({
      kind: 's3',
      bucket: 'reg',
      region: 'eu-west-1',
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
      rootDirectory: '/r',
    });
    expect(
      parseRetentionRunArgs(base.slice(0, 3).concat('--report-configmap=rep'), {
        BERTH_RETENTION_S3_BUCKET: 'b',
        BERTH_RETENTION_S3_REGION: 'r',
        BERTH_RETENTION_S3_FORCE_PATH_STYLE: 'false',
      }).storage,
    ).toEqual({ kind: 's3', bucket: 'b', region: 'r', forcePathStyle: false });
  });
  test('the S3 key prefix follows the registry s3 driver (rootdirectory without its slashes)', () => {
    expect(s3BasePrefix(undefined)).toBe('docker/registry/v2/');
    expect(s3BasePrefix('/')).toBe('docker/registry/v2/');
    expect(s3BasePrefix('/reg/a/')).toBe('reg/a/docker/registry/v2/');
  });
  test('flags, defaults and environment', () => {
    expect(
      parseRetentionRunArgs(base, {
        BERTH_RETENTION_MODE: 'Enforce',
        BERTH_RETENTION_NOW: '2025-01-01T00:00:00Z',
      }),
    ).toEqual({
      policy: { namespace: 'team-a', name: 'ci' },
      registryUrl: 'https://r.example:5000',
      dockerConfig: '/d',
      storage: { kind: 'filesystem', root: '/s' },
      report: { name: 'rep', namespace: 'team-a' },
      concurrency: 8,
      mode: 'Enforce',
      now: Date.parse('2025-01-01T00:00:00Z'),
    });
  });
  test.each([
    [['--policy=ci'], /namespace/],
    [[...base, '--mode=enforce'], /DryRun or Enforce/],
    [[...base, '--now=yesterday'], /RFC 3339/],
    [[...base, '--registry-url=https://x/path'], /no path/],
    [base.slice(1), /--policy/],
    [[...base, '--unknown=1'], /unknown/i],
    [base.filter((a) => !a.startsWith('--storage-root')), /--storage-root .* or --s3-bucket is required/],
    [[...base, '--s3-bucket=b'], /either --storage-root or --s3-bucket/],
    [[...base, '--s3-region=r'], /--s3-region needs --s3-bucket/],
    [[...s3base.filter((a) => !a.startsWith('--s3-region'))], /--s3-region .* is required with --s3-bucket/],
    [[...s3base, '--s3-force-path-style=yes'], /true or false/],
    [[...s3base, '--s3-region-endpoint=minio:9000'], /http\(s\) URL/],
  ])('%j is refused', (argv, re) => {
    expect(() => parseRetentionRunArgs(argv as string[], {})).toThrow(UsageError);
    expect(() => parseRetentionRunArgs(argv as string[], {})).toThrow(re);
  });
});

describe('credentialFor', () => {
  const auth = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');
  test('the entry for the host, or the only entry; never the secret in an error', () => {
    const two = JSON.stringify({
      auths: { 'a:1': { auth: auth('u1', 'p1') }, 'b:2': { username: 'u2', password: 'p2' } },
    });
    expect(credentialFor(two, 'b:2')).toEqual({ username: 'u2', password: 'p2' });
    expect(credentialFor(two, 'a:1')).toEqual({ username: 'u1', password: 'p1' });
    expect(() => credentialFor(two, 'c:3')).toThrow(/no entry for c:3/);
    const one = JSON.stringify({ auths: { 'main.ns.svc:443': { auth: auth('admin', 's3cret') } } });
    expect(credentialFor(one, '127.0.0.1:9')).toEqual({ username: 'admin', password: 's3cret' });
    try {
      credentialFor(JSON.stringify({ auths: { h: { username: 'admin' } } }), 'h');
    } catch (err) {
      expect((err as Error).message).not.toMatch(/s3cret/);
    }
  });
});

describe('createLimit', () => {
  test('never more than n at once', async () => {
    const limit = createLimit(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limit(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, i % 3));
          active--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });
});

describe('report', () => {
  const summary: Summary = {
    mode: 'Enforce',
    evaluated: 0,
    deleted: 0,
    kept: 0,
    protected: 0,
    refused: false,
    startTime: 't',
    completionTime: 't',
    result: 'Succeeded',
    message: 'm',
    reportParts: [],
  };
  test('a skipped deletion becomes keep with its reason, and the counts follow', () => {
    const plan = planRetention(
      [{ name: 'a', tags: [{ tag: 'x', digest, pushedAt: 0 }], manifests: [] }],
      {
        rules: [{ name: 'r', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
        untagged: { delete: false, olderThanMs: 0 },
        protect: { inUse: false, minAgeMs: 0 },
      },
      { digests: new Map(), tags: new Map() },
      1e12,
    );
    const applied = applyOutcomes(plan, {
      outcomes: new Map([[`a@${digest}`, { status: 'skipped', reason: 'tag x moved to sha256:b' }]]),
    });
    expect(applied.deleted).toBe(0);
    expect(applied.entries[0]).toMatchObject({
      decision: 'keep',
      reason: expect.stringMatching(/planned deletion skipped: tag x moved/),
    });
    expect(applyOutcomes(plan, undefined).entries[0]?.decision).toBe('delete');
  });
  const summaryOf = (parts: ReportPart[]) => JSON.parse(parts[0]?.data?.['summary.json'] ?? '{}') as Summary;
  const entriesOf = (parts: ReportPart[]) =>
    parts.flatMap(
      (p) =>
        JSON.parse(
          p.data?.['report.json'] ??
            gunzipSync(Buffer.from(p.binaryData?.['report.json.gz'] ?? '', 'base64')).toString(),
        ) as unknown[],
    );
  const synthetic = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      repository: `team/r${i % 97}`,
      tag: `t${i}`,
      digest: `sha256:${createHash('sha256').update(String(i)).digest('hex')}`,
      decision: i % 3 ? ('keep' as const) : ('delete' as const),
      reason: 'x'.repeat(i % 50),
    }));
  test('a small report is inline in the one ConfigMap, and the summary names it', () => {
    const parts = reportData('rep', summary, synthetic(10));
    expect(parts).toHaveLength(1);
    expect(parts[0]?.binaryData).toBeUndefined();
    expect(summaryOf(parts)).toEqual({ ...summary, reportParts: ['rep'] });
    expect(entriesOf(parts)).toEqual(synthetic(10));
  });
  test('a large report is split into gzipped parts under the limit, in order, summary in the first only', () => {
    const entries = synthetic(20_000);
    const limit = 64 * 1024;
    const parts = reportData('rep', summary, entries, limit);
    expect(parts.length).toBeGreaterThan(5);
    expect(parts.map((p) => p.name)).toEqual(parts.map((_, i) => (i ? `rep-${i + 1}` : 'rep')));
    expect(summaryOf(parts).reportParts).toEqual(parts.map((p) => p.name));
    for (const [i, p] of parts.entries()) {
      expect(Buffer.from(p.binaryData?.['report.json.gz'] ?? '', 'base64').length).toBeLessThanOrEqual(limit);
      expect(p.data?.['report.json']).toBeUndefined();
      expect(p.data?.['summary.json'] !== undefined).toBe(i === 0);
    }
    expect(entriesOf(parts)).toEqual(entries);
    // parts are filled: at most one more than the total gzipped size needs
    const total = parts.reduce(
      (n, p) => n + Buffer.from(p.binaryData?.['report.json.gz'] ?? '', 'base64').length,
      0,
    );
    expect(parts.length).toBeLessThanOrEqual(Math.ceil(total / (limit * 0.8)) + 1);
  });
  test('a chunk that compresses worse than the ones before is halved until it fits', () => {
    const random = (i: number) => createHash('sha512').update(`r${i}`).digest('hex').repeat(4);
    // compressible first (a high ratio is learnt), then incompressible text
    const entries = [
      ...synthetic(3000).map((e) => ({ ...e, reason: 'y'.repeat(400) })),
      ...synthetic(3000).map((e, i) => ({ ...e, reason: random(i) })),
    ];
    const gz = gzipParts(entries, 32 * 1024);
    for (const g of gz) expect(g.length).toBeLessThanOrEqual(32 * 1024);
    expect(gz.flatMap((g) => JSON.parse(gunzipSync(g).toString()) as unknown[])).toEqual(entries);
  });
});
