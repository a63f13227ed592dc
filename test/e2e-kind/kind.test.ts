// End to end on a kind cluster, for machines with a Docker engine: build berth's image (through
// testcontainers), create a kind cluster, load the image, install the chart, declare a Registry and
// a Repository, push an image with the Repository's push secret, and run a pod from it in a
// namespace the Registry selects (pull secret on its default ServiceAccount, node trust by the node
// agent). Without a reachable Docker engine the suite is reported as skipped, with the reason.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { GenericContainer } from 'testcontainers';
import { stringify } from 'yaml';
import { binary, repoRoot } from '../harness/processes.ts';
import { run, type RunResult } from '../delivery/manifests.ts';
import { dockerAvailability } from './docker.ts';

const docker = await dockerAvailability();
const suite = docker.available ? describe : describe.skip;
if (!docker.available) {
  // Straight to stderr: jest drops console output of a file whose tests are all skipped.
  process.stderr.write(
    `[e2e-kind] SKIPPED: no Docker engine is reachable (${docker.reason}). ` +
      'This suite builds the image and runs a kind cluster; run it on a machine with Docker ' +
      '(`bash hack/system-deps.sh` then builds bin/kind).\n',
  );
}

const image = `berth:e2e-${randomBytes(3).toString('hex')}`;
const cluster = `berth-e2e-${randomBytes(3).toString('hex')}`;
let dir = '';
let kubeconfig = '';

function ok(result: RunResult, what: string): RunResult {
  if (result.code !== 0)
    throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
  return result;
}
const kind = (...args: string[]) => run(binary('kind'), args);
const kubectl = (...args: string[]) => run(binary('kubectl'), ['--kubeconfig', kubeconfig, ...args]);
const apply = async (objects: unknown[]) => {
  const file = path.join(dir, `apply-${randomBytes(3).toString('hex')}.yaml`);
  writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
  return ok(await kubectl('apply', '--server-side', '-f', file), `kubectl apply ${file}`);
};
const waitFor = async (args: string[], timeout = '300s') =>
  ok(await kubectl('wait', ...args, `--timeout=${timeout}`), `kubectl wait ${args.join(' ')}`);

suite(`berth on kind (${docker.available ? docker.description : 'no Docker'})`, () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-e2e-'));
    kubeconfig = path.join(dir, 'kubeconfig');
    // The image, built by testcontainers from the repository's Dockerfile.
    await GenericContainer.fromDockerfile(repoRoot).build(image, { deleteOnExit: false });
    ok(
      await kind('create', 'cluster', '--name', cluster, '--kubeconfig', kubeconfig, '--wait', '180s'),
      'kind create cluster',
    );
    ok(await kind('load', 'docker-image', image, '--name', cluster), 'kind load docker-image');
  }, 900_000);

  afterAll(async () => {
    if (process.env.BERTH_KEEP_KIND !== '1') await kind('delete', 'cluster', '--name', cluster);
    rmSync(dir, { recursive: true, force: true });
  }, 300_000);

  test('the chart installs and the operator becomes ready', async () => {
    const [repository, tag] = image.split(':');
    ok(
      await run(binary('helm'), [
        'install',
        'berth',
        path.join(repoRoot, 'charts/berth'),
        '--kubeconfig',
        kubeconfig,
        '--namespace',
        'berth-system',
        '--create-namespace',
        '--set',
        `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`,
        '--wait',
        '--timeout',
        '5m',
      ]),
      'helm install',
    );
    await waitFor(['-n', 'berth-system', 'deployment/berth-operator', '--for=condition=Available']);
  }, 600_000);

  test('a Registry and a Repository become Ready; a pushed image runs in a selected namespace', async () => {
    await apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'registry-system' } },
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'team-a', labels: { 'berth.dev/pull': 'main' } },
      },
      {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        metadata: { name: 'main', namespace: 'registry-system' },
        spec: {
          storage: { emptyDir: { sizeLimit: '2Gi' } },
          tls: { mode: 'SelfSigned' },
          pullSecrets: {
            namespaceSelector: { matchLabels: { 'berth.dev/pull': 'main' } },
            secretName: 'main-pull',
            serviceAccounts: { names: ['default'] },
          },
          nodeAccess: { enabled: true },
        },
      },
    ]);
    await waitFor(['-n', 'registry-system', 'registry/main', '--for=condition=Ready']);
    await apply([
      {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Repository',
        metadata: { name: 'web', namespace: 'team-a' },
        spec: {
          registryRef: { name: 'main', namespace: 'registry-system' },
          push: { secretName: 'web-push' },
        },
      },
    ]);
    await waitFor(['-n', 'team-a', 'repository/web', '--for=condition=Ready']);
    await waitFor(['-n', 'team-a', 'secret/main-pull', '--for=create']);

    // Push from inside the cluster with the Repository's push secret and the Registry's CA.
    const target = 'main.registry-system.svc:443/team-a/web:v1';
    await apply([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'push-ca', namespace: 'team-a' },
        data: {
          'ca.crt': ok(
            await kubectl(
              'get',
              '-n',
              'registry-system',
              'configmap/main-ca',
              '-o',
              'jsonpath={.data.ca\\.crt}',
            ),
            'read the CA bundle',
          ).stdout,
        },
      },
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'push', namespace: 'team-a' },
        spec: {
          backoffLimit: 2,
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'crane',
                  image: 'gcr.io/go-containerregistry/crane:v0.21.0',
                  args: ['copy', 'busybox:1.37', target],
                  env: [
                    { name: 'DOCKER_CONFIG', value: '/docker' },
                    { name: 'SSL_CERT_FILE', value: '/ca/ca.crt' },
                  ],
                  volumeMounts: [
                    { name: 'docker', mountPath: '/docker' },
                    { name: 'ca', mountPath: '/ca' },
                  ],
                },
              ],
              volumes: [
                {
                  name: 'docker',
                  secret: {
                    secretName: 'web-push',
                    items: [{ key: '.dockerconfigjson', path: 'config.json' }],
                  },
                },
                { name: 'ca', configMap: { name: 'push-ca' } },
              ],
            },
          },
        },
      },
    ]);
    await waitFor(['-n', 'team-a', 'job/push', '--for=condition=Complete']);

    // The default ServiceAccount got the pull secret; the node trusts and resolves the registry.
    const sa = ok(
      await kubectl('get', '-n', 'team-a', 'serviceaccount/default', '-o', 'json'),
      'read the ServiceAccount',
    );
    expect(JSON.parse(sa.stdout).imagePullSecrets).toContainEqual({ name: 'main-pull' });
    ok(
      await kubectl(
        'run',
        'web',
        '-n',
        'team-a',
        `--image=${target}`,
        '--restart=Never',
        '--command',
        '--',
        'sleep',
        '3600',
      ),
      'kubectl run',
    );
    await waitFor(['-n', 'team-a', 'pod/web', '--for=condition=Ready']);
  }, 900_000);
});

if (!docker.available) {
  // Visible in the test report too, not only in the console: the suite above is skipped, not passed.
  test.skip(`e2e-kind skipped: no Docker engine (${docker.reason})`, () => {});
}
