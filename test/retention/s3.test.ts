// `berth retention-run` on S3 storage: moto's S3-compatible server on loopback (installed into
// bin/.moto by hack/system-deps.sh), the real Distribution registry storing into it (config rendered
// by src/registry/config.ts, AWS credentials in its environment; no auth, plain HTTP: the token flow
// is covered by run.test.ts), images pushed by crane at two moments a few seconds apart, and the run
// as a real process with --s3-* flags. S3 objects cannot be backdated, so the planner's clock
// (--now) moves forward instead: a rule keeps what was pushed within the hour before --now, and the
// cut between "old" and "new" falls in the gap between the two push phases. Decisions therefore
// follow the objects' LastModified in the bucket.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import { registryConfigDocument } from '../../src/registry/config.ts';
import { KubeClient } from '../../src/runtime/kube/client.ts';
import { readReport } from '../../src/retention/run/report.ts';
import { S3PushTimes } from '../../src/retention/run/storage-s3.ts';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import { freePort, waitFor } from '../harness/net.ts';
import { binary, ProcessGroup, repoRoot } from '../harness/processes.ts';

const exec = promisify(execFile);
const motoPath = path.join(repoRoot, 'bin/.moto');
const H = 3_600_000;
const bucket = 'berth-registry';
const rootDirectory = '/reg';
const aws = { AWS_ACCESS_KEY_ID: 'berth-test-key', AWS_SECRET_ACCESS_KEY: 'berth-test-secret-value' };

let dir: string;
let group: ProcessGroup;
let endpoint: string;
let host: string;
let kube: KubeClient;
let ns: string;
let dockerConfigFile: string;
let cutoff: number;
const d: Record<string, string> = {};

const crane = async (args: string[]): Promise<string> =>
  (
    await exec(binary('crane'), [...args, '--insecure'], { env: { ...process.env, DOCKER_CONFIG: dir } })
  ).stdout.trim();

/** Pushes a new random single-layer image as repo:tag; returns its digest. */
async function push(repo: string, tag: string): Promise<string> {
  const layer = path.join(dir, 'layer.tar');
  writeFileSync(path.join(dir, 'random'), `${Math.random()}-${Date.now()}`);
  await exec('tar', ['-cf', layer, '-C', dir, 'random']);
  await crane(['append', '-f', layer, '-t', `${host}/${repo}:${tag}`]);
  return crane(['digest', `${host}/${repo}:${tag}`]);
}

const tags = async (repo: string) =>
  (await crane(['ls', `${host}/${repo}`])).split('\n').filter(Boolean).sort();

