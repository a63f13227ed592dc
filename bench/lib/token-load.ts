// The token bench's load generator: `concurrency` keep-alive HTTPS connections, each sending one
// GET after another (no pipelining, as registry clients do), until `total` requests are answered.
//
// It shares the machine's cores with the server it measures, so it is kept as cheap as it can be:
// node:tls sockets, one pre-built request buffer, and a reader that only finds the status line
// and Content-Length (the token service always sends one). Node's https.get costs several times
// more CPU per request and made the client, not the server, the bottleneck on 2 cores.
import { connect, type TLSSocket } from 'node:tls';

export interface LoadTarget {
  host: string;
  port: number;
  /** Path and query, e.g. /token?service=... */
  path: string;
  headers: Record<string, string>;
  caPem: string;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  /** One latency per request, in milliseconds, in completion order. */
  latenciesMs: Float64Array;
  statuses: Map<number, number>;
  /** CPU time this (client) process spent, user + system, in seconds. */
  clientCpuSeconds: number;
}

export class LoadError extends Error {
  override name = 'LoadError';
}

const headerEnd = Buffer.from('\r\n\r\n');

function requestBuffer(target: LoadTarget): Buffer {
  const lines = [`GET ${target.path} HTTP/1.1`, `host: ${target.host}:${target.port}`];
  for (const [k, v] of Object.entries(target.headers)) lines.push(`${k}: ${v}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
}

/** Parses one response's head: status and body length, or undefined when incomplete. */
export function parseHead(buf: Buffer): { status: number; headBytes: number; bodyBytes: number } | undefined {
  const end = buf.indexOf(headerEnd);
  if (end < 0) return undefined;
  const head = buf.subarray(0, end).toString('latin1');
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (!m) throw new LoadError(`response without content-length: ${head.split('\r\n')[0]}`);
  return { status, headBytes: end + 4, bodyBytes: Number(m[1]) };
}

function open(target: LoadTarget): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      ca: target.caPem,
      servername: 'localhost',
    });
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Drives `target` with `concurrency` connections until `total` responses are in. */
export async function runLoad(target: LoadTarget, concurrency: number, total: number): Promise<LoadResult> {
  const request = requestBuffer(target);
  const latenciesMs = new Float64Array(total);
  const statuses = new Map<number, number>();
  const sockets = await Promise.all(Array.from({ length: concurrency }, () => open(target)));
  let sent = 0;
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    for (const socket of sockets) {
      let pending: Buffer = Buffer.alloc(0);
      let started = 0n;
      const next = () => {
        if (sent >= total) return;
        sent++;
        started = process.hrtime.bigint();
        socket.write(request);
      };
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let head: ReturnType<typeof parseHead>;
        try {
          head = parseHead(pending);
        } catch (err) {
          reject(err as Error);
          return;
        }
        if (!head || pending.length < head.headBytes + head.bodyBytes) return;
        pending = pending.subarray(head.headBytes + head.bodyBytes);
        latenciesMs[done] = Number(process.hrtime.bigint() - started) / 1e6;
        statuses.set(head.status, (statuses.get(head.status) ?? 0) + 1);
        done++;
        if (done === total) resolve();
        else next();
      });
      socket.on('error', reject);
      socket.on('close', () => {
        if (done < total) reject(new LoadError('the server closed a connection'));
      });
      next();
    }
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  for (const s of sockets) s.destroy();
  return { requests: total, seconds, latenciesMs, statuses, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** The p-th percentile (nearest rank) of latencies, in milliseconds. */
export function percentile(latencies: Float64Array, p: number): number {
  if (latencies.length === 0) return Number.NaN;
  const sorted = Float64Array.from(latencies).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}
