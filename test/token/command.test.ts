// `berth token-service` as a process: flags in, JSON logs out, TLS token endpoint, a separate
// health listener with /metrics, a clean exit on SIGTERM, and clear failures.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { KeyPair } from '../../src/pki/certificates.ts';
import { repoRoot } from '../harness/processes.ts';
import { waitFor } from '../harness/net.ts';
import { mint, storeText, writeKeyMaterial } from './fixture.ts';

const commandModule = path.join(repoRoot, 'src/token/command.ts');
const pusher = mint({
  username: 'push-web',
  grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
});

let dir: string;
let ca: KeyPair;
let args: string[];

function run(argv: string[]): { child: ChildProcess; out: string[]; exited: Promise<number | null> } {
  const out: string[] = [];
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(commandModule)}); process.exitCode = await m.tokenServiceCommand(process.argv.slice(1));`,
      '--',
      ...argv,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BERTH_TOKEN_ISSUER: 'berth/ns/main' } },
  );
  child.stdout?.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  child.stderr?.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out, exited };
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url.replace(/^http:/, 'https:'), { ca: ca.certPem, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

async function plainGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-token-cmd-'));
  ({ ca } = await writeKeyMaterial(dir));
  writeFileSync(path.join(dir, 'store.json'), storeText([pusher]));
  args = [
    '--listen=127.0.0.1:0',
    '--health-listen=127.0.0.1:0',
    `--tls-cert=${dir}/tls.crt`,
    `--tls-key=${dir}/tls.key`,
    `--signing-key=${dir}/signer.key`,
    `--signing-cert=${dir}/signer.crt`,
    `--store=${dir}/store.json`,
    '--service=main.ns',
    '--ttl=2m',
  ];
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('berth token-service', () => {
  it('serves tokens over TLS, health and metrics on the health listener, and stops on SIGTERM', async () => {
    const p = run(args);
    try {
      let started: { url: string; healthUrl: string } | undefined;
      await waitFor(
        'the started log line',
        async () => {
          for (const line of p.out) {
            const l = JSON.parse(line) as { event?: string; url?: string; healthUrl?: string };
            if (l.event === 'service.started') started = { url: l.url ?? '', healthUrl: l.healthUrl ?? '' };
          }
          return started !== undefined;
        },
        { timeoutMs: 20_000, describe: () => p.out.join('\n') },
      );
      if (!started) throw new Error('not started');
      expect(started.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const auth = { authorization: `Basic ${Buffer.from(`push-web:${pusher.secret}`).toString('base64')}` };
      const token = await get(`${started.url}/token?service=main.ns&scope=repository:team-a/web:push`, auth);
      expect(token.status).toBe(200);
      expect(JSON.parse(token.body)).toMatchObject({ expires_in: 120 });
      expect((await plainGet(`${started.healthUrl}/healthz`)).status).toBe(200);
      const metrics = await plainGet(`${started.healthUrl}/metrics`);
      expect(metrics.body).toMatch(/berth_token_issued_total\{principal="credential"\} 1/);
      expect((await get(`${started.url}/metrics`)).status).toBe(404); // not next to /token
      expect((await get(`${started.url}/healthz`)).status).toBe(200);
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      const events = p.out.map((l) => (JSON.parse(l) as { event?: string }).event);
      expect(events).toEqual(
        expect.arrayContaining(['store.loaded', 'service.started', 'token.issued', 'service.stopping']),
      );
      expect(p.out.join('\n')).not.toContain(pusher.secret);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('exits 1 with a clear log line when the store is missing', async () => {
    const p = run([...args.filter((a) => !a.startsWith('--store')), `--store=${dir}/absent.json`]);
    expect(await p.exited).toBe(1);
    const failed = p.out
      .map((l) => JSON.parse(l) as { event?: string; error?: string })
      .find((l) => l.event === 'service.failed');
    expect(failed?.error).toMatch(/cannot read the credential store .*absent\.json: ENOENT/);
  });

  it('exits 1 when the signing certificate is not the key’s', async () => {
    const p = run([...args.filter((a) => !a.startsWith('--signing-cert')), `--signing-cert=${dir}/tls.crt`]);
    expect(await p.exited).toBe(1);
    expect(p.out.join('\n')).toMatch(/does not belong to the signing key/);
  });

  it('exits 2 with the usage on bad flags', async () => {
    const p = run(['--ttl=forever', ...args.filter((a) => !a.startsWith('--ttl'))]);
    expect(await p.exited).toBe(2);
    expect(p.out.join('\n')).toMatch(/--ttl: "forever" is not a duration[\s\S]*usage: berth token-service/);
  });
});
