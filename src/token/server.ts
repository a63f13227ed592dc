// The token service's HTTP(S) listeners: `/token` (GET and the OAuth2 POST form), `/healthz`,
// and `/metrics`. Metrics go on the separate plain-HTTP health listener when one is configured
// (so they are not exposed where `/token` is, e.g. through an Ingress), else on the main one.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { handleTokenRequest, type TokenDeps, type TokenSettings } from './handler.ts';
import type { CredentialStoreFile } from './store-file.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface TokenServerOptions {
  listen: ListenAddress;
  /** Serve /token over TLS with this certificate and key (PEM). */
  tls?: { certPem: string; keyPem: string };
  /** A plain-HTTP listener for /healthz and /metrics (probes, Prometheus). */
  healthListen?: ListenAddress;
}

export interface TokenServerDeps extends Omit<TokenDeps, 'store'> {
  storeFile: CredentialStoreFile;
}

export interface RunningTokenServer {
  /** Base URL of the main listener, e.g. https://127.0.0.1:5001 */
  url: string;
  port: number;
  healthUrl?: string;
  close(): Promise<void>;
}

const maxBodyBytes = 16 * 1024;

function send(res: http.ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body).toString() });
  res.end(body);
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  send(res, status, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) return 'too-large';
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function healthBody(deps: TokenServerDeps): { status: number; body: unknown } {
  try {
    const store = deps.storeFile.current();
    return {
      status: 200,
      body: {
        status: 'ok',
        credentials: store.size,
        storeLoadedAt: deps.storeFile.lastLoaded?.toISOString(),
      },
    };
  } catch {
    return { status: 503, body: { status: 'no credential store loaded' } };
  }
}

async function serveMetrics(res: http.ServerResponse, deps: TokenServerDeps): Promise<void> {
  const text = await deps.metrics.registry.metrics();
  send(res, 200, { 'content-type': deps.metrics.registry.contentType }, text);
}

export async function startTokenServer(
  settings: TokenSettings,
  deps: TokenServerDeps,
  options: TokenServerOptions,
): Promise<RunningTokenServer> {
  const tokenDeps: TokenDeps = { ...deps, store: () => deps.storeFile.current() };
  const metricsOnMain = options.healthListen === undefined;

  const main = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token');
    if (url.pathname === '/token') {
      let params: URLSearchParams;
      let method: 'GET' | 'POST';
      if (req.method === 'GET') {
        method = 'GET';
        params = url.searchParams;
      } else if (req.method === 'POST') {
        method = 'POST';
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (type !== 'application/x-www-form-urlencoded')
          return sendJson(res, 415, {
            error: 'invalid_request',
            error_description: 'expected an application/x-www-form-urlencoded form',
          });
        const form = await readForm(req);
        if (form === 'too-large')
          return sendJson(res, 413, {
            error: 'invalid_request',
            error_description: 'request body too large',
          });
        params = form;
      } else {
        return sendJson(
          res,
          405,
          { errors: [{ code: 'UNSUPPORTED', message: 'use GET or POST' }] },
          { allow: 'GET, POST' },
        );
      }
      const answer = await handleTokenRequest(
        { method, authorization: req.headers.authorization, params, remoteAddress: req.socket.remoteAddress },
        settings,
        tokenDeps,
      );
      return send(res, answer.status, answer.headers, JSON.stringify(answer.body));
    }
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      const h = healthBody(deps);
      return sendJson(res, h.status, h.body);
    }
    if (metricsOnMain && url.pathname === '/metrics') return serveMetrics(res, deps);
    sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
  };

  const guard =
    (handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>) =>
    (req: http.IncomingMessage, res: http.ServerResponse) => {
      handler(req, res).catch((err: unknown) => {
        deps.logger.error('token service request failed', {
          event: 'request.error',
          path: req.url?.split('?')[0],
          error: err instanceof Error ? err.message : String(err),
        });
        if (!res.headersSent)
          sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: 'internal error' }] });
        else res.destroy();
      });
    };

  const mainServer = options.tls
    ? https.createServer(
        { cert: options.tls.certPem, key: options.tls.keyPem, minVersion: 'TLSv1.2' },
        guard(main),
      )
    : http.createServer(guard(main));
  mainServer.keepAliveTimeout = 65_000;
  const servers: http.Server[] = [mainServer];
  const port = await listen(mainServer, options.listen);
  const scheme = options.tls ? 'https' : 'http';
  const result: RunningTokenServer = {
    url: `${scheme}://${urlHost(options.listen.host)}:${port}`,
    port,
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };

  if (options.healthListen) {
    const health = http.createServer(
      guard(async (req, res) => {
        const url = new URL(req.url ?? '/', 'http://health');
        if (url.pathname === '/healthz' || url.pathname === '/readyz') {
          const h = healthBody(deps);
          return sendJson(res, h.status, h.body);
        }
        if (url.pathname === '/metrics') return serveMetrics(res, deps);
        sendJson(res, 404, { error: 'not found' });
      }),
    );
    servers.push(health);
    const healthPort = await listen(health, options.healthListen);
    result.healthUrl = `http://${urlHost(options.healthListen.host)}:${healthPort}`;
  }
  // Closing must not wait for idle keep-alive connections.
  const close = result.close;
  result.close = async () => {
    const done = close();
    for (const s of servers) s.closeAllConnections();
    await done;
  };
  return result;
}

function urlHost(host: string): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return h.includes(':') ? `[${h}]` : h;
}

function listen(server: http.Server, address: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
