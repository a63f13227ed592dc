// First proof that the registry harness is real: the Distribution registry over TLS with basic
// authentication, driven by a real client.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { createCA, issueCertificate, type KeyPair } from '../../src/pki/certificates.ts';
import { RegistryClient, startRegistry, type RunningRegistry } from '../harness/registry.ts';

let registry: RunningRegistry;
let ca: KeyPair;
let configDir: string;
const clients: RegistryClient[] = [];

function client(user: string, password: string): RegistryClient {
  const auth = Buffer.from(`${user}:${password}`).toString('base64');
  const c = new RegistryClient({ caPem: ca.certPem, dockerConfig: { auths: { [registry.host]: { auth } } } });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  configDir = mkdtempSync(path.join(os.tmpdir(), 'berth-ground-registry-'));
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 3600_000);
  ca = await createCA({ commonName: 'ground-ca', notBefore, notAfter });
  const serving = await issueCertificate(ca, {
    commonName: 'registry',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    notBefore,
    notAfter,
    usage: 'server',
  });
  writeFileSync(path.join(configDir, 'tls.crt'), serving.certPem);
  writeFileSync(path.join(configDir, 'tls.key'), serving.keyPem);
  writeFileSync(path.join(configDir, 'htpasswd'), `alice:${bcrypt.hashSync('correct horse', 10)}\n`);
  writeFileSync(
    path.join(configDir, 'config.yml'),
    stringify({
      version: 0.1,
      log: { level: 'info' },
      storage: { filesystem: { rootdirectory: '/unused' }, delete: { enabled: true } },
      http: {
        addr: '127.0.0.1:0',
        secret: 'ground-test-http-secret',
        tls: { certificate: path.join(configDir, 'tls.crt'), key: path.join(configDir, 'tls.key') },
      },
      auth: { htpasswd: { realm: 'berth-ground', path: path.join(configDir, 'htpasswd') } },
    }),
  );
  registry = await startRegistry({ configDir, tls: true });
});

afterAll(async () => {
  await registry?.stop();
  for (const c of clients) await c.cleanup();
  rmSync(configDir, { recursive: true, force: true });
});

describe('the registry harness', () => {
  it('pushes over TLS with basic auth and pulls back by digest', async () => {
    const alice = client('alice', 'correct horse');
    const ref = `${registry.host}/ground/app:v1`;
    const digest = await alice.pushRandomImage(ref, { layers: 2, layerBytes: 4096 });
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await alice.tags(`${registry.host}/ground/app`)).toEqual(['v1']);
    const pulled = await alice.pull(`${registry.host}/ground/app@${digest}`);
    expect(pulled.stderr).toBe('');
    expect(pulled.ok).toBe(true);
  });

  it('refuses a wrong password', async () => {
    const mallory = client('alice', 'wrong');
    const res = await mallory.pull(`${registry.host}/ground/app:v1`);
    expect(res.ok).toBe(false);
    expect(res.stderr).toMatch(/UNAUTHORIZED|401|authentication required/i);
  });

  it('refuses a client that does not trust the CA', async () => {
    const auth = Buffer.from('alice:correct horse').toString('base64');
    const untrusting = new RegistryClient({ dockerConfig: { auths: { [registry.host]: { auth } } } });
    clients.push(untrusting);
    const res = await untrusting.pull(`${registry.host}/ground/app:v1`);
    expect(res.ok).toBe(false);
    expect(res.stderr).toMatch(/certificate/i);
  });
});
