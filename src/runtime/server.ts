// Health and metrics over HTTP (express): /healthz (the process answers), /readyz (every informer
// has synced; 503 with the list otherwise) and /metrics (the Deps' prom-client Registry). Health
// and metrics may share an address or use two; "0" disables one. Controllers may add routes of
// their own (`routes`: the registry push-event listener), on their own address or a shared one.
import type { Server } from 'node:http';
import express from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.ts';

/** Extra routes a controller serves (returned by its factory, see src/controllers.ts). */
export interface HttpRoute {
  /** A short name, for logs and `addresses`. */
  name: string;
  address: string;
  router: express.Router;
}

export interface ServerOptions {
  healthAddress: string;
  metricsAddress: string;
  routes?: HttpRoute[];
  registry: Registry;
  logger: Logger;
  /** Names of what is not ready yet; empty when ready. */
  notReady(): string[];
}

export interface RunningServers {
  /** The addresses actually bound ("host:port"), for tests that bind port 0. */
  addresses: { health?: string; metrics?: string } & Record<string, string | undefined>;
  close(): Promise<void>;
}

export function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = i > 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : '0.0.0.0';
  const port = Number(i >= 0 ? address.slice(i + 1) : address);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`"${address}" is not a host:port address`);
  return { host, port };
}

/** One router to serve: `name` keys `addresses`, `serves` is what the log line says it serves. */
interface Mount<R> {
  name: string;
  serves: string;
  address: string;
  router: R;
}

/** The mounts grouped by address, in order; address "0" (or empty) disables a mount. Pure. */
export function groupByAddress<M extends { address: string }>(mounts: readonly M[]): Map<string, M[]> {
  const wanted = new Map<string, M[]>();
  for (const m of mounts) {
    if (m.address === '0' || m.address === '') continue;
    wanted.set(m.address, [...(wanted.get(m.address) ?? []), m]);
  }
  return wanted;
}

export async function startServers(options: ServerOptions): Promise<RunningServers> {
  const mounts: Mount<express.Router>[] = [
    {
      name: 'health',
      serves: '/healthz,/readyz',
      address: options.healthAddress,
      router: healthRouter(options),
    },
    { name: 'metrics', serves: '/metrics', address: options.metricsAddress, router: metricsRouter(options) },
    ...(options.routes ?? []).map((r) => ({ ...r, serves: r.name })),
  ];
  const servers: Server[] = [];
  const addresses: RunningServers['addresses'] = {};
  for (const [address, on] of groupByAddress(mounts)) {
    const { server, actual } = await listen(address, on);
    servers.push(server);
    for (const m of on) addresses[m.name] = actual;
    options.logger.info('Started HTTP server', {
      address: actual,
      serves: on.map((m) => m.serves).join(','),
    });
  }
  return { addresses, close: () => closeAll(servers) };
}

/** /healthz (the process answers) and /readyz (503 with what is not ready yet). */
function healthRouter(options: Pick<ServerOptions, 'notReady'>): express.Router {
  const health = express.Router();
  health.get('/healthz', (_req, res) => void res.type('text/plain').send('ok'));
  health.get('/readyz', (_req, res) => {
    const pending = options.notReady();
    if (pending.length === 0) return void res.type('text/plain').send('ok');
    res
      .status(503)
      .type('text/plain')
      .send(`not ready: ${pending.join(', ')}`);
  });
  return health;
}

/** /metrics: the Registry's metrics in its content type. */
function metricsRouter(options: Pick<ServerOptions, 'registry'>): express.Router {
  const metrics = express.Router();
  metrics.get('/metrics', async (_req, res) => {
    try {
      res.type(options.registry.contentType).send(await options.registry.metrics());
    } catch (err) {
      res.status(500).type('text/plain').send(String(err));
    }
  });
  return metrics;
}

/** One express app with `mounts`' routers, listening on `address`; `actual` is the bound host:port. */
async function listen(
  address: string,
  mounts: readonly Mount<express.Router>[],
): Promise<{ server: Server; actual: string }> {
  const app = express();
  app.disable('x-powered-by');
  mounts.forEach((m) => app.use(m.router));
  const { host, port } = parseAddress(address);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const bound = server.address();
  const actual = typeof bound === 'object' && bound ? `${host}:${bound.port}` : address;
  return { server, actual };
}

async function closeAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
}
