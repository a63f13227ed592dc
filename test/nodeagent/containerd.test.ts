// A real containerd (Debian's package, started here as root with its own root, state and socket)
// pulls from the real registry and berth's token service by the registry's in-cluster name, with
// the files the node agent wrote, through the token flow, with a berth pull Secret's credential,
// verifying TLS with berth's CA. Without the agent's files the same pull fails.
//
// The node: a random loopback address (127.x.y.z) stands for the Service's cluster IP; the
// registry listens there on 443 and the token service on 5443, as behind the Service. The material
// is berth's own: the serving certificate issued by src/registry/material.ts with that address as
// the cluster IP, the registry configuration rendered as the Registry controller renders it (the
// realm is https://main.<ns>.svc:5443/token), the node-access configuration as the operator writes
// it into the ConfigMap. The agent writes the hosts file of a temporary root; ctr and crane run in
// a private mount namespace (unshare -m) where that file is bind-mounted over /etc/hosts, so the
// machine's own /etc/hosts is never touched. ctr's --hosts-dir uses the same certs.d resolver
// (hosts.toml, ca, token flow) as containerd's CRI plugin with config_path.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { randomFillSync, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Registry } from '../../src/api/index.ts';
import { mintCredential, hashSecret } from '../../src/credentials/secret.ts';
import { serializeCredentialStore } from '../../src/credentials/store.ts';
import { renderNodeAccessConfig } from '../../src/model/node-access-config.ts';
import { credentialSecret } from '../../src/model/credential-secret.ts';
import { renderRegistryConfig } from '../../src/registry/config.ts';
import { nodeAccessConfig, nodeAccessHosts } from '../../src/registry/desired/node-agent.ts';
import { tokenIdentity, tokenServiceArgs } from '../../src/registry/desired/token-service.ts';
import { selfSignedTLS, tokenSigningKey } from '../../src/registry/material.ts';
import { tokenRealm } from '../../src/registry/config-input.ts';
import { parseDockerConfig } from '../../src/util/dockerconfig.ts';
import { freePort, waitFor } from '../harness/net.ts';
import { binary, ProcessGroup, repoRoot } from '../harness/processes.ts';
import { startRegistry, type RunningRegistry } from '../harness/registry.ts';
import { SecretVolume } from '../token/fixture.ts';

const exec = promisify(execFile);