async function run(mode: string, report: string): Promise<{ code: number; output: string }> {
  try {
    const res = await exec(
      process.execPath,
      [
        path.join(repoRoot, 'src/main.ts'),
        'retention-run',
        `--policy=${ns}/recent`,
        `--registry-url=http://${host}`,
        `--docker-config=${dockerConfigFile}`,
        `--s3-bucket=${bucket}`,
        '--s3-region=us-east-1',
        `--s3-region-endpoint=${endpoint}`,
        '--s3-force-path-style',
        `--s3-root-directory=${rootDirectory}`,
        `--report-configmap=${report}`,
        `--mode=${mode}`,
        `--now=${new Date(cutoff + H).toISOString()}`,
      ],
      { env: { ...process.env, ...aws, KUBECONFIG: process.env.BERTH_TEST_KUBECONFIG }, timeout: 120_000 },
    );
    return { code: 0, output: res.stdout + res.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, output: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

beforeAll(async () => {
  if (!existsSync(path.join(motoPath, 'moto')))
    throw new Error('moto is not installed in bin/.moto: run `bash hack/system-deps.sh` (make test does)');
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-s3-'));
  group = new ProcessGroup(dir);
  const motoPort = await freePort();
  endpoint = `http://127.0.0.1:${motoPort}`;
  const moto = group.start(
    'moto',
    'python3',
    ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(motoPort)],
    {
      PYTHONPATH: motoPath,
    },
  );
  await waitFor(
    'moto to answer',
    async () => {
      if (moto.child.exitCode !== null) throw new Error(`moto exited: ${ProcessGroup.tail(moto.logFile)}`);
      return (await fetch(`${endpoint}/${bucket}`, { method: 'PUT' }).catch(() => undefined))?.ok ?? false;
    },
    { timeoutMs: 30_000, describe: () => ProcessGroup.tail(moto.logFile) },
  );

  const port = await freePort();
  const debugPort = await freePort();
  host = `127.0.0.1:${port}`;
  const document = registryConfigDocument({
    storage: {
      kind: 's3',
      bucket,
      region: 'us-east-1',
      regionEndpoint: endpoint,
      forcePathStyle: true,
      rootDirectory,
    },
    readOnly: false,
    http: { addr: host, secret: 'test-http-secret', debugAddr: `127.0.0.1:${debugPort}` },
    auth: { realm: 'https://unused/token', service: 's', issuer: 'i', rootCertBundle: '/unused' },
  });
  delete document.auth; // no auth for this suite
  writeFileSync(path.join(dir, 'config.yml'), stringify(document));
  const registry = group.start('registry', binary('registry'), ['serve', path.join(dir, 'config.yml')], {
    ...aws,
    OTEL_TRACES_EXPORTER: 'none',
  });
  await waitFor(
    'the registry to answer',
    async () => {
      if (registry.child.exitCode !== null)
        throw new Error(`registry exited: ${ProcessGroup.tail(registry.logFile)}`);
      return (await fetch(`http://127.0.0.1:${debugPort}/debug/health`).catch(() => undefined))?.ok ?? false;
    },
    { timeoutMs: 30_000, describe: () => ProcessGroup.tail(registry.logFile) },
  );
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: {} }));
  dockerConfigFile = path.join(dir, 'admin-dockerconfig.json');
  writeFileSync(
    dockerConfigFile,
    JSON.stringify({ auths: { [host]: { auth: Buffer.from('admin:unused').toString('base64') } } }),
  );

  // Old phase.
  d.old1 = await push('team/app', 'old-1');
  d.old2 = await push('team/app', 'old-2');
  d.movedFirst = await push('team/app', 'moved'); // moved again in the new phase: left untagged, old
  d.other = await push('team/other', 'old-1');
  const oldEnd = Date.now();
  await new Promise((r) => setTimeout(r, 3_000)); // LastModified has one-second resolution
  const newStart = Date.now();
  cutoff = Math.floor(newStart / 1000) * 1000 - 500; // after every old object, before every new one
  expect(cutoff).toBeGreaterThan(oldEnd);
  // New phase.
  d.new1 = await push('team/app', 'new-1');
  d.moved = await push('team/app', 'moved');
  d.scratchFirst = await push('team/app', 'scratch'); // left untagged, but recently stored
  d.scratch = await push('team/app', 'scratch');
  d.other2 = await push('team/other', 'new-1');

  const kc = testKubeConfig();
  kube = new KubeClient(kc);
  ns = await createTestNamespace(kc, 'rt-s3');
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's3', namespace: ns },
    stringData: { accessKeyID: aws.AWS_ACCESS_KEY_ID, secretAccessKey: aws.AWS_SECRET_ACCESS_KEY },
  });
  await kube.create(`/apis/berth.dev/v1alpha1/namespaces/${ns}/registries`, {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name: 'main', namespace: ns },
    spec: {
      storage: {
        s3: {
          bucket,
          region: 'us-east-1',
          regionEndpoint: endpoint,
          forcePathStyle: true,
          rootDirectory,
          secretRef: { name: 's3' },
        },
      },
    },
  });
  await kube.create(`/apis/berth.dev/v1alpha1/namespaces/${ns}/retentionpolicies`, {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'RetentionPolicy',
    metadata: { name: 'recent', namespace: ns },
    spec: {
      registryRef: { name: 'main' },
      schedule: '0 2 * * *',
      repositories: { include: ['**'] },
      mode: 'DryRun',
      rules: [{ name: 'last-hour', tags: { include: ['*'] }, keep: { pushedWithin: '1h' } }],
      untagged: { delete: true, olderThan: '1h' },
      protect: { inUse: false, minAge: '0s' },
    },
  });
}, 180_000);

