// The token-service test ground: a CA, a serving certificate, a token signing key, a credential
// store in a folder laid out like a mounted Secret, berth's token service in-process over TLS,
// and the real registry configured by src/registry/config.ts to trust it.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { mintCredential, type MintOptions } from '../../src/credentials/secret.ts';
import {
  serializeCredentialStore,
  type CredentialEntry,
  type CredentialStore,
  type ServiceAccountGrant,
} from '../../src/credentials/store.ts';
import { createCA, issueCertificate, type KeyPair } from '../../src/pki/certificates.ts';
import { renderRegistryConfig, type RegistryConfigInput } from '../../src/registry/config.ts';
import {
  startTokenService,
  type RunningTokenService,
  type TokenServiceConfig,
} from '../../src/token/service.ts';
import { RegistryClient, startRegistry, type RunningRegistry } from '../harness/registry.ts';
import { capturingLogger } from '../../src/runtime/logger.ts';

export const issuer = 'berth/registry-system/main';
export const service = 'main.registry-system';

/** The key material files `berth token-service` is started with. */
export interface KeyMaterialFiles {
  tlsCert: string;
  tlsKey: string;
  signingCert: string;
  signingKey: string;
}

/**
 * Writes what `berth token-service` is started with into `dir`: a CA (returned, for clients), a
 * serving certificate for localhost and 127.0.0.1 (tls.crt, tls.key) and, as the operator makes
 * it, a self-signed token signing certificate, the registry's root bundle (signer.crt, signer.key).
 */
export async function writeKeyMaterial(
  dir: string,
  validMs = 3600_000,
): Promise<{ ca: KeyPair; signing: KeyPair; files: KeyMaterialFiles }> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + validMs);
  const ca = await createCA({ commonName: 'berth test CA', notBefore, notAfter });
  const serving = await issueCertificate(ca, {
    commonName: 'token',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    notBefore,
    notAfter,
    usage: 'server',
  });
  const signing = await createCA({ commonName: 'berth token signer', notBefore, notAfter });
  const files: KeyMaterialFiles = {
    tlsCert: path.join(dir, 'tls.crt'),
    tlsKey: path.join(dir, 'tls.key'),
    signingCert: path.join(dir, 'signer.crt'),
    signingKey: path.join(dir, 'signer.key'),
  };
  writeFileSync(files.tlsCert, serving.certPem);
  writeFileSync(files.tlsKey, serving.keyPem);
  writeFileSync(files.signingCert, signing.certPem);
  writeFileSync(files.signingKey, signing.keyPem);
  return { ca, signing, files };
}

/** A folder updated the way the kubelet updates a mounted Secret: a `..data` symlink swap. */
export class SecretVolume {
  readonly dir: string;
  private generation = 0;

  constructor(dir: string, files: Record<string, string>) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    this.write(files);
    for (const name of Object.keys(files)) symlinkSync(`..data/${name}`, path.join(dir, name));
  }

  write(files: Record<string, string>): void {
    const ts = path.join(this.dir, `..${Date.now()}_${this.generation++}`);
    mkdirSync(ts);
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(ts, name), text);
    symlinkSync(path.basename(ts), path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }
}

export interface Credential {
  username: string;
  secret: string;
  entry: CredentialEntry;
}

export function mint(options: MintOptions): Credential {
  const { secret, entry } = mintCredential(options);
  return { username: options.username, secret, entry };
}

export function storeText(
  credentials: Credential[],
  anonymousPull = false,
  serviceAccounts?: ServiceAccountGrant[],
): string {
  const store: CredentialStore = { version: 1, anonymousPull, credentials: credentials.map((c) => c.entry) };
  if (serviceAccounts) store.serviceAccounts = serviceAccounts;
  return serializeCredentialStore(store);
}

