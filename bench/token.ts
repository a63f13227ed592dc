// Benchmark: berth's token service. `node bench/run.ts token`.
//
// 1. The signing baseline: one worker thread per CPU signing the claims the service signs for
//    the bench's request, with node:crypto, as fast as it goes: the service's own signing code
//    (TokenSigner.signNow) and node:crypto's documented JWS form (dsaEncoding ieee-p1363). The
//    machine's ES256 signing rate on all cores is the faster of the two.
// 2. The token service as it is deployed (TLS on loopback, the production JSON audit log on
//    stdout, pointed at /dev/null), in its own process tree: one process (--workers=1) and the
//    default node:cluster primary with one worker per CPU. A load generator of 16 keep-alive
//    connections (bench/lib/token-load.ts) drives /healthz (the baseline: TLS + HTTP + JSON), /token
//    granted (Basic check, grant, ES256 signature) and /token refused (wrong password). Besides
//    throughput and latency it records the CPU time of the server's processes and of the client
//    per request (/proc), since both share the machine's cores.
// 3. The goal figure, in BENCH_TOKEN_ROUNDS rounds of [signing baseline, /token granted on every
//    core] back to back, so that a noisy neighbour hits both: tokens/s ÷ signatures/s.
// 4. A full pull: crane pulls a 10-layer image through token auth (registry → realm → token
//    service → registry, the registry verifying the token on every request) and anonymously from a
//    second registry process with the same configuration minus `auth`, over the same storage.
//
// Settings (environment): BENCH_TOKEN_REQUESTS (20000 per case), BENCH_TOKEN_CONCURRENCY (16),
// BENCH_TOKEN_ROUNDS (3), BENCH_TOKEN_SIGNATURES (20000 per thread), BENCH_TOKEN_PULLS (8 each),
// BENCH_TOKEN_LAYER_BYTES (2 MiB).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import YAML from 'yaml';
import type { ResourceActions } from '../src/credentials/scope.ts';
import { mintCredential } from '../src/credentials/secret.ts';
import { serializeCredentialStore } from '../src/credentials/store.ts';
import { renderRegistryConfig } from '../src/registry/config.ts';
import type { TokenServiceConfig } from '../src/token/service.ts';
import { RegistryClient, startRegistry, type RunningRegistry } from '../test/harness/registry.ts';
import { writeKeyMaterial } from '../test/token/fixture.ts';
import { printTable, writeResults, type Row } from './lib/results.ts';
import type { BenchServerSetup } from './lib/token-server.ts';
import { percentile, runLoad, type LoadResult, type LoadTarget } from './lib/token-load.ts';
import type { SignJob, SignReport } from './lib/token-sign.ts';

const requests = Number(process.env.BENCH_TOKEN_REQUESTS ?? 20_000);
const concurrency = Number(process.env.BENCH_TOKEN_CONCURRENCY ?? 16);
const rounds = Number(process.env.BENCH_TOKEN_ROUNDS ?? 3);
const signatures = Number(process.env.BENCH_TOKEN_SIGNATURES ?? 20_000);
const pulls = Number(process.env.BENCH_TOKEN_PULLS ?? 8);
const layerBytes = Number(process.env.BENCH_TOKEN_LAYER_BYTES ?? 2 * 2 ** 20);
const layers = 10;
const warmup = 1000;
const service = 'main.registry-system';
const issuer = 'berth/registry-system/main';
const username = 'push-team-a-web';
const access: ResourceActions[] = [{ type: 'repository', name: 'team-a/web', actions: ['pull', 'push'] }];
const scope = 'repository:team-a/web:pull,push';
const here = path.dirname(fileURLToPath(import.meta.url));
const cpus = os.availableParallelism();
const clockTicks = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
const round = (x: number, digits = 0) => Number(x.toFixed(digits));

