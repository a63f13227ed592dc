// The token service's HTTP(S) listeners: `/token` (GET and the OAuth2 POST form), `/healthz`,
// and `/metrics`. Metrics go on the separate plain-HTTP health listener when one is configured
// (so they are not exposed where `/token` is, e.g. through an Ingress), else on the main one.
//
// node:http directly, no framework: three routes, and the token path is the hot one (Express's
// router and request/response decoration would cost more per token than the routing is worth).
// Closing is graceful: the listeners stop accepting, idle keep-alive connections are closed,
// requests in flight are answered (with `connection: close`), and whatever is left after the
// grace period is cut.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'winston';
import { handleTokenRequest, type TokenDeps, type TokenSettings } from './handler.ts';
import { formTooLarge, routeOf, tokenParamsSource, type JsonAnswer } from './routes.ts';
import type { CredentialStoreFile } from './store-file.ts';
import type { ListenAddress } from '../util/listen.ts';

export interface TokenServerOptions {
  listen: ListenAddress;
  /** Serve /token over TLS with this certificate and key (PEM). */
  tls?: { certPem: string; keyPem: string };
  /** A plain-HTTP listener for /healthz and /metrics (probes, Prometheus). */
  healthListen?: ListenAddress;
  /**
   * Serve /metrics on the main listener; default: when there is no health listener. (A cluster
   * worker has none of its own, the primary serves it, so it is told.)
   */
  metricsOnMain?: boolean;
}

/** The Prometheus exposition the /metrics route serves. */
export interface MetricsText {
  contentType: string;
  text: string;
}

export interface TokenServerDeps extends Omit<TokenDeps, 'store'> {
  storeFile: CredentialStoreFile;
  /**
   * Where /metrics comes from; default: this process's registry. A cluster worker asks the
   * primary, so every worker serves the whole service's figures.
   */
  metricsText?: () => Promise<MetricsText>;
}

export interface RunningTokenServer {
  /** Base URL of the main listener, e.g. https://127.0.0.1:5001 */
  url: string;
  port: number;
  healthUrl?: string;
  /**
   * Stops accepting, answers the requests in flight, and cuts the connections still open after
   * `graceMs` (default 0: at once, after the idle ones are closed).
   */
  close(graceMs?: number): Promise<void>;
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

/** The health answer: 200 with the store in force, 503 before one is loaded. */
export function storeHealth(storeFile: CredentialStoreFile): { status: number; body: StoreHealthBody } {
  try {
    const store = storeFile.current();
    return {
      status: 200,
      body: {
        status: 'ok',
        credentials: store.size,
        storeLoadedAt: storeFile.lastLoaded?.toISOString(),
      },
    };
  } catch {
    return { status: 503, body: { status: 'no credential store loaded' } };
  }
}

export interface StoreHealthBody {
  status: string;
  credentials?: number;
  storeLoadedAt?: string | undefined;
}

function healthBody(deps: TokenServerDeps): { status: number; body: unknown } {
  return storeHealth(deps.storeFile);
}

async function serveMetrics(res: http.ServerResponse, deps: TokenServerDeps): Promise<void> {
  const m = deps.metricsText
    ? await deps.metricsText()
    : { contentType: deps.metrics.registry.contentType, text: await deps.metrics.registry.metrics() };
  send(res, 200, { 'content-type': m.contentType }, m.text);
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

/** The parameters of a `/token` request (query or form), or the answer that refuses it. */
async function tokenParams(
  req: http.IncomingMessage,
  url: URL,
): Promise<{ method: 'GET' | 'POST'; params: URLSearchParams } | JsonAnswer> {
  const source = tokenParamsSource(req.method, req.headers['content-type']);
  if (source === 'query') return { method: 'GET', params: url.searchParams };
  if (source !== 'form') return source;
  const form = await readForm(req);
  return form === 'too-large' ? formTooLarge : { method: 'POST', params: form };
}

/** The main listener's routes: `/token`, `/healthz` (`/readyz`), and `/metrics` when it serves them. */
function mainRoutes(settings: TokenSettings, deps: TokenServerDeps, metricsOnMain: boolean): Handler {
  const tokenDeps: TokenDeps = { ...deps, store: () => deps.storeFile.current() };
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    switch (routeOf(url.pathname, { token: true, metrics: metricsOnMain })) {
      case 'token': {
        const asked = await tokenParams(req, url);
        if ('status' in asked) return sendJson(res, asked.status, asked.body, asked.headers);
        const answer = await handleTokenRequest(
          { ...asked, authorization: req.headers.authorization, remoteAddress: req.socket.remoteAddress },
          settings,
          tokenDeps,
        );
        return send(res, answer.status, answer.headers, JSON.stringify(answer.body));
      }
      case 'health': {
        const h = healthBody(deps);
        return sendJson(res, h.status, h.body);
      }
      case 'metrics':
        return serveMetrics(res, deps);
      case 'not-found':
        return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    }
  };
}

/** The health listener's routes: `/healthz` (`/readyz`) and `/metrics`. */
function healthRoutes(deps: TokenServerDeps): Handler {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://health');
    switch (routeOf(url.pathname, { token: false, metrics: true })) {
      case 'health': {
        const h = healthBody(deps);
        return sendJson(res, h.status, h.body);
      }
      case 'metrics':
        return serveMetrics(res, deps);
      default:
        return sendJson(res, 404, { error: 'not found' });
    }
  };
}

