import { gunzipSync } from 'node:zlib';
import { describe, expect, test } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import { credentialFor, parseRetentionRunArgs, UsageError } from './command.ts';
import { collectInUse, imagesOf, normaliseImage, registryHosts } from './in-use.ts';
import { createLimit } from './limit.ts';
import { nextLink, parseChallenge } from './registry-client.ts';
import { applyOutcomes, inlineReportLimit, reportData, type Summary } from './report.ts';
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
      storageRoot: '/s',
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

describe('registry protocol helpers', () => {
  test('nextLink', () => {
    expect(nextLink('</v2/_catalog?last=b&n=2>; rel="next"', 'https://r:5000/v2/_catalog?n=2')).toBe(
      'https://r:5000/v2/_catalog?last=b&n=2',
    );
    expect(nextLink(undefined, 'https://r')).toBeUndefined();
    expect(nextLink('<https://x/a>; rel="prev"', 'https://r')).toBeUndefined();
  });
  test('parseChallenge', () => {
    expect(parseChallenge('Bearer realm="https://r/token",service="main",scope="repository:a:pull"')).toEqual(
      {
        scheme: 'bearer',
        params: { realm: 'https://r/token', service: 'main', scope: 'repository:a:pull' },
      },
    );
    expect(parseChallenge('Basic realm="registry"')?.scheme).toBe('basic');
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
  test('a large report goes gzipped into binaryData', () => {
    const entries = Array.from({ length: 8000 }, (_, i) => ({
      repository: `team/r${i}`,
      tag: `t${i}`,
      digest,
      decision: 'keep' as const,
      reason: 'x'.repeat(60),
    }));
    const { data, binaryData } = reportData(summary, entries);
    expect(data['report.json']).toBeUndefined();
    const raw = gunzipSync(Buffer.from(binaryData?.['report.json.gz'] ?? '', 'base64')).toString();
    expect(raw.length).toBeGreaterThan(inlineReportLimit);
    expect(JSON.parse(raw)).toEqual(entries);
    expect(reportData(summary, entries.slice(0, 10)).data['report.json']).toBeDefined();
  });
});
