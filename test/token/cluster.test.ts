// `berth token-service --workers=2` as processes: a node:cluster primary and two workers on one
// port. Every worker serves tokens; the figures and the health are the whole service's; a
// credential revoked in the mounted store is refused by every worker once they have reloaded it,
// its replacement accepted by every one; a killed worker is replaced; SIGTERM lets a request in
// flight finish, then every process exits.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import type { KeyPair } from '../../src/pki/certificates.ts';
import { waitFor } from '../harness/net.ts';
import { repoRoot } from '../harness/processes.ts';
import { mint, SecretVolume, storeText, writeKeyMaterial } from './fixture.ts';

const commandModule = path.join(repoRoot, 'src/token/command.ts');
const grants = [{ repositories: ['team-a/web'], actions: ['pull' as const] }];
const first = mint({ username: 'ns-team-a', grants });
const second = mint({ username: 'ns-team-a', grants });
const scope = 'repository:team-a/web:pull';

interface LogLine {
  event?: string;
  worker?: number;
  url?: string;
  healthUrl?: string;
  workerPids?: number[];
  subject?: string;
  reason?: string;
}

let dir: string;
let ca: KeyPair;
let store: SecretVolume;
let child: ChildProcess;
const lines: LogLine[] = [];
const raw: string[] = [];
let exited: Promise<number | null>;
let url: string;
let healthUrl: string;
let pids: number[];

const events = (event: string) => lines.filter((l) => l.event === event);

