// The node agent run as a process against a temporary root: it writes exactly the expected files,
// rewrites them on CA rotation and a Service change, removes them in cleanup mode, never touches
// a file it did not write, and puts its hosts-file block back when another writer drops it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../harness/kube.ts';
import { ProcessGroup } from '../harness/processes.ts';
import { SecretVolume } from '../token/fixture.ts';
import { createCA } from '../../src/pki/certificates.ts';
import { renderNodeAccessConfig, type NodeAccessConfig } from '../../src/model/node-access-config.ts';
import { mtimeOf, startAgent, tree } from './fixture.ts';

const registry = 'registry-system/main';
const originalHosts =
  '127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n10.1.2.3 build-cache # the admin’s\n';
const foreignToml = 'server = "https://mirror.example.com"\n';

let dir: string;
let root: string;
let certsDir: string;
let hostsFile: string;
let volume: SecretVolume;
let group: ProcessGroup;
let caA: string;
let caB: string;

const config = (ip: string, port: number): NodeAccessConfig => ({
  version: 1,
  registry,
  server: `https://${ip}:${port}`,
  hosts: [
    `main.registry-system.svc:${port}`,
    `main.registry-system.svc.cluster.local:${port}`,
    ...(port === 443 ? ['main.registry-system.svc', 'main.registry-system.svc.cluster.local'] : []),
  ],
  aliases: { ip, names: ['main.registry-system.svc', 'main.registry-system.svc.cluster.local'] },
});

const marker = (files: string[]) => `${JSON.stringify({ registry, files, writtenBy: 'berth node-agent' })}\n`;
const hostsToml = (host: string, ip: string, port: number) =>
  [
    `# Written by the berth node agent for Registry ${registry}; it is rewritten, do not edit.`,
    `# containerd reaches ${host} at the Service's cluster IP and verifies TLS with berth's CA.`,
    `server = "https://${ip}:${port}"`,
    `capabilities = ["pull", "resolve"]`,
    `ca = "/etc/containerd/certs.d/${host}/ca.crt"`,
    '',
  ].join('\n');

function expectedTree(ca: string, ip: string, port: number): Record<string, string> {
  const out: Record<string, string> = {
    'docker.io/hosts.toml': foreignToml,
    'notes.txt': 'the admin’s own file\n',
  };
  for (const host of config(ip, port).hosts) {
    out[`${host}/.berth-node-agent`] = marker(['ca.crt', 'hosts.toml']);
    out[`${host}/ca.crt`] = ca.endsWith('\n') ? ca : `${ca}\n`;
    out[`${host}/hosts.toml`] = hostsToml(host, ip, port);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

const block = (ip: string) =>
  `# BEGIN berth node agent ${registry} (managed: do not edit)\n${ip} main.registry-system.svc main.registry-system.svc.cluster.local\n# END berth node agent ${registry}\n`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-nodeagent-'));
  root = path.join(dir, 'root');
  certsDir = path.join(root, 'etc/containerd/certs.d');
  hostsFile = path.join(root, 'etc/hosts');
  mkdirSync(path.join(certsDir, 'docker.io'), { recursive: true });
  writeFileSync(path.join(certsDir, 'docker.io/hosts.toml'), foreignToml);
  writeFileSync(path.join(certsDir, 'notes.txt'), 'the admin’s own file\n');
  writeFileSync(hostsFile, originalHosts);
  const now = Date.now();
  caA = (
    await createCA({
      commonName: 'ca A',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3600_000),
    })
  ).certPem;
  caB = (
    await createCA({
      commonName: 'ca B',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3600_000),
    })
  ).certPem;
  volume = new SecretVolume(path.join(dir, 'config'), {
    'config.json': renderNodeAccessConfig(config('10.96.0.20', 443)),
    'ca.crt': caA,
  });
  group = new ProcessGroup(path.join(dir, 'agents'));
});

