// The data plane berth generates, run for real: the configuration Secret, certificates, token
// signing key and credential store that the Registry controller wrote into the control plane are
// mounted (as the kubelet would) into folders; the real registry binary and berth's token service
// (started with exactly the arguments of the token Deployment) run on loopback with them; a real
// client pushes and pulls with the admin Secret, trusting the CA from the CA ConfigMap.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { freePort, waitFor } from '../harness/net.ts';
import { ProcessGroup, repoRoot } from '../harness/processes.ts';
import { RegistryClient, startRegistry, type RunningRegistry } from '../harness/registry.ts';
import { SecretVolume } from '../token/fixture.ts';
import { describeCertificate } from '../../src/pki/certificates.ts';
import { TokenSigner } from '../../src/token/signer.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const group = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };

let ns: string;
let operator: RunningOperator;
let dir: string;
let registry: RunningRegistry;
let tokenGroup: ProcessGroup;
let tokenPort: number;
let caPem: string;
let admin: { username: string; password: string };
let volumes: Record<string, SecretVolume>;
const clients: RegistryClient[] = [];

const secretFiles = async (name: string): Promise<Record<string, string>> => {
  const s = await core.readNamespacedSecret({ name, namespace: ns });
  return Object.fromEntries(
    Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  );
};

function client(credential?: { username: string; password: string }): RegistryClient {
  const auths = credential
    ? {
        [registry.host.replace('127.0.0.1', 'localhost')]: {
          auth: Buffer.from(`${credential.username}:${credential.password}`).toString('base64'),
        },
      }
    : {};
  const c = new RegistryClient({ caPem, dockerConfig: { auths } });
  clients.push(c);
  return c;
}
const host = () => registry.host.replace('127.0.0.1', 'localhost');

/** Maps the pods' mount paths to the folders that hold the same Secrets here. */
function mapPaths(text: string): string {
  return text
    .replaceAll('/etc/distribution/tls', volumes.tls!.dir)
    .replaceAll('/etc/distribution/token', volumes.tokenCert!.dir)
    .replaceAll('/etc/berth/tls', volumes.tls!.dir)
    .replaceAll('/etc/berth/token', volumes.tokenKey!.dir)
    .replaceAll('/etc/berth/credentials', volumes.credentials!.dir);
}

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'dataplane');
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: [`--watch-namespaces=${ns}`],
    env: { BERTH_IMAGE: 'ghcr.io/berth-dev/berth:test' },
  });
  await custom.createNamespacedCustomObject({
    ...group,
    namespace: ns,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'main' },
      // `localhost` is how this test reaches the registry; a user would list their own names.
      // A short certificate life, so the controller renews it (renewBefore) within a minute.
      spec: {
        storage: { emptyDir: {} },
        tls: { mode: 'SelfSigned', dnsNames: ['localhost'], duration: '1h', renewBefore: '59m' },
      },
    },
  });
  const token = await eventually(
    'the token Deployment',
    () => apps.listNamespacedDeployment({ namespace: ns }),
    (l) => l.items.some((d) => d.metadata?.name === 'main-token') && l.items.length === 2,
  );
  const bundle = await eventually(
    'the CA ConfigMap',
    () =>
      core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app.kubernetes.io/managed-by=berth' }),
    (l) => l.items.length === 1,
  );
  caPem = bundle.items[0]?.data?.['ca.crt'] ?? '';
  const adminCfg = JSON.parse((await secretFiles('main-admin'))['.dockerconfigjson'] ?? '{}') as {
    auths: Record<string, { username: string; password: string }>;
  };
  const first = Object.values(adminCfg.auths)[0];
  admin = { username: first?.username ?? '', password: first?.password ?? '' };

  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-dataplane-'));
  const tlsFiles = await secretFiles('main-tls');
  const keyFiles = await secretFiles('main-token-key');
  volumes = {
    tls: new SecretVolume(path.join(dir, 'tls'), tlsFiles),
    tokenCert: new SecretVolume(path.join(dir, 'token-cert'), { 'token.crt': keyFiles['tls.crt'] ?? '' }),
    tokenKey: new SecretVolume(path.join(dir, 'token-key'), keyFiles),
    credentials: new SecretVolume(path.join(dir, 'credentials'), await secretFiles('main-credentials')),
  };

  // The token service, with the token Deployment's own arguments.
  tokenPort = await freePort();
  const deployment = token.items.find((d) => d.metadata?.name === 'main-token');
  const healthPort = await freePort();
  const args = (deployment?.spec?.template.spec?.containers[0]?.args ?? []).map((a) =>
    a.startsWith('--listen=')
      ? `--listen=127.0.0.1:${tokenPort}`
      : a.startsWith('--health-listen=')
        ? `--health-listen=127.0.0.1:${healthPort}`
        : mapPaths(a),
  );
  expect(args[0]).toBe('token-service');
  tokenGroup = new ProcessGroup(path.join(dir, 'token-service'));
  const proc = tokenGroup.start('token-service', process.execPath, [
    path.join(repoRoot, 'src/main.ts'),
    ...args,
    '--store-poll=1s',
  ]);
  await waitFor(
    'the token service',
    async () => (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).ok && (await tlsUp(tokenPort)),
    { timeoutMs: 30_000, describe: () => ProcessGroup.tail(proc.logFile) },
  );

  // The registry, with the configuration Secret's config.yml.
  const configDir = path.join(dir, 'registry');
  mkdirSync(configDir);
  writeFileSync(
    path.join(configDir, 'config.yml'),
    mapPaths((await secretFiles('main-registry-config'))['config.yml'] ?? ''),
  );
  registry = await startRegistry({
    configDir,
    tls: true,
    // The realm names the Service's host; here the token service listens on loopback.
    env: { REGISTRY_AUTH_TOKEN_REALM: `https://localhost:${tokenPort}/token` },
  });
});

