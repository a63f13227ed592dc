// Verification after a garbage collection: every tag of every repository must still resolve, and
// every blob its manifests reference (config and layers, through multi-arch indexes) must exist.
// It speaks the OCI distribution API with Docker token authentication, as any client does.
import http from 'node:http';
import https from 'node:https';

export interface RegistryAccess {
  /** `https://host:port` */
  url: string;
  /** PEM bundle to trust (the registry's CA); absent: the system's. */
  caPem?: string;
  username?: string;
  password?: string;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const manifestTypes = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export class RegistryHttpError extends Error {
  override name = 'RegistryHttpError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A minimal OCI distribution client: token auth, GET/HEAD, and POST/DELETE for the read-only probe. */
export class RegistryHttp {
  private readonly access: RegistryAccess;
  private readonly tokens = new Map<string, string>();

  constructor(access: RegistryAccess) {
    this.access = access;
  }

  private raw(method: string, url: URL, headers: Record<string, string>): Promise<Response> {
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers,
          ...(this.access.caPem && url.protocol === 'https:' ? { ca: this.access.caPem } : {}),
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  private basic(): string | undefined {
    const { username, password } = this.access;
    return username && password
      ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
      : undefined;
  }

  private async token(challenge: string): Promise<string | undefined> {
    const params = Object.fromEntries(
      [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]),
    );
    if (!params.realm) return undefined;
    const key = `${params.service ?? ''} ${params.scope ?? ''}`;
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    if (params.scope) url.searchParams.set('scope', params.scope);
    const basic = this.basic();
    const res = await this.raw('GET', url, basic ? { Authorization: basic } : {});
    if (res.status !== 200) throw new RegistryHttpError(res.status, `token endpoint answered ${res.status}`);
    const body = JSON.parse(res.body) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (token) this.tokens.set(key, token);
    return token;
  }

  /** A request to the registry, authenticating when challenged. */
  async request(
    method: 'GET' | 'HEAD' | 'POST' | 'DELETE',
    path: string,
    accept?: string,
  ): Promise<Response> {
    const url = new URL(path, this.access.url);
    const headers: Record<string, string> = accept ? { Accept: accept } : {};
    if (method === 'POST' || method === 'DELETE') headers['Content-Length'] = '0';
    let res = await this.raw(method, url, headers);
    if (res.status === 401) {
      const challenge = String(res.headers['www-authenticate'] ?? '');
      let auth: string | undefined;
      if (/^bearer/i.test(challenge)) {
        const token = await this.token(challenge);
        auth = token ? `Bearer ${token}` : undefined;
      } else auth = this.basic();
      if (auth) res = await this.raw(method, url, { ...headers, Authorization: auth });
    }
    return res;
  }

  /** Follows `Link: <...>; rel="next"` pages. */
  async pages<T>(path: string, pick: (body: unknown) => T[], missingIsEmpty = false): Promise<T[]> {
    const out: T[] = [];
    let next: string | undefined = path;
    while (next) {
      const res = await this.request('GET', next);
      if (res.status === 404 && missingIsEmpty) return out;
      if (res.status !== 200)
        throw new RegistryHttpError(res.status, `GET ${next.split('?')[0]}: ${res.status}`);
      out.push(...pick(JSON.parse(res.body)));
      const link = String(res.headers.link ?? '');
      next = /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1];
    }
    return out;
  }
}

export interface VerifyReport {
  repositories: number;
  tags: number;
  manifests: number;
  blobs: number;
  /** One line per problem: what is missing, where. Empty when everything resolves. */
  problems: string[];
}

interface Descriptor {
  digest?: string;
  mediaType?: string;
}
interface ManifestBody {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** Walks every repository and tag; problems are collected, not thrown (unreachable registry throws). */
export async function verifyRegistry(access: RegistryAccess): Promise<VerifyReport> {
  const client = new RegistryHttp(access);
  const report: VerifyReport = { repositories: 0, tags: 0, manifests: 0, blobs: 0, problems: [] };
  const repos = await client.pages(
    '/v2/_catalog?n=1000',
    (b) => (b as { repositories?: string[] }).repositories ?? [],
  );
  for (const repo of repos) {
    report.repositories++;
    const tags = await client.pages(
      `/v2/${repo}/tags/list?n=1000`,
      (b) => (b as { tags?: string[] | null }).tags ?? [],
      true, // a repository whose tags were all deleted has none to verify
    );
    const seenManifests = new Set<string>();
    const seenBlobs = new Set<string>();
    const manifest = async (ref: string, where: string): Promise<void> => {
      if (seenManifests.has(ref)) return;
      seenManifests.add(ref);
      const res = await client.request('GET', `/v2/${repo}/manifests/${ref}`, manifestTypes);
      if (res.status !== 200) {
        report.problems.push(`${where}: manifest ${ref} does not resolve (${res.status})`);
        return;
      }
      report.manifests++;
      let body: ManifestBody;
      try {
        body = JSON.parse(res.body) as ManifestBody;
      } catch {
        report.problems.push(`${where}: manifest ${ref} is not JSON`);
        return;
      }
      for (const child of body.manifests ?? [])
        if (child.digest) await manifest(child.digest, `${where} → ${child.digest}`);
      for (const blob of [body.config, ...(body.layers ?? [])]) {
        if (!blob?.digest || seenBlobs.has(blob.digest)) continue;
        seenBlobs.add(blob.digest);
        const head = await client.request('HEAD', `/v2/${repo}/blobs/${blob.digest}`);
        if (head.status === 200 || (head.status >= 300 && head.status < 400)) report.blobs++;
        else report.problems.push(`${where}: blob ${blob.digest} is missing (${head.status})`);
      }
    };
    for (const tag of tags) {
      report.tags++;
      await manifest(tag, `${repo}:${tag}`);
    }
  }
  return report;
}
