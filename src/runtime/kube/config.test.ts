import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { inClusterAccess, kubeconfigAccess, KubeConfigError } from './config.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const b64 = (s: string) => Buffer.from(s).toString('base64');

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

function kubeconfig(name: string, user: string, extraCluster = ''): string {
  return file(
    name,
    `apiVersion: v1
kind: Config
current-context: ctx
contexts:
- name: ctx
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: ${b64('CA')}
${extraCluster}
users:
- name: u
  user:
${user}
`,
  );
}

async function applied(files: string[]): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = { headers: { accept: 'application/json' } };
  await kubeconfigAccess(files).applyToHTTPSOptions(opts);
  return opts;
}

describe('kubeconfigAccess: what one request gets from a kubeconfig', () => {
  test.each([
    [
      'client certificate and key inline',
      `    client-certificate-data: ${b64('CERT')}\n    client-key-data: ${b64('KEY')}`,
      { cert: 'CERT', key: 'KEY', authorization: undefined },
    ],
    ['a bearer token', `    token: abc`, { cert: undefined, key: undefined, authorization: 'Bearer abc' }],
    [
      'basic auth',
      `    username: admin\n    password: pw`,
      { cert: undefined, key: undefined, authorization: `Basic ${b64('admin:pw')}` },
    ],
  ])('%s', async (_name, user, want) => {
    const opts = await applied([kubeconfig(`${_name.replace(/\W/g, '-')}.yaml`, user)]);
    expect(String(opts.ca)).toBe('CA');
    expect(opts.cert === undefined ? undefined : String(opts.cert)).toBe(want.cert);
    expect(opts.key === undefined ? undefined : String(opts.key)).toBe(want.key);
    expect((opts.headers as Record<string, string>).authorization).toBe(want.authorization);
  });

  test('file paths are relative to the kubeconfig; tokenFile is read', async () => {
    file('cert.pem', 'FILECERT');
    file('key.pem', 'FILEKEY');
    file('token', 'from-file\n');
    const opts = await applied([
      kubeconfig(
        'paths.yaml',
        `    client-certificate: cert.pem\n    client-key: key.pem\n    tokenFile: token`,
      ),
    ]);
    expect(String(opts.cert)).toBe('FILECERT');
    expect(String(opts.key)).toBe('FILEKEY');
    expect((opts.headers as Record<string, string>).authorization).toBe('Bearer from-file');
  });

  test('insecure-skip-tls-verify and tls-server-name', async () => {
    const opts = await applied([
      kubeconfig(
        'insecure.yaml',
        '    token: t',
        '    insecure-skip-tls-verify: true\n    tls-server-name: api.local',
      ),
    ]);
    expect(opts.rejectUnauthorized).toBe(false);
    expect(opts.servername).toBe('api.local');
  });

  test('several files merge: the first to name the context wins, entries come from any', async () => {
    const users = file('users.yaml', `users:\n- name: u\n  user:\n    token: merged\n`);
    const main = file(
      'main.yaml',
      `current-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://10.0.0.1'}\n`,
    );
    const access = kubeconfigAccess([main, users]);
    expect(access.getCurrentCluster()).toEqual({ server: 'https://10.0.0.1' });
    const opts = await applied([main, users]);
    expect((opts.headers as Record<string, string>).authorization).toBe('Bearer merged');
  });

  test('an exec plugin user knows its server without loading client-node', () => {
    const access = kubeconfigAccess([
      kubeconfig('exec.yaml', `    exec: {command: gcloud, apiVersion: client.authentication.k8s.io/v1}`),
    ]);
    expect(access.getCurrentCluster()).toEqual({ server: 'https://127.0.0.1:6443' });
  });

  test('no current context is a KubeConfigError', () => {
    expect(() => kubeconfigAccess([file('empty.yaml', 'apiVersion: v1\n')])).toThrow(KubeConfigError);
  });
});

describe('inClusterAccess', () => {
  test('the ServiceAccount token and CA, and the service address', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'berth-sa-'));
    writeFileSync(path.join(root, 'token'), 'sa-token');
    writeFileSync(path.join(root, 'ca.crt'), 'SACA');
    const env = { ...process.env };
    process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      const access = inClusterAccess(root);
      expect(access?.getCurrentCluster()).toEqual({ server: 'https://[fd00::1]:443' });
      const opts: https.RequestOptions = {};
      await access?.applyToHTTPSOptions(opts);
      expect(String(opts.ca)).toBe('SACA');
      expect((opts.headers as Record<string, string>).authorization).toBe('Bearer sa-token');
    } finally {
      process.env = env;
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('outside a pod: undefined', () => {
    expect(inClusterAccess(path.join(dir, 'nowhere'))).toBeUndefined();
  });
});