/**
 * Wraps the listeners' handlers: keeps the responses in flight (told to close their connection
 * once closing begins), and answers a handler's failure with a 500 without details (or cuts the
 * connection when the answer had begun), logging it as `request.error`.
 */
function requestGuard(logger: Logger): {
  wrap(handler: Handler): http.RequestListener;
  beginClosing(): void;
} {
  let closing = false;
  const inFlight = new Set<http.ServerResponse>();
  const wrap = (handler: Handler) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    else {
      inFlight.add(res);
      res.once('close', () => inFlight.delete(res));
    }
    handler(req, res).catch((err: unknown) => {
      logger.error('token service request failed', {
        event: 'request.error',
        path: req.url?.split('?')[0],
        error: err instanceof Error ? err.message : String(err),
      });
      if (!res.headersSent) sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: 'internal error' }] });
      else res.destroy();
    });
  };
  const beginClosing = () => {
    closing = true;
    for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
  };
  return { wrap, beginClosing };
}

/**
 * Stops `servers` accepting, closes idle connections (now and as requests finish), and cuts the
 * connections still open after `graceMs`; resolves once every server is closed.
 */
async function closeGracefully(servers: http.Server[], graceMs: number): Promise<void> {
  const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  for (const s of servers) s.closeIdleConnections();
  // A connection that finishes its last request becomes idle; close those as they appear.
  const sweep = setInterval(() => {
    for (const s of servers) s.closeIdleConnections();
  }, 50);
  let cut: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    cut = setTimeout(() => {
      for (const s of servers) s.closeAllConnections();
      resolve();
    }, graceMs);
  });
  try {
    await Promise.race([closed, deadline]);
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(cut);
  }
}

export async function startTokenServer(
  settings: TokenSettings,
  deps: TokenServerDeps,
  options: TokenServerOptions,
): Promise<RunningTokenServer> {
  const metricsOnMain = options.metricsOnMain ?? options.healthListen === undefined;
  const guard = requestGuard(deps.logger);
  const main = guard.wrap(mainRoutes(settings, deps, metricsOnMain));
  const mainServer = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem, minVersion: 'TLSv1.2' }, main)
    : http.createServer(main);
  mainServer.keepAliveTimeout = 65_000;
  const servers: http.Server[] = [mainServer];
  const port = await listen(mainServer, options.listen);
  const scheme = options.tls ? 'https' : 'http';
  const result: RunningTokenServer = {
    url: `${scheme}://${urlHost(options.listen.host)}:${port}`,
    port,
    close: async (graceMs = 0) => {
      guard.beginClosing();
      await closeGracefully(servers, graceMs);
    },
  };
  if (options.healthListen) {
    const health = http.createServer(guard.wrap(healthRoutes(deps)));
    servers.push(health);
    const healthPort = await listen(health, options.healthListen);
    result.healthUrl = `http://${urlHost(options.healthListen.host)}:${healthPort}`;
  }
  return result;
}

export function urlHost(host: string): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return h.includes(':') ? `[${h}]` : h;
}

export function listen(server: http.Server, address: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