async function tlsUp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

afterAll(async () => {
  await registry?.stop();
  await tokenGroup?.stopAll();
  await operator?.stop();
  for (const c of clients) await c.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the data plane berth generated', () => {
  it('takes a push with the admin Secret and gives it back by tag and by digest, over TLS with berth’s CA', async () => {
    const c = client(admin);
    const digest = await c.pushRandomImage(`${host()}/team-a/web:v1`, { layers: 2, layerBytes: 2048 });
    expect(await c.tags(`${host()}/team-a/web`)).toEqual(['v1']);
    expect((await c.pull(`${host()}/team-a/web:v1`)).ok).toBe(true);
    const byDigest = await c.pull(`${host()}/team-a/web@${digest}`);
    expect(byDigest.stderr).toBe('');
    expect(byDigest.ok).toBe(true);
  });

  it('refuses a wrong password and an unknown user', async () => {
    const wrong = await client({ username: 'admin', password: 'not-the-password' }).pull(
      `${host()}/team-a/web:v1`,
    );
    expect(wrong.ok).toBe(false);
    expect(wrong.stderr).toMatch(/401|unauthorized|UNAUTHORIZED/i);
    const unknown = await client({ username: 'mallory', password: admin.password }).pull(
      `${host()}/team-a/web:v1`,
    );
    expect(unknown.ok).toBe(false);
  });

  it('refuses an expired token signed with berth’s key', async () => {
    const keyFiles = await secretFiles('main-token-key');
    const signer = new TokenSigner(keyFiles['tls.key'] ?? '', keyFiles['tls.crt']);
    const claims = {
      issuer: `berth/${ns}/main`,
      subject: 'admin',
      audience: `main.${ns}`,
      access: [{ type: 'repository', name: 'team-a/web', actions: ['pull'] }],
      ttlMs: 300_000,
    };
    const url = `https://${host()}/v2/team-a/web/manifests/v1`;
    const get = async (token: string) => {
      const { request } = await import('node:https');
      return new Promise<number>((resolve, reject) => {
        const req = request(
          url,
          {
            ca: caPem,
            headers: {
              authorization: `Bearer ${token}`,
              accept:
                'application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json',
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    };
    const fresh = await signer.sign({ ...claims, issuedAt: new Date() });
    expect(await get(fresh.token)).toBe(200);
    const expired = await signer.sign({ ...claims, issuedAt: new Date(Date.now() - 3600_000) });
    expect(await get(expired.token)).toBe(401);
  });

  it('lets anyone pull only once spec.auth.anonymousPull is true', async () => {
    const anonymous = client();
    expect((await anonymous.pull(`${host()}/team-a/web:v1`)).ok).toBe(false);
    await custom.patchNamespacedCustomObject(
      { ...group, namespace: ns, name: 'main', body: { spec: { auth: { anonymousPull: true } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const store = await eventually(
      'the credential store to allow anonymous pulls',
      () => secretFiles('main-credentials'),
      (f) => JSON.parse(f['store.json'] ?? '{}').anonymousPull === true,
    );
    volumes.credentials!.write(store); // the kubelet's update of the mounted Secret
    await eventually(
      'an anonymous pull to work',
      () => anonymous.pull(`${host()}/team-a/web:v1`),
      (r) => r.ok,
      30_000,
    );
    const push = await anonymous.run(['append', '--new_tag', `${host()}/team-a/web:anon`, '-f', '/dev/null']);
    expect(push.ok).toBe(false);
  });

  it('renews the serving certificate renewBefore its end, from the same CA, and the registry serves it', async () => {
    const first = await core.readNamespacedSecret({ name: 'main-tls', namespace: ns });
    const old = describeCertificate(Buffer.from(first.data?.['tls.crt'] ?? '', 'base64').toString());
    expect(old.notAfter.getTime() - old.notBefore.getTime()).toBe(3600_000 + 5 * 60_000); // 1h, backdated 5 min
    const renewed = await eventually(
      'the controller to renew the certificate (one minute after issuance)',
      () => core.readNamespacedSecret({ name: 'main-tls', namespace: ns }),
      (s) => s.data?.['tls.crt'] !== first.data?.['tls.crt'],
      120_000,
    );
    const files = Object.fromEntries(
      Object.entries(renewed.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    expect(files['ca.crt']).toBe(caPem); // same CA: clients keep trusting it
    const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    expect(events.items.some((e) => e.reason === 'CertificateIssued' && /Renewing/.test(e.note ?? ''))).toBe(
      true,
    );
    volumes.tls!.write(files); // the kubelet's update of the mounted Secret
    await registry.restart(); // the tls-checksum annotation rolls the pod
    const served = await new Promise<string>((resolve, reject) => {
      const port = Number(registry.host.split(':')[1]);
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem }, () => {
        resolve(socket.getPeerX509Certificate()?.serialNumber ?? '');
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(served).toBe(new X509Certificate(files['tls.crt'] ?? '').serialNumber);
    expect(served).not.toBe(
      new X509Certificate(Buffer.from(first.data?.['tls.crt'] ?? '', 'base64').toString()).serialNumber,
    );
    expect((await client(admin).pull(`${host()}/team-a/web:v1`)).ok).toBe(true);
  }, 180_000);
});
