// The data plane berth generates, run for real: the configuration Secret, certificates, token
// signing key and credential store that the Registry controller wrote into the control plane are
// mounted (as the kubelet would) into folders; the real registry binary and berth's token service
// (started with exactly the arguments of the token Deployment) run on loopback with them; a real
// client pushes and pulls with the admin Secret, trusting the CA from the CA ConfigMap.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { startDataPlane, type DataPlane } from '../harness/dataplane.ts';
import type { RegistryClient } from '../harness/registry.ts';
import { describeCertificate } from '../../src/pki/certificates.ts';
import { TokenSigner } from '../../src/token/signer.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const group = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };

let ns: string;
let operator: RunningOperator;
let plane: DataPlane;
let caPem: string;
let admin: { username: string; password: string };

const secretFiles = (name: string) => plane.secretFiles(ns, name);
const host = () => plane.host;
function client(credential?: { username: string; password: string }): RegistryClient {
  const text = credential
    ? JSON.stringify({
        auths: {
          x: { auth: Buffer.from(`${credential.username}:${credential.password}`).toString('base64') },
        },
      })
    : undefined;
  return plane.clientFor(text);
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
  plane = await startDataPlane(kc, ns, 'main');
  caPem = plane.caPem;
  const adminCfg = JSON.parse((await secretFiles('main-admin'))['.dockerconfigjson'] ?? '{}') as {
    auths: Record<string, { username: string; password: string }>;
  };
  const first = Object.values(adminCfg.auths)[0];
  admin = { username: first?.username ?? '', password: first?.password ?? '' };
});

afterAll(async () => {
  await plane?.stop();
  await operator?.stop();
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
      (f: Record<string, string>) => JSON.parse(f['store.json'] ?? '{}').anonymousPull === true,
    );
    plane.volumes.credentials.write(store); // the kubelet's update of the mounted Secret
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
    plane.volumes.tls.write(files); // the kubelet's update of the mounted Secret
    await plane.registry.restart(); // the tls-checksum annotation rolls the pod
    const served = await new Promise<string>((resolve, reject) => {
      const port = Number(plane.registry.host.split(':')[1]);
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
