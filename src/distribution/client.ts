// berth's one client of the Distribution registry API, used by the retention run, the Repository
// controller's tag count and the garbage collection's read-only probe and verification: catalog
// and tag lists following `Link` pagination, manifest HEAD/GET with every manifest media type
// accepted, delete by digest, Docker/OCI token authentication (Bearer challenge → token from the
// realm with the basic credential; or plain Basic), retries with backoff on 429, 5xx and
// connection errors, and a concurrency limit on requests. A Retry-After (on 429 or 503) pauses
// every request of the client until then, through one shared Throttle (throttle.ts), so concurrent
// workers back off together. The credential never appears in errors or logs.
import http from 'node:http';
import https from 'node:https';
import { createLimit, type Limit } from '../util/limit.ts';
import {
  createThrottle,
  retryableStatus,
  retryAfterMs,
  retryDelay,
  type NowClock,
  type Throttle,
} from './throttle.ts';

export const manifestAccept = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export const indexMediaTypes = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status: number;
  /** The wait the registry asked for (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, status: number, retryAfterMs?: number) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Where a registry is and how to reach it: what every client of berth's is given. */
export interface RegistryAccess {
  /** https://host:port (or http://) */
  url: string;
  /** PEM bundle to trust (the registry's CA); absent: the system's. */
  caPem?: string;
  credential?: { username: string; password: string };
}

export interface RegistryClientOptions extends RegistryAccess {
  /** Requests in flight at most (default 8). */
  concurrency?: number;
  /** Attempts per request (default 5). */
  attempts?: number;
  /** The actions a repository token asks for (default `pull,delete`, what a retention run needs). */
  repositoryActions?: string;
  /** First backoff delay (default 200 ms), doubled per attempt, with jitter. */
  backoffMs?: number;
  /** Longest wait before a retry, whatever Retry-After asks (default 60 s). */
  maxRetryWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The time (the runtime's Clock fits); default the system's. */
  clock?: NowClock;
  random?: () => number;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
}

export interface Manifest extends ManifestHead {
  children: string[];
  subject?: string;
}

/** Parses `Link: </v2/_catalog?last=a&n=100>; rel="next"` into the next URL, if any. */
export function nextLink(link: string | undefined, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (m?.[1]) return new URL(m[1], base).toString();
  }
  return undefined;
}

/** Parses a WWW-Authenticate challenge: scheme and parameters. */
export function parseChallenge(
  header: string | undefined,
): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const m = /^(\w+)\s*(.*)$/s.exec(header.trim());
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)="([^"]*)"/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2] ?? '')) !== null) params[(p[1] ?? '').toLowerCase()] = p[2] ?? '';
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

export class RegistryClient {
  readonly url: string;
  private readonly agent: http.Agent;
  private readonly limit: Limit;
  private readonly options: RegistryClientOptions;
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: NowClock;
  /** The pause every request of this client honours (set by a Retry-After). */
  readonly throttle: Throttle;
  /** Requests sent (including retries and token fetches), for the report and the benchmark. */
  requests = 0;

  constructor(options: RegistryClientOptions) {
    this.options = options;
    this.url = options.url.replace(/\/$/, '');
    const concurrency = options.concurrency ?? 8;
    this.limit = createLimit(concurrency);
    this.agent = this.url.startsWith('https:')
      ? new https.Agent({
          keepAlive: true,
          maxSockets: concurrency,
          ...(options.caPem ? { ca: options.caPem } : {}),
        })
      : new http.Agent({ keepAlive: true, maxSockets: concurrency });
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.clock = options.clock ?? { now: () => Date.now() };
    this.throttle = createThrottle({ clock: this.clock, sleep: this.sleep });
  }

  close(): void {
    this.agent.destroy();
  }

