// Benchmark: berth's token service. Starts it in its own process on loopback over TLS (as it is
// deployed), then drives it with a fixed concurrency over a bounded number of keep-alive requests
// and prints throughput and latency percentiles for:
//   - /healthz, a trivial endpoint of the same server (the baseline: TLS + HTTP + JSON),
//   - /token for a fixed scope with valid credentials (SHA-256 check, grant, ES256 signature),
//   - /token with a wrong password (the refusal path).
// The difference between the baseline and /token is the cost of authentication and signing.
//
// Settings (environment): BENCH_TOKEN_REQUESTS (default 5000), BENCH_TOKEN_CONCURRENCY (16).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintCredential } from '../src/credentials/secret.ts';
import { serializeCredentialStore } from '../src/credentials/store.ts';
import { createCA, issueCertificate } from '../src/pki/certificates.ts';
import type { TokenServiceConfig } from '../src/token/service.ts';

const requests = Number(process.env.BENCH_TOKEN_REQUESTS ?? 5000);
const concurrency = Number(process.env.BENCH_TOKEN_CONCURRENCY ?? 16);
const warmup = Math.min(500, Math.ceil(requests / 10));
const scope = 'repository:team-a/web:pull,push';
const service = 'main.registry-system';

interface Result {
  name: string;
  requests: number;
  seconds: number;
  latenciesMs: number[];
  statuses: Map<number, number>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

async function drive(
  name: string,
  agent: https.Agent,
  url: string,
  headers: Record<string, string>,
  total: number,
): Promise<Result> {
  const latenciesMs: number[] = [];
  const statuses = new Map<number, number>();
  let issued = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = https.get(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
          statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
          resolve();
        });
      });
      req.on('error', reject);
    });
  const worker = async () => {
    while (issued < total) {
      issued++;
      await one();
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, requests: total, seconds, latenciesMs, statuses };
}

function report(r: Result): string {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  const statuses = [...r.statuses].map(([s, n]) => `${s}×${n}`).join(' ');
  return (
    `  ${r.name.padEnd(34)} ${(r.requests / r.seconds).toFixed(0).padStart(7)} req/s` +
    `   p50 ${percentile(sorted, 50).toFixed(2).padStart(6)} ms   p99 ${percentile(sorted, 99).toFixed(2).padStart(6)} ms   [${statuses}]`
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-token-'));
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 3600_000);
  const ca = await createCA({ commonName: 'bench CA', notBefore, notAfter });
  const serving = await issueCertificate(ca, {
    commonName: 'token',
    ipAddresses: ['127.0.0.1'],
    notBefore,
    notAfter,
    usage: 'server',
  });
  const signing = await createCA({ commonName: 'bench token signer', notBefore, notAfter });
  // A store of realistic size: one credential per namespace for 500 namespaces, plus ours.
  const ours = mintCredential({
    username: 'push-team-a-web',
    grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
  });
  const others = Array.from(
    { length: 500 },
    (_, i) =>
      mintCredential({ username: `ns-${i}`, grants: [{ repositories: [`ns-${i}/**`], actions: ['pull'] }] })
        .entry,
  );
  const files: Record<string, string> = {
    'tls.crt': serving.certPem,
    'tls.key': serving.keyPem,
    'signer.crt': signing.certPem,
    'signer.key': signing.keyPem,
    'store.json': serializeCredentialStore({
      version: 1,
      anonymousPull: false,
      credentials: [...others, ours.entry],
    }),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const config: TokenServiceConfig = {
    listen: { host: '127.0.0.1', port: 0 },
    tlsCertPath: path.join(dir, 'tls.crt'),
    tlsKeyPath: path.join(dir, 'tls.key'),
    signingKeyPath: path.join(dir, 'signer.key'),
    signingCertPath: path.join(dir, 'signer.crt'),
    storePath: path.join(dir, 'store.json'),
    issuer: 'berth/registry-system/main',
    service,
    ttlMs: 300_000,
    storePollMs: 5_000,
  };
  const serverScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'token-server.ts');
  const child = fork(serverScript, [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const agent = new https.Agent({ ca: ca.certPem, keepAlive: true, maxSockets: concurrency });
  try {
    const { url } = await new Promise<{ url: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { url: string }));
      child.once('exit', (code) => reject(new Error(`token server exited with ${code}`)));
    });
    const basic = (secret: string) => ({
      authorization: `Basic ${Buffer.from(`push-team-a-web:${secret}`).toString('base64')}`,
    });
    const tokenUrl = `${url}/token?service=${service}&scope=${encodeURIComponent(scope)}`;
    const cases: [string, string, Record<string, string>][] = [
      ['/healthz (baseline)', `${url}/healthz`, {}],
      ['/token granted (auth + ES256 sign)', tokenUrl, basic(ours.secret)],
      ['/token refused (wrong password)', tokenUrl, basic('wrong')],
    ];
    console.log(
      `token service: TLS on loopback, keep-alive, concurrency ${concurrency}, ${requests} requests per case ` +
        `(after ${warmup} warm-up), scope ${scope}, store of ${others.length + 1} credentials`,
    );
    const results: Result[] = [];
    for (const [name, target, headers] of cases) await drive(name, agent, target, headers, warmup);
    for (const [name, target, headers] of cases) {
      const r = await drive(name, agent, target, headers, requests);
      results.push(r);
      console.log(report(r));
    }
    const [base, granted] = results;
    if (base && granted) {
      // The server is one Node process: at saturation, its time per request is 1 / throughput.
      const extraUs = (granted.seconds / granted.requests - base.seconds / base.requests) * 1e6;
      console.log(
        `  authentication + signing cost over the baseline: ~${extraUs.toFixed(0)} µs of server time per token ` +
          `(${(base.requests / base.seconds / (granted.requests / granted.seconds)).toFixed(1)}× the baseline's time)`,
      );
    }
    const bad = results.find(
      (r) => r.name.startsWith('/token granted') && r.statuses.get(200) !== r.requests,
    );
    if (bad) throw new Error(`not every token request was granted: ${[...bad.statuses].join(' ')}`);
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
