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

export async function startServers(options: ServerOptions): Promise<RunningServers> {
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
  const metrics = express.Router();
  metrics.get('/metrics', async (_req, res) => {
    try {
      res.type(options.registry.contentType).send(await options.registry.metrics());
    } catch (err) {
      res.status(500).type('text/plain').send(String(err));
    }
  });

  const wanted = new Map<string, express.Router[]>();
  const add = (address: string, router: express.Router) => {
    if (address === '0' || address === '') return;
    wanted.set(address, [...(wanted.get(address) ?? []), router]);
  };
  add(options.healthAddress, health);
  add(options.metricsAddress, metrics);
  const named = new Map<express.Router, string>([
    [health, '/healthz,/readyz'],
    [metrics, '/metrics'],
  ]);
  for (const route of options.routes ?? []) {
    add(route.address, route.router);
    named.set(route.router, route.name);
  }

  const servers: Server[] = [];
  const addresses: RunningServers['addresses'] = {};
  for (const [address, routers] of wanted) {
    const app = express();
    app.disable('x-powered-by');
    routers.forEach((r) => app.use(r));
    const { host, port } = parseAddress(address);
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    servers.push(server);
    const bound = server.address();
    const actual = typeof bound === 'object' && bound ? `${host}:${bound.port}` : address;
    if (routers.includes(health)) addresses.health = actual;
    if (routers.includes(metrics)) addresses.metrics = actual;
    for (const route of options.routes ?? [])
      if (routers.includes(route.router)) addresses[route.name] = actual;
    options.logger.info('Started HTTP server', {
      address: actual,
      serves: routers.map((r) => named.get(r)).join(','),
    });
  }
  return {
    addresses,
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}