/** Why containerd cannot run here, or undefined when it can. */
function containerdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'containerd must run as root, and this test runs as a normal user';
  for (const tool of ['containerd', 'ctr', 'unshare', 'mount']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (Debian: apt-get install containerd util-linux; hack/system-deps.sh does it)`;
    }
  }
  try {
    execFileSync('unshare', ['-m', 'true'], { stdio: 'ignore' });
  } catch {
    return 'unshare -m (a private mount namespace) is not permitted here';
  }
  return undefined;
}

const why = containerdUnavailable();
if (why) console.warn(`containerd suite skipped: ${why}`);
const suite = why ? describe.skip : describe;

const ns = 'registry-system';
const ref = { name: 'main', namespace: ns };
const ip = `127.${randomInt(1, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`;
const registryObj = {
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'Registry',
  metadata: { name: 'main', namespace: ns, uid: 'u-1' },
  spec: { storage: { emptyDir: {} }, tls: { mode: 'SelfSigned' }, nodeAccess: { enabled: true } },
} as unknown as Registry;

let dir: string;
let root: string;
let certsDir: string;
let hostsFile: string;
let group: ProcessGroup;
let registry: RunningRegistry;
let sock: string;
let caFile: string;
let pull: { username: string; password: string };
let adminConfigDir: string;
let configVolume: SecretVolume;

/** Runs a command in a private mount namespace whose /etc/hosts is the node's (the temp root's). */
async function onNode(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await exec(
      'unshare',
      ['-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, cmd, ...args],
      { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return { ok: true, out: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

async function agentOnce(extra: string[]): Promise<void> {
  const { stdout, stderr } = await exec(process.execPath, [
    path.join(repoRoot, 'src/main.ts'),
    'node-agent',
    '--once',
    `--registry=${ns}/main`,
    `--certs-dir=${certsDir}`,
    `--hosts-file=${hostsFile}`,
    ...extra,
  ]).catch((err: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`node-agent failed: ${err.stderr ?? err.message} ${err.stdout ?? ''}`);
  });
  void stdout;
  void stderr;
}

const ctr = (args: string[]) => onNode('ctr', ['--address', sock, ...args]);

suite('containerd with the node agent’s files', () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-containerd-'));
    group = new ProcessGroup(path.join(dir, 'processes'));
    root = path.join(dir, 'node');
    certsDir = path.join(root, 'etc/containerd/certs.d');
    hostsFile = path.join(root, 'etc/hosts');
    mkdirSync(certsDir, { recursive: true });
    writeFileSync(hostsFile, readFileSync('/etc/hosts', 'utf8'));

    // berth's material, with the loopback address as the Service's cluster IP.
    const now = new Date();
    const tls = await selfSignedTLS(now, ref, registryObj, {}, [ip]);
    const signer = await tokenSigningKey(now, ref, {});
    const files = path.join(dir, 'files');
    mkdirSync(files);
    const put = (name: string, text: string) => {
      writeFileSync(path.join(files, name), text);
      return path.join(files, name);
    };
    caFile = put('ca.crt', tls.ca.certPem);
    put('tls.crt', tls.serving.certPem);
    put('tls.key', tls.serving.keyPem);
    put('token.crt', signer.certPem);
    put('token.key', signer.keyPem);

    // A pull credential for team-a, handed out as berth's pull Secret, and the admin credential.
    const minted = mintCredential({
      username: 'pull-team-a',
      grants: [{ repositories: ['team-a/**'], actions: ['pull'] }],
    });
    const secret = credentialSecret({
      name: 'main-pull',
      namespace: 'team-a',
      kind: 'pull',
      registry: ref,
      hosts: nodeAccessHosts(ref, registryObj),
      state: { username: 'pull-team-a', password: minted.secret },
    });
    const parsed = parseDockerConfig(
      Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString(),
    );
    expect(parsed?.hosts).toContain(`main.${ns}.svc:443`);
    pull = { username: parsed?.username ?? '', password: parsed?.password ?? '' };
    const adminPassword = 'admin-password-for-this-test';
    put(
      'store.json',
      serializeCredentialStore({
        version: 1,
        anonymousPull: false,
        credentials: [
          minted.entry,
          {
            username: 'admin',
            secretHash: hashSecret(adminPassword),
            grants: [{ repositories: ['**'], actions: ['*'] }],
          },
        ],
      }),
    );
    adminConfigDir = path.join(dir, 'admin-docker');
    mkdirSync(adminConfigDir);
    writeFileSync(
      path.join(adminConfigDir, 'config.json'),
      JSON.stringify({
        auths: { [`main.${ns}.svc:443`]: { auth: Buffer.from(`admin:${adminPassword}`).toString('base64') } },
      }),
    );

    // The token service, with the token Deployment's arguments, on <ip>:5443.
    const healthPort = await freePort();
    const args = tokenServiceArgs({
      registry: registryObj,
      ref,
      operatorImage: 'unused',
      tls: true,
      tlsSecretName: 'main-tls',
      checksums: { config: '', tls: '', tokenKey: '' },
    }).map((a) =>
      a.startsWith('--listen=')
        ? `--listen=${ip}:5443`
        : a.startsWith('--health-listen=')
          ? `--health-listen=127.0.0.1:${healthPort}`
          : a
              .replace('/etc/berth/tls/', `${files}/`)
              .replace('/etc/berth/token/tls.key', `${files}/token.key`)
              .replace('/etc/berth/token/tls.crt', `${files}/token.crt`)
              .replace('/etc/berth/credentials/', `${files}/`),
    );
    const token = group.start('token-service', process.execPath, [
      path.join(repoRoot, 'src/main.ts'),
      ...args,
    ]);
    await waitFor(
      'the token service',
      async () => (await fetch(`http://127.0.0.1:${healthPort}/healthz`).catch(() => undefined))?.ok ?? false,
      { timeoutMs: 30_000, describe: () => ProcessGroup.tail(token.logFile) },
    );

    // The registry, with the configuration the Registry controller renders, on <ip>:443.
    const configDir = path.join(dir, 'registry');
    mkdirSync(configDir);
    writeFileSync(
      path.join(configDir, 'config.yml'),
      renderRegistryConfig({
        storage: { kind: 'filesystem', rootDirectory: path.join(dir, 'storage') },
        readOnly: false,
        http: {
          addr: `${ip}:443`,
          debugAddr: ':5001',
          secret: 'http-secret',
          tls: { certificate: `${files}/tls.crt`, key: `${files}/tls.key` },
        },
        auth: {
          realm: tokenRealm(ref, registryObj, true),
          ...tokenIdentity({ ref }),
          rootCertBundle: `${files}/token.crt`,
        },
      }),
    );
    expect(tokenRealm(ref, registryObj, true)).toBe(`https://main.${ns}.svc:5443/token`);
    registry = await startRegistry({ configDir, tls: true, env: { REGISTRY_HTTP_ADDR: `${ip}:443` } });

    // containerd, as root, with its own root, state and socket; no CRI.
    sock = path.join(dir, 'containerd.sock');
    const cfg = path.join(dir, 'containerd.toml');
    writeFileSync(
      cfg,
      [
        'version = 2',
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
        `[grpc]\n  address = "${sock}"`,
        '',
      ].join('\n'),
    );
    const containerd = group.start('containerd', 'containerd', [
      '--config',
      cfg,
      '--root',
      path.join(dir, 'containerd-root'),
      '--state',
      path.join(dir, 'containerd-state'),
      '--address',
      sock,
    ]);
    await waitFor('containerd', async () => existsSync(sock) && (await ctr(['version'])).ok, {
      timeoutMs: 30_000,
      describe: () => ProcessGroup.tail(containerd.logFile),
    });

    // The agent's configuration, as the operator renders the ConfigMap.
    configVolume = new SecretVolume(path.join(dir, 'node-access'), {
      'config.json': renderNodeAccessConfig(nodeAccessConfig(ref, registryObj, ip, true)),
      'ca.crt': tls.ca.certPem,
    });

    // An image pushed by the admin (crane on the node, which needs the same names and CA).
    const layer = path.join(dir, 'layer');
    mkdirSync(layer);
    const buf = Buffer.alloc(4096);
    randomFillSync(buf);
    writeFileSync(path.join(layer, 'data.bin'), buf);
    execFileSync('tar', ['-C', layer, '-cf', `${layer}.tar`, 'data.bin']);
    await agentOnce([`--config-dir=${configVolume.dir}`]);
    const push = await onNode(
      binary('crane'),
      [
        'append',
        '--new_tag',
        `main.${ns}.svc:443/team-a/web:v1`,
        '--platform',
        'linux/amd64',
        '-f',
        `${layer}.tar`,
      ],
      { DOCKER_CONFIG: adminConfigDir, SSL_CERT_FILE: caFile },
    );
    if (!push.ok) throw new Error(`crane push failed: ${push.out}`);
  }, 120_000);

  afterAll(async () => {
    await registry?.stop();
    await group?.stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ref443 = `main.${ns}.svc:443/team-a/web:v1`;
  const pullArgs = (image: string, user = `${pull.username}:${pull.password}`) => [
    'image',
    'pull',
    '--snapshotter',
    'native',
    '--hosts-dir',
    certsDir,
    '--user',
    user,
    image,
  ];

  it('pulls by the in-cluster name, through the token flow, with the pull Secret’s credential and berth’s CA', async () => {
    await agentOnce([`--config-dir=${configVolume.dir}`]);
    const res = await ctr(pullArgs(ref443));
    expect(res.out).toMatch(/done|unpacking/);
    expect(res.ok).toBe(true);
    const list = await ctr(['image', 'ls', '-q']);
    expect(list.out.split('\n')).toContain(ref443);
    // The name without the port is its own certs.d folder, as containerd looks it up.
    const noPort = await ctr(pullArgs(`main.${ns}.svc/team-a/web:v1`));
    expect(noPort.ok).toBe(true);
  });

  it('goes through the token service: a wrong password is refused', async () => {
    const res = await ctr(pullArgs(ref443, `${pull.username}:not-the-password`));
    expect(res.ok).toBe(false);
    expect(res.out).toMatch(/401|unauthorized/i);
  });

  it('fails without the agent’s files', async () => {
    await ctr(['image', 'rm', ref443, `main.${ns}.svc/team-a/web:v1`]);
    await agentOnce(['--cleanup']);
    expect(readFileSync(hostsFile, 'utf8')).toBe(readFileSync('/etc/hosts', 'utf8'));
    const res = await ctr(pullArgs(ref443));
    expect(res.ok).toBe(false);
    expect(res.out).toMatch(/no such host|server misbehaving|x509|certificate/);

    // With the hosts block but no certs.d folder: the name resolves, TLS fails on the unknown CA.
    writeFileSync(hostsFile, `${readFileSync(hostsFile, 'utf8')}${ip} main.${ns}.svc\n`);
    const untrusted = await ctr(pullArgs(ref443));
    expect(untrusted.ok).toBe(false);
    expect(untrusted.out).toMatch(/x509|certificate signed by unknown authority/);
  });
});