afterAll(async () => {
  await group?.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const agentArgs = () => [
  `--registry=${registry}`,
  `--config-dir=${volume.dir}`,
  `--certs-dir=${certsDir}`,
  '--host-certs-dir=/etc/containerd/certs.d',
  `--hosts-file=${hostsFile}`,
  '--interval=1s',
];

describe('the node agent on a node', () => {
  it('writes exactly the CA, hosts.toml and marker per host name, and its block in the hosts file', async () => {
    const agent = await startAgent(group, 'agent', agentArgs());
    await eventually('the agent to be ready', agent.readyz, (r) => r.status === 200);
    expect(tree(certsDir)).toEqual(expectedTree(caA, '10.96.0.20', 443));
    expect(readFileSync(hostsFile, 'utf8')).toBe(originalHosts + block('10.96.0.20'));
    expect(await agent.metrics()).toMatch(/berth_node_agent_in_sync 1/);

    // Rotating the CA rewrites ca.crt and nothing else.
    const toml = path.join(certsDir, 'main.registry-system.svc:443/hosts.toml');
    const tomlMtime = mtimeOf(toml);
    const hostsMtime = mtimeOf(hostsFile);
    volume.write({ 'config.json': renderNodeAccessConfig(config('10.96.0.20', 443)), 'ca.crt': caB });
    await eventually(
      'the rotated CA on the node',
      async () => tree(certsDir),
      (t) => JSON.stringify(t) === JSON.stringify(expectedTree(caB, '10.96.0.20', 443)),
    );
    expect(mtimeOf(toml)).toBe(tomlMtime);
    expect(mtimeOf(hostsFile)).toBe(hostsMtime);

    // The Service changes its cluster IP and port: new folders, the old ones go, the block moves.
    volume.write({ 'config.json': renderNodeAccessConfig(config('10.96.7.7', 8443)), 'ca.crt': caB });
    await eventually(
      'the new Service address on the node',
      async () => tree(certsDir),
      (t) => JSON.stringify(t) === JSON.stringify(expectedTree(caB, '10.96.7.7', 8443)),
    );
    expect(readFileSync(hostsFile, 'utf8')).toBe(originalHosts + block('10.96.7.7'));

    // A file removed by hand comes back at the next pass.
    rmSync(path.join(certsDir, 'main.registry-system.svc:8443/ca.crt'));
    await eventually(
      'the CA back',
      async () => tree(certsDir),
      (t) => t['main.registry-system.svc:8443/ca.crt'] === `${caB}\n`,
    );

    // A broken configuration changes nothing (it is never read as "remove everything").
    volume.write({ 'config.json': '{"version": 1, "registry": ', 'ca.crt': caB });
    await eventually('the agent to report the broken configuration', agent.readyz, (r) => r.status === 503);
    expect((await agent.readyz()).body).toMatch(/sync failed: config.json is not JSON/);
    expect(tree(certsDir)).toEqual(expectedTree(caB, '10.96.7.7', 8443));
    await agent.proc.stop();
  });

  it('in cleanup mode removes exactly what it wrote, leaving the hosts file as it was', async () => {
    // The admin added a line after berth's block meanwhile; it stays.
    writeFileSync(hostsFile, `${readFileSync(hostsFile, 'utf8')}192.168.1.9 nas\n`);
    // A file the admin put into one of berth's folders stays, with its folder.
    writeFileSync(path.join(certsDir, 'main.registry-system.svc:8443/extra.pem'), 'mine\n');
    const agent = await startAgent(group, 'cleanup', [
      `--registry=${registry}`,
      '--cleanup',
      `--certs-dir=${certsDir}`,
      `--hosts-file=${hostsFile}`,
      '--interval=1s',
    ]);
    await eventually('the cleanup', agent.readyz, (r) => r.status === 200);
    expect((await agent.readyz()).body).toBe('cleaned up\n');
    expect(tree(certsDir)).toEqual({
      'docker.io/hosts.toml': foreignToml,
      'main.registry-system.svc:8443/extra.pem': 'mine\n',
      'notes.txt': 'the admin’s own file\n',
    });
    expect(readFileSync(hostsFile, 'utf8')).toBe(`${originalHosts}192.168.1.9 nas\n`);
    await agent.proc.stop();
  });

  it('leaves a folder it did not write alone and reports the conflict as not ready', async () => {
    volume.write({ 'config.json': renderNodeAccessConfig(config('10.96.0.20', 443)), 'ca.crt': caA });
    mkdirSync(path.join(certsDir, 'main.registry-system.svc'), { recursive: true });
    writeFileSync(path.join(certsDir, 'main.registry-system.svc/hosts.toml'), foreignToml);
    const agent = await startAgent(group, 'conflict', agentArgs());
    await eventually(
      'the conflict reported',
      agent.readyz,
      (r) => r.status === 503 && /conflicts/.test(r.body),
    );
    expect((await agent.readyz()).body).toMatch(/main\.registry-system\.svc \(not written by berth/);
    expect(readFileSync(path.join(certsDir, 'main.registry-system.svc/hosts.toml'), 'utf8')).toBe(
      foreignToml,
    );
    expect(tree(certsDir)['main.registry-system.svc:443/ca.crt']).toBe(`${caA}\n`);
    expect(await agent.metrics()).toMatch(/berth_node_agent_conflicts 1/);
    await agent.proc.stop();
  });

  it('puts its block back at once when another writer drops it from the shared hosts file', async () => {
    // No interval within the test's reach: only the watch of the hosts file can repair it.
    rmSync(path.join(certsDir, 'main.registry-system.svc'), { recursive: true, force: true });
    writeFileSync(hostsFile, originalHosts);
    const args = agentArgs().map((a) => (a.startsWith('--interval=') ? '--interval=1h' : a));
    const agent = await startAgent(group, 'hosts-watch', args);
    await eventually('the agent to be ready', agent.readyz, (r) => r.status === 200);
    const withBlock = originalHosts + block('10.96.0.20');
    expect(readFileSync(hostsFile, 'utf8')).toBe(withBlock);

    // Another agent's rewrite, made from a read before this block was there: in place.
    writeFileSync(hostsFile, `${originalHosts}10.9.9.9 other.example\n`);
    await eventually(
      'the block back after an in-place rewrite',
      async () => readFileSync(hostsFile, 'utf8'),
      (t) => t === `${originalHosts}10.9.9.9 other.example\n${block('10.96.0.20')}`,
    );
    // A tool that replaces the file (rename): the new file is watched too.
    writeFileSync(`${hostsFile}.new`, originalHosts);
    renameSync(`${hostsFile}.new`, hostsFile);
    await eventually(
      'the block back after a replace',
      async () => readFileSync(hostsFile, 'utf8'),
      (t) => t === withBlock,
    );
    await new Promise((r) => setTimeout(r, 500)); // the watch of the new file is armed after 250 ms
    writeFileSync(hostsFile, originalHosts);
    await eventually(
      'the block back after an in-place rewrite of the new file',
      async () => readFileSync(hostsFile, 'utf8'),
      (t) => t === withBlock,
    );
    await agent.proc.stop();
  });
});