/** CPU seconds (user + system) that the processes have used so far. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch {
      // gone
    }
  }
  return ticks / clockTicks;
}

// --- 1. the signing baseline -------------------------------------------------------------------

interface SignFigures {
  way: SignJob['way'];
  threads: number;
  perSecond: number;
  cpuUsPerSignature: number;
}

async function signingRate(way: SignJob['way'], keyPem: string, threads: number): Promise<SignFigures> {
  const job: SignJob = {
    way,
    keyPem,
    count: signatures,
    claims: { issuer, subject: username, audience: service, access, ttlMs: 300_000 },
  };
  const reports = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<SignReport>((resolve, reject) => {
          const w = new Worker(path.join(here, 'lib', 'token-sign.ts'), { workerData: job });
          w.once('message', (m: SignReport) => resolve(m));
          w.once('error', reject);
        }),
    ),
  );
  // Threads start at slightly different times: the rate is over the span of the slowest one.
  const seconds = Math.max(...reports.map((r) => r.seconds));
  const cpu = reports.reduce((n, r) => n + r.cpuSeconds, 0);
  return {
    way,
    threads,
    perSecond: (threads * signatures) / seconds,
    cpuUsPerSignature: (cpu / (threads * signatures)) * 1e6,
  };
}

// --- 2. the token service ----------------------------------------------------------------------

interface Server {
  port: number;
  pids: number[];
  child: ChildProcess;
}

async function startServer(config: TokenServiceConfig, workers: number): Promise<Server> {
  const setup: BenchServerSetup = { config, workers };
  const devNull = openSync('/dev/null', 'w');
  const child = fork(path.join(here, 'lib', 'token-server.ts'), [JSON.stringify(setup)], {
    stdio: ['ignore', devNull, 'inherit', 'ipc'],
  });
  const { url, pids } = await new Promise<{ url: string; pids: number[] }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; pids: number[] }));
    child.once('exit', (code) => reject(new Error(`token server exited with ${code}`)));
  });
  return { port: Number(new URL(url).port), pids, child };
}

async function stopServer(s: Server): Promise<void> {
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  await exited;
}

interface CaseFigures {
  mode: string;
  case: string;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUs: number;
  clientCpuUs: number;
  statuses: string;
  result: LoadResult;
}

async function measure(mode: string, name: string, server: Server, target: LoadTarget): Promise<CaseFigures> {
  await runLoad(target, concurrency, warmup);
  const cpu0 = cpuSeconds(server.pids);
  const result = await runLoad(target, concurrency, requests);
  const serverCpu = cpuSeconds(server.pids) - cpu0;
  return {
    mode,
    case: name,
    perSecond: result.requests / result.seconds,
    p50Ms: percentile(result.latenciesMs, 50),
    p99Ms: percentile(result.latenciesMs, 99),
    serverCpuUs: (serverCpu / result.requests) * 1e6,
    clientCpuUs: (result.clientCpuSeconds / result.requests) * 1e6,
    statuses: [...result.statuses].map(([s, n]) => `${s}×${n}`).join(' '),
    result,
  };
}

function caseRow(f: CaseFigures): Row {
  return {
    server: f.mode,
    case: f.case,
    'req/s': round(f.perSecond),
    'p50 ms': round(f.p50Ms, 2),
    'p99 ms': round(f.p99Ms, 2),
    'server CPU µs/req': round(f.serverCpuUs),
    'client CPU µs/req': round(f.clientCpuUs),
    statuses: f.statuses,
  };
}

// --- 4. the pull -------------------------------------------------------------------------------

interface PullFigures {
  anonymousSeconds: number[];
  tokenSeconds: number[];
}

async function pullFigures(
  dir: string,
  files: { tlsCert: string; tlsKey: string; signingCert: string },
  tokenPort: number,
  caPem: string,
  secret: string,
): Promise<PullFigures> {
  const storage = path.join(dir, 'storage');
  mkdirSync(storage);
  const rendered = renderRegistryConfig({
    storage: { kind: 'filesystem', rootDirectory: storage },
    readOnly: false,
    http: {
      addr: '127.0.0.1:0',
      secret: 'bench-http-secret',
      tls: { certificate: files.tlsCert, key: files.tlsKey },
      debugAddr: '127.0.0.1:0',
    },
    // A host name: go-containerregistry refuses a realm on a loopback IP not the registry's own.
    auth: {
      realm: `https://localhost:${tokenPort}/token`,
      service,
      issuer,
      rootCertBundle: files.signingCert,
    },
    log: { level: 'error' },
  });
  const withoutAuth = YAML.parse(rendered) as Record<string, unknown>;
  delete withoutAuth.auth;
  const registries: RunningRegistry[] = [];
  const start = async (name: string, text: string) => {
    const configDir = path.join(dir, name);
    mkdirSync(configDir);
    writeFileSync(path.join(configDir, 'config.yml'), text);
    const r = await startRegistry({ configDir, storageDir: storage, tls: true });
    registries.push(r);
    return r;
  };
  const anonymous = new RegistryClient({ caPem });
  const nobody = new RegistryClient({ caPem });
  try {
    const open = await start('anonymous', YAML.stringify(withoutAuth));
    const guarded = await start('token', rendered);
    const authed = new RegistryClient({
      caPem,
      dockerConfig: {
        auths: { [guarded.host]: { auth: Buffer.from(`${username}:${secret}`).toString('base64') } },
      },
    });
    await anonymous.pushRandomImage(`${open.host}/team-a/web:bench`, { layers, layerBytes });
    const figures: PullFigures = { anonymousSeconds: [], tokenSeconds: [] };
    const timed = async (client: RegistryClient, ref: string) => {
      const t0 = process.hrtime.bigint();
      const res = await client.pull(ref);
      if (!res.ok) throw new Error(`crane pull ${ref} failed: ${res.stderr}`);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    // One warm-up each (page cache, the registries' first requests), then alternating pulls.
    await timed(anonymous, `${open.host}/team-a/web:bench`);
    await timed(authed, `${guarded.host}/team-a/web:bench`);
    const refused = await nobody.pull(`${guarded.host}/team-a/web:bench`);
    if (refused.ok) throw new Error('an anonymous pull through token auth succeeded: the bench is wrong');
    for (let i = 0; i < pulls; i++) {
      figures.anonymousSeconds.push(await timed(anonymous, `${open.host}/team-a/web:bench`));
      figures.tokenSeconds.push(await timed(authed, `${guarded.host}/team-a/web:bench`));
    }
    await authed.cleanup();
    return figures;
  } finally {
    for (const r of registries) await r.stop();
    await anonymous.cleanup();
    await nobody.cleanup();
  }
}

// --- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-token-'));
  const { ca, signing, files: keys } = await writeKeyMaterial(dir);
  // A store of realistic size: one credential per namespace for 500 namespaces, plus ours.
  const ours = mintCredential({
    username,
    grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
  });
  const others = Array.from(
    { length: 500 },
    (_, i) =>
      mintCredential({ username: `ns-${i}`, grants: [{ repositories: [`ns-${i}/**`], actions: ['pull'] }] })
        .entry,
  );
  const files = { ...keys, store: path.join(dir, 'store.json') };
  writeFileSync(
    files.store,
    serializeCredentialStore({ version: 1, anonymousPull: false, credentials: [...others, ours.entry] }),
  );
  const config: TokenServiceConfig = {
    listen: { host: '127.0.0.1', port: 0 },
    tlsCertPath: files.tlsCert,
    tlsKeyPath: files.tlsKey,
    signingKeyPath: files.signingKey,
    signingCertPath: files.signingCert,
    storePath: files.store,
    issuer,
    service,
    ttlMs: 300_000,
    storePollMs: 5_000,
  };
  const basic = (secret: string) => ({
    authorization: `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}`,
  });
  const tokenPath = `/token?service=${service}&scope=${encodeURIComponent(scope)}`;
  const target = (port: number, p: string, headers: Record<string, string>): LoadTarget => ({
    host: '127.0.0.1',
    port,
    path: p,
    headers,
    caPem: ca.certPem,
  });
  console.log(
    `token service: TLS on loopback, keep-alive, ${concurrency} connections, ${requests} requests per case ` +
      `(after ${warmup} warm-up), scope ${scope}, store of ${others.length + 1} credentials; ` +
      `${cpus} CPUs, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );

  try {
    // 1 + 2: the signing baseline, then each server mode.
    const signRows: SignFigures[] = [];
    signRows.push(await signingRate('signer', signing.keyPem, 1));
    signRows.push(await signingRate('signer', signing.keyPem, cpus));
    signRows.push(await signingRate('options', signing.keyPem, cpus));
    printTable(
      `ES256 signing baseline: node:crypto signing the service's claims, ${signatures} per thread`,
      signRows.map((s) => ({
        way:
          s.way === 'signer'
            ? 'TokenSigner.signNow (KeyObject, DER → r||s)'
            : 'sign(…, {key, dsaEncoding: ieee-p1363})',
        threads: s.threads,
        'signatures/s': round(s.perSecond),
        'CPU µs/signature': round(s.cpuUsPerSignature, 1),
      })),
    );

    const cases: CaseFigures[] = [];
    for (const workers of [1, cpus]) {
      const mode = workers === 1 ? 'one process' : `cluster, ${workers} workers`;
      const server = await startServer(config, workers);
      try {
        cases.push(await measure(mode, '/healthz (baseline)', server, target(server.port, '/healthz', {})));
        cases.push(
          await measure(mode, '/token granted', server, target(server.port, tokenPath, basic(ours.secret))),
        );
        cases.push(
          await measure(mode, '/token refused', server, target(server.port, tokenPath, basic('wrong'))),
        );
      } finally {
        await stopServer(server);
      }
    }
    printTable(
      `token service: ${concurrency} keep-alive TLS connections, ${requests} requests per case`,
      cases.map(caseRow),
    );
    const notGranted = cases.find(
      (c) => c.case === '/token granted' && c.result.statuses.get(200) !== requests,
    );
    if (notGranted) throw new Error(`not every token request was granted: ${notGranted.statuses}`);

    // 3: the goal, in rounds of [signing on every core, /token granted on every core].
    const goalRows: Row[] = [];
    const ratios: number[] = [];
    const p99s: number[] = [];
    const server = await startServer(config, cpus);
    let pull: PullFigures;
    try {
      const tokenTarget = target(server.port, tokenPath, basic(ours.secret));
      for (let r = 1; r <= rounds; r++) {
        const signer = await signingRate('signer', signing.keyPem, cpus);
        const options = await signingRate('options', signing.keyPem, cpus);
        const rate = Math.max(signer.perSecond, options.perSecond);
        const t = await measure(`cluster, ${cpus} workers`, '/token granted', server, tokenTarget);
        ratios.push(t.perSecond / rate);
        p99s.push(t.p99Ms);
        goalRows.push({
          round: r,
          'signatures/s (all cores)': round(rate),
          'tokens/s': round(t.perSecond),
          'tokens/signatures': `${(100 * (t.perSecond / rate)).toFixed(1)}%`,
          'p99 ms': round(t.p99Ms, 2),
          'server CPU µs/token': round(t.serverCpuUs),
          'client CPU µs/token': round(t.clientCpuUs),
          'signing CPU µs': round(signer.cpuUsPerSignature, 1),
        });
      }
      // 4: the pull, through this server.
      pull = await pullFigures(dir, files, server.port, ca.certPem, ours.secret);
    } finally {
      await stopServer(server);
    }
    printTable(
      `goal: tokens/s on every core against node:crypto's ES256 rate on every core (${rounds} rounds)`,
      goalRows,
    );

    // On a shared machine a pull is slowed by whatever else runs; the fastest of the runs is the
    // least disturbed estimate of each, the medians are printed beside them.
    const anon = Math.min(...pull.anonymousSeconds);
    const token = Math.min(...pull.tokenSeconds);
    const authShare = (token - anon) / token;
    const pullRow = (name: string, runs: number[]): Row => ({
      pull: name,
      'fastest s': round(Math.min(...runs), 3),
      'median s': round(median(runs), 3),
      runs: runs.map((s) => s.toFixed(3)).join(' '),
    });
    printTable(
      `full pull: crane pull of a ${layers}-layer image (${(layerBytes / 2 ** 20).toFixed(1)} MiB each), ${pulls} each, alternating`,
      [
        pullRow('anonymous (registry without auth, same storage)', pull.anonymousSeconds),
        pullRow('token auth (realm → token service, cluster)', pull.tokenSeconds),
      ],
    );

    const tokenRatio = median(ratios);
    const p99 = median(p99s);
    printTable('token service: goals', [
      {
        goal: 'tokens/s ≥ 50% of ES256 signatures/s on all cores',
        figure: `${(100 * tokenRatio).toFixed(1)}% (median of ${rounds})`,
        met: tokenRatio >= 0.5,
      },
      {
        goal: `p99 < 10 ms at ${concurrency} clients`,
        figure: `${p99.toFixed(2)} ms (median of ${rounds})`,
        met: p99 < 10,
      },
      {
        goal: 'auth ≤ 10% of a full pull',
        figure: `${(100 * authShare).toFixed(1)}% (${((token - anon) * 1000).toFixed(0)} ms of ${(token * 1000).toFixed(0)} ms, fastest runs)`,
        met: authShare <= 0.1,
      },
    ]);
    writeResults('token', {
      concurrency,
      requests,
      cpus,
      loadAverage: os.loadavg(),
      signing: signRows,
      cases: cases.map(({ result: _r, ...rest }) => rest),
      goal: { rows: goalRows, tokensPerSignature: tokenRatio, p99Ms: p99 },
      pull: {
        layers,
        layerBytes,
        ...pull,
        anonymousFastest: anon,
        tokenFastest: token,
        anonymousMedian: median(pull.anonymousSeconds),
        tokenMedian: median(pull.tokenSeconds),
        authShare,
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