export interface TokenGround {
  dir: string;
  ca: KeyPair;
  signing: KeyPair;
  store: SecretVolume;
  tokenService: RunningTokenService;
  /** What the token service was started with. */
  tokenServiceConfig: TokenServiceConfig;
  registry: RunningRegistry;
  auditLines: string[];
  /** A crane client whose docker config holds `user:secret` for the registry (or nothing). */
  client(credential?: { username: string; secret: string }): RegistryClient;
  /** GET with the CA trusted (the registry API or the token endpoint). */
  get(
    url: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, string>; body: string }>;
  post(url: string, form: URLSearchParams): Promise<{ status: number; body: string }>;
  /** Rewrites config.yml from the fixture's input with `patch` and restarts the registry (a rollout). */
  reconfigure(patch: Partial<RegistryConfigInput>): Promise<void>;
  stop(): Promise<void>;
}

export async function startTokenGround(options: {
  credentials: Credential[];
  anonymousPull?: boolean;
  ttlMs?: number;
  /** The store's ServiceAccount grants (docs/identity.md). */
  serviceAccounts?: ServiceAccountGrant[];
  /** More of the token service's configuration (for example serviceAccountAudience). */
  tokenService?: Partial<TokenServiceConfig>;
}): Promise<TokenGround> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-token-'));
  const { ca, signing, files } = await writeKeyMaterial(dir, 24 * 3600_000);
  const store = new SecretVolume(path.join(dir, 'credentials'), {
    'store.json': storeText(options.credentials, options.anonymousPull, options.serviceAccounts),
  });

  const { logger, lines: auditLines } = capturingLogger();
  const tokenServiceConfig: TokenServiceConfig = {
    listen: { host: '127.0.0.1', port: 0 },
    tlsCertPath: files.tlsCert,
    tlsKeyPath: files.tlsKey,
    signingKeyPath: files.signingKey,
    signingCertPath: files.signingCert,
    storePath: store.file('store.json'),
    issuer,
    service,
    ttlMs: options.ttlMs ?? 300_000,
    storePollMs: 200,
    ...options.tokenService,
  };
  const tokenService = await startTokenService(tokenServiceConfig, { logger });

  const configDir = path.join(dir, 'registry');
  mkdirSync(configDir);
  const configInput: RegistryConfigInput = {
    storage: { kind: 'filesystem', rootDirectory: path.join(dir, 'storage') }, // the harness overrides it
    readOnly: false,
    http: {
      addr: '127.0.0.1:0', // the harness picks the ports
      secret: 'test-http-secret',
      tls: { certificate: files.tlsCert, key: files.tlsKey },
      debugAddr: '127.0.0.1:0',
    },
    // A host name, not an IP literal: go-containerregistry (crane, and tools built on it) refuses
    // a realm on a loopback or private IP unless it is the registry's own host:port.
    auth: {
      realm: `https://localhost:${tokenService.server.port}/token`,
      service,
      issuer,
      rootCertBundle: files.signingCert,
    },
    log: { level: 'info' },
  };
  const writeConfig = (input: RegistryConfigInput) =>
    writeFileSync(path.join(configDir, 'config.yml'), renderRegistryConfig(input));
  writeConfig(configInput);
  let registry: RunningRegistry;
  try {
    registry = await startRegistry({ configDir, tls: true });
  } catch (err) {
    await tokenService.stop();
    throw err;
  }

  const clients: RegistryClient[] = [];
  const agent = new https.Agent({ ca: ca.certPem, keepAlive: false });
  const request = (
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; headers: Record<string, string>; body: string }> =>
    new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      req.on('error', reject);
      req.end(body);
    });

  return {
    dir,
    ca,
    signing,
    store,
    tokenService,
    tokenServiceConfig,
    registry,
    auditLines,
    client(credential) {
      const auths = credential
        ? {
            [registry.host]: {
              auth: Buffer.from(`${credential.username}:${credential.secret}`).toString('base64'),
            },
          }
        : {};
      const c = new RegistryClient({ caPem: ca.certPem, dockerConfig: { auths } });
      clients.push(c);
      return c;
    },
    get: (url, headers = {}) => request('GET', url, headers),
    post: (url, form) =>
      request('POST', url, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString()),
    reconfigure: async (patch) => {
      writeConfig({ ...configInput, ...patch });
      await registry.restart();
    },
    stop: async () => {
      await registry.stop();
      await tokenService.stop();
      for (const c of clients) await c.cleanup();
      agent.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