  private raw(method: string, url: string, headers: Record<string, string>): Promise<Response> {
    this.requests++;
    const u = new URL(url);
    const transport = u.protocol === 'http:' ? http : https;
    const agent = u.origin === new URL(this.url).origin ? this.agent : undefined;
    const extra = !agent && this.options.caPem && u.protocol === 'https:' ? { ca: this.options.caPem } : {};
    return new Promise((resolve, reject) => {
      const req = transport.request(u, { method, headers, agent, timeout: 60_000, ...extra }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${u.pathname}: timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * One request with retries on 429/5xx/connection errors. Every attempt first waits for the
   * client's pause; a Retry-After sets that pause for all requests, and this one retries then.
   */
  private async withRetries(
    method: string,
    url: string,
    headers: Record<string, string>,
    attempts = this.options.attempts ?? 5,
  ): Promise<Response> {
    const delays = { baseMs: this.options.backoffMs ?? 200, maxMs: this.options.maxRetryWaitMs ?? 60_000 };
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await this.throttle.ready();
      let res: Response | undefined;
      const now = (): number => this.clock.now();
      let after: number | undefined;
      try {
        res = await this.raw(method, url, headers);
        if (!retryableStatus(res.status)) return res;
        after = retryAfterMs(res.headers['retry-after'], now());
        lastError = new RegistryError(
          `${method} ${new URL(url).pathname}: HTTP ${res.status}`,
          res.status,
          after,
        );
      } catch (err) {
        lastError = err as Error;
      }
      const delay = retryDelay(attempt, after, delays, (this.options.random ?? Math.random)());
      // The registry's word holds for every request of this client, even when this one gives up.
      if (delay.source === 'retry-after') this.throttle.pauseUntil(now() + delay.ms);
      if (attempt === attempts) break;
      if (delay.source === 'backoff') await this.sleep(delay.ms);
    }
    throw lastError ?? new Error(`${method} ${url}: failed`);
  }

  private basic(): string | undefined {
    const c = this.options.credential;
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  private async token(realm: string, service: string | undefined, scope: string): Promise<string> {
    const key = `${realm} ${service ?? ''} ${scope}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expires > this.clock.now()) return cached.token;
    const u = new URL(realm);
    if (service) u.searchParams.set('service', service);
    if (scope) for (const s of scope.split(' ')) u.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.basic();
    if (basic) headers.authorization = basic;
    const res = await this.withRetries('GET', u.toString(), headers);
    if (res.status !== 200)
      throw new RegistryError(
        `the token endpoint refused the credential for scope "${scope}": HTTP ${res.status}`,
        res.status,
      );
    const body = JSON.parse(res.body.toString('utf8')) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
    };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError('the token endpoint answered without a token', 502);
    const ttl = Math.max(10, (body.expires_in ?? 60) - 10) * 1000;
    this.tokens.set(key, { token, expires: this.clock.now() + ttl });
    return token;
  }

  /** Resolves once no Retry-After pause is in force for this client. */
  ready(): Promise<void> {
    return this.throttle.ready();
  }

  /**
   * A request to the registry API, authenticated on demand for `scope`. `once`: no retry when the
   * registry is busy or unreachable (a RegistryError or the connection error is thrown, after any
   * Retry-After has paused the client), for a caller that must check again before it repeats.
   */
  async request(
    method: string,
    pathOrUrl: string,
    scope: string,
    headers: Record<string, string> = {},
    { once = false }: { once?: boolean } = {},
  ): Promise<Response> {
    return this.limit(async () => {
      const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.url}${pathOrUrl}`;
      let auth: string | undefined = this.authFor(scope);
      const attempts = once ? 1 : undefined;
      for (let round = 0; round < 2; round++) {
        const res = await this.withRetries(
          method,
          url,
          auth ? { ...headers, authorization: auth } : headers,
          attempts,
        );
        if (res.status !== 401) return res;
        const challenge = parseChallenge(res.headers['www-authenticate'] as string | undefined);
        if (challenge?.scheme === 'bearer' && challenge.params.realm) {
          this.tokens.delete(`${challenge.params.realm} ${challenge.params.service ?? ''} ${scope}`);
          this.challenge = { realm: challenge.params.realm, service: challenge.params.service };
          auth = `Bearer ${await this.token(challenge.params.realm, challenge.params.service, scope)}`;
        } else if (challenge?.scheme === 'basic' && this.basic()) {
          this.useBasic = true;
          auth = this.basic();
        } else return res;
      }
      return this.withRetries(method, url, auth ? { ...headers, authorization: auth } : headers, attempts);
    });
  }

  private challenge: { realm: string; service: string | undefined } | undefined;
  private useBasic = false;

  private authFor(scope: string): string | undefined {
    if (this.useBasic) return this.basic();
    if (!this.challenge) return undefined;
    const key = `${this.challenge.realm} ${this.challenge.service ?? ''} ${scope}`;
    const cached = this.tokens.get(key);
    return cached && cached.expires > this.clock.now() ? `Bearer ${cached.token}` : undefined;
  }

  private async paged<T>(path: string, scope: string, field: string): Promise<T[]> {
    const out: T[] = [];
    let url: string | undefined = `${this.url}${path}`;
    while (url) {
      const res = await this.request('GET', url, scope, { accept: 'application/json' });
      if (res.status === 404 && field === 'tags') return out;
      if (res.status !== 200)
        throw new RegistryError(`GET ${new URL(url).pathname}: HTTP ${res.status}`, res.status);
      const body = JSON.parse(res.body.toString('utf8')) as Record<string, T[] | null>;
      for (const item of body[field] ?? []) out.push(item);
      url = nextLink(res.headers.link as string | undefined, url);
    }
    return out;
  }

  static repositoryScope(repository: string, actions = 'pull,delete'): string {
    return `repository:${repository}:${actions}`;
  }

  private scopeOf(repository: string): string {
    return RegistryClient.repositoryScope(repository, this.options.repositoryActions);
  }

  /** Every repository, following pagination. */
  catalog(pageSize = 1000): Promise<string[]> {
    return this.paged<string>(`/v2/_catalog?n=${pageSize}`, 'registry:catalog:*', 'repositories');
  }

  /** Every tag of a repository (none when the repository does not exist). */
  tags(repository: string, pageSize = 1000): Promise<string[]> {
    return this.paged<string>(`/v2/${repository}/tags/list?n=${pageSize}`, this.scopeOf(repository), 'tags');
  }

  /** Resolves a tag or digest; undefined when it does not exist. */
  async head(repository: string, reference: string): Promise<ManifestHead | undefined> {
    const res = await this.request(
      'HEAD',
      `/v2/${repository}/manifests/${reference}`,
      this.scopeOf(repository),
      {
        accept: manifestAccept,
      },
    );
    if (res.status === 404) return undefined;
    if (res.status !== 200)
      throw new RegistryError(`HEAD ${repository}:${reference}: HTTP ${res.status}`, res.status);
    const digest = res.headers['docker-content-digest'];
    if (typeof digest !== 'string')
      throw new RegistryError(`HEAD ${repository}:${reference}: no Docker-Content-Digest`, 502);
    return { digest, mediaType: String(res.headers['content-type'] ?? '') };
  }

  /** Fetches a manifest and what it points to (an index's children, an OCI subject). */
  async manifest(repository: string, reference: string): Promise<Manifest | undefined> {
    const res = await this.request(
      'GET',
      `/v2/${repository}/manifests/${reference}`,
      this.scopeOf(repository),
      {
        accept: manifestAccept,
      },
    );
    if (res.status === 404) return undefined;
    if (res.status !== 200)
      throw new RegistryError(`GET ${repository}:${reference}: HTTP ${res.status}`, res.status);
    const body = JSON.parse(res.body.toString('utf8')) as {
      mediaType?: string;
      manifests?: { digest?: string }[];
      subject?: { digest?: string };
    };
    const mediaType = body.mediaType ?? String(res.headers['content-type'] ?? '');
    const digest = String(res.headers['docker-content-digest'] ?? reference);
    const m: Manifest = {
      digest,
      mediaType,
      children:
        indexMediaTypes.has(mediaType) || Array.isArray(body.manifests)
          ? (body.manifests ?? []).map((c) => c.digest ?? '').filter((d) => d !== '')
          : [],
    };
    if (body.subject?.digest) m.subject = body.subject.digest;
    return m;
  }

  /**
   * Deletes a manifest by digest; 'gone' when it was already deleted. One attempt: when the
   * registry is busy (429/5xx, a RegistryError with the status) or unreachable it throws, and the
   * caller checks the tags again before it deletes again (execute.ts).
   */
  async deleteManifest(repository: string, digest: string): Promise<'deleted' | 'gone'> {
    if (!/^sha256:[a-f0-9]{64}$/.test(digest))
      throw new RegistryError(`refusing to delete a non-digest reference "${digest}"`, 400);
    const res = await this.request(
      'DELETE',
      `/v2/${repository}/manifests/${digest}`,
      this.scopeOf(repository),
      {},
      { once: true },
    );
    if (res.status === 202 || res.status === 200) return 'deleted';
    if (res.status === 404) return 'gone';
    throw new RegistryError(
      `DELETE ${repository}@${digest}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 200)}`,
      res.status,
    );
  }
}