/** One GET on a connection of its own (so node:cluster hands each to the next worker). */
function get(
  target: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(target, { ca: ca.certPem, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

const basic = (c: { username: string; secret: string }) => ({
  authorization: `Basic ${Buffer.from(`${c.username}:${c.secret}`).toString('base64')}`,
});
const tokenUrl = () => `${url}/token?service=main.ns&scope=${encodeURIComponent(scope)}`;

async function health(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${healthUrl}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function metrics(): Promise<string> {
  return (await fetch(`${healthUrl}/metrics`)).text();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-token-cluster-'));
  ({ ca } = await writeKeyMaterial(dir));
  store = new SecretVolume(path.join(dir, 'credentials'), { 'store.json': storeText([first]) });
  child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(commandModule)}); process.exitCode = await m.tokenServiceCommand(process.argv.slice(1));`,
      '--',
      '--workers=2',
      '--listen=127.0.0.1:0',
      '--health-listen=127.0.0.1:0',
      `--tls-cert=${dir}/tls.crt`,
      `--tls-key=${dir}/tls.key`,
      `--signing-key=${dir}/signer.key`,
      `--store=${store.file('store.json')}`,
      '--issuer=berth/ns/main',
      '--service=main.ns',
      // Polling slower than the test: the reload it sees comes from the folder watch, or the poll.
      '--store-poll=2s',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const collect = (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) {
      raw.push(line);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line (a warning on stderr)
      }
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('the service to start', async () => events('service.started').length === 1, {
    timeoutMs: 30_000,
    describe: () => raw.join('\n'),
  });
  const started = events('service.started')[0] ?? {};
  url = started.url ?? '';
  healthUrl = started.healthUrl ?? '';
  pids = started.workerPids ?? [];
}, 40_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  for (const pid of pids ?? []) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('berth token-service --workers=2', () => {
  it('serves tokens from every worker and reports one set of figures and one health', async () => {
    expect(pids).toHaveLength(2);
    expect(pids).not.toContain(child.pid);
    for (let i = 0; i < 6; i++) expect((await get(tokenUrl(), basic(first))).status).toBe(200);
    const issuedBy = new Set(events('token.issued').map((l) => l.worker));
    expect([...issuedBy].sort()).toEqual([1, 2]);

    const m = await metrics();
    expect(m).toMatch(/^berth_token_issued_total\{principal="credential"\} 6$/m);
    expect(m).toMatch(/^berth_token_workers 2$/m);
    expect(m).toMatch(/^berth_token_store_credentials 1$/m); // not 2: the largest, not the sum
    const h = await health();
    expect(h).toEqual({
      status: 200,
      body: expect.objectContaining({ status: 'ok', workers: '2/2', credentials: 1 }),
    });
    // /healthz on the main listener is a worker's own; /metrics is not there.
    expect((await get(`${url}/healthz`)).status).toBe(200);
    expect((await get(`${url}/metrics`)).status).toBe(404);
    expect(raw.join('\n')).not.toContain(first.secret);
  });

  it('refuses a revoked credential in every worker once the store reloads, and accepts its replacement', async () => {
    const before = (await health()).body.storeLoadedAt as string;
    expect(before).toEqual(expect.any(String));
    const refusedBefore = events('token.refused').length;
    store.write({ 'store.json': storeText([second]) }); // `first` revoked, `second` issued
    // The oldest store in force anywhere is newer than the one before: every worker has reloaded.
    await waitFor('every worker to reload the store', async () => {
      const b = (await health()).body.storeLoadedAt as string;
      return b > before;
    });
    // (Not interleaved: connections go to the workers in turn, so each credential meets both.)
    for (let i = 0; i < 6; i++) expect((await get(tokenUrl(), basic(first))).status).toBe(401);
    for (let i = 0; i < 6; i++) expect((await get(tokenUrl(), basic(second))).status).toBe(200);
    const refused = events('token.refused').slice(refusedBefore);
    expect(refused).toHaveLength(6);
    expect(new Set(refused.map((l) => l.worker))).toEqual(new Set([1, 2]));
    expect(refused.every((l) => l.reason === 'wrong-secret' && l.subject === 'ns-team-a')).toBe(true);
    expect(raw.join('\n')).not.toContain(second.secret);
  });

  it('replaces a worker that dies, and keeps serving meanwhile', async () => {
    const [victim, survivor] = pids;
    if (victim === undefined || survivor === undefined) throw new Error('no workers');
    process.kill(victim, 'SIGKILL');
    await waitFor('the worker to be replaced', async () => events('worker.replaced').length === 1);
    expect(events('worker.exited')).toEqual([expect.objectContaining({ reason: 'SIGKILL' })]);
    expect(alive(survivor)).toBe(true);
    await waitFor('both workers healthy', async () => (await health()).body.workers === '2/2');
    const m = await metrics();
    expect(m).toMatch(/^berth_token_worker_exits_total\{reason="SIGKILL"\} 1$/m);
    expect(m).toMatch(/^berth_token_workers 2$/m);
    for (let i = 0; i < 4; i++) expect((await get(tokenUrl(), basic(second))).status).toBe(200);
    const replacement = events('worker.replaced')[0] as LogLine & { pid?: number };
    if (replacement.pid) pids.push(replacement.pid);
  });

  it('on SIGTERM answers the request in flight, then every process exits 0', async () => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(url).port), ca: ca.certPem });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const form = new URLSearchParams({
      grant_type: 'password',
      username: second.username,
      password: second.secret,
      service: 'main.ns',
      scope,
    }).toString();
    // The headers now, the body later: the request is in flight when the stop begins.
    socket.write(
      'POST /token HTTP/1.1\r\nhost: t\r\ncontent-type: application/x-www-form-urlencoded\r\n' +
        `expect: 100-continue\r\ncontent-length: ${form.length}\r\n\r\n`,
    );
    await waitFor('100 Continue', async () => received.includes('100 Continue'));
    child.kill('SIGTERM');
    await waitFor('both workers to stop accepting', async () => events('worker.stopping').length >= 2);
    socket.write(form);
    await waitFor('the answer', async () => /\r\n\r\n\{.*\}$/s.test(received.split('100 Continue')[1] ?? ''));
    expect(received).toMatch(/HTTP\/1\.1 200 OK/);
    expect(received.toLowerCase()).toContain('connection: close');
    expect(await exited).toBe(0);
    socket.destroy();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const order = lines
      .map((l) => l.event)
      .filter((e) => e === 'service.stopping' || e === 'service.stopped');
    expect(order).toEqual(['service.stopping', 'service.stopped']);
  }, 30_000);
});