afterAll(async () => {
  await group?.stopAll();
  if (ns) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('retention-run with push times from S3', () => {
  let expected: Record<string, string>;
  const key = (e: { repository: string; tag?: string; digest: string }) =>
    e.tag ? `${e.repository}:${e.tag}` : `${e.repository}@${e.digest}`;

  test('the S3 source reads tag links (one listing, a GET only for a moved tag) and revision links', async () => {
    const s3 = new S3PushTimes({
      bucket,
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      rootDirectory,
    });
    const prev = { ...process.env };
    Object.assign(process.env, aws);
    try {
      await s3.check();
      const old1 = await s3.tag('team/app', 'old-1');
      const moved = await s3.tag('team/app', 'moved');
      const new1 = await s3.tag('team/app', 'new-1');
      expect(old1?.digest).toBe(d.old1);
      expect(moved?.digest).toBe(d.moved);
      expect(new1?.digest).toBe(d.new1);
      expect(old1?.pushedAt).toBeLessThan(cutoff);
      expect(moved?.pushedAt).toBeGreaterThan(cutoff);
      expect(new1?.pushedAt).toBeGreaterThan(cutoff);
      expect(await s3.tag('team/app', 'absent')).toBeUndefined();
      expect(s3.requests).toEqual({ list: 2, get: 1 }); // check + the tags listing; moved's current link
      const revisions = new Map((await s3.revisions('team/app')).map((r) => [r.digest, r.pushedAt]));
      expect([...revisions.keys()].sort()).toEqual(
        [d.old1, d.old2, d.movedFirst, d.new1, d.moved, d.scratchFirst, d.scratch].sort(),
      );
      expect(revisions.get(d.movedFirst ?? '')).toBeLessThan(cutoff);
      expect(revisions.get(d.scratchFirst ?? '')).toBeGreaterThan(cutoff);
      const wrong = new S3PushTimes({
        bucket,
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        rootDirectory: '/elsewhere',
      });
      await expect(wrong.check()).rejects.toThrow(/holds nothing under elsewhere\/docker\/registry\/v2\//);
      wrong.close();
    } finally {
      for (const k of Object.keys(aws)) if (prev[k] === undefined) delete process.env[k];
      s3.close();
    }
  });

  test('DryRun plans from the LastModified of the links and deletes nothing', async () => {
    expected = {
      'team/app:old-1': 'delete',
      'team/app:old-2': 'delete',
      'team/app:new-1': 'keep',
      'team/app:moved': 'keep',
      'team/app:scratch': 'keep',
      [`team/app@${d.movedFirst}`]: 'delete', // untagged, stored before the cut: older than 1h
      [`team/app@${d.scratchFirst}`]: 'keep', // untagged, stored after the cut
      'team/other:old-1': 'delete',
      'team/other:new-1': 'keep',
    };
    const before = { app: await tags('team/app'), other: await tags('team/other') };
    const res = await run('DryRun', 'dry');
    expect(res.code).toBe(0);
    expect(res.output).not.toContain(aws.AWS_SECRET_ACCESS_KEY);
    const report = await readReport(kube, ns, 'dry');
    expect(report.summary).toMatchObject({
      mode: 'DryRun',
      result: 'Succeeded',
      evaluated: 9,
      deleted: 4,
      reportParts: ['dry'],
    });
    expect(Object.fromEntries(report.entries.map((e) => [key(e), e.decision]))).toEqual(expected);
    expect(report.entries.find((e) => e.tag === 'old-1' && e.repository === 'team/app')?.reason).toMatch(
      /not within 1h/,
    );
    expect({ app: await tags('team/app'), other: await tags('team/other') }).toEqual(before);
  });

  test('Enforce deletes exactly those tags and manifests', async () => {
    const res = await run('Enforce', 'enforce');
    expect(res.code).toBe(0);
    const report = await readReport(kube, ns, 'enforce');
    expect(report.summary).toMatchObject({ mode: 'Enforce', result: 'Succeeded', deleted: 4 });
    expect(Object.fromEntries(report.entries.map((e) => [key(e), e.decision]))).toEqual(expected);
    expect(await tags('team/app')).toEqual(['moved', 'new-1', 'scratch']);
    expect(await tags('team/other')).toEqual(['new-1']);
    for (const digest of [d.old1, d.old2, d.movedFirst])
      await expect(crane(['manifest', `${host}/team/app@${digest}`])).rejects.toThrow();
    for (const digest of [d.scratchFirst, d.new1, d.moved])
      expect(await crane(['manifest', `${host}/team/app@${digest}`])).toContain('schemaVersion');
    for (const tag of ['moved', 'new-1', 'scratch'])
      await crane(['pull', `${host}/team/app:${tag}`, path.join(dir, 'pulled.tar')]);
  });
});
