// A small JSON client over the KubeConfig's credentials, for what the typed clients do awkwardly:
// any resource by group/version/plural, list pages and watch-consistent plain JSON (the typed
// clients turn timestamps into Dates, the watch stream does not), server-side apply, and
// subresources, and watches (streams of JSON lines). Errors are KubeApiError, with `.code` the HTTP
// status. It loads nothing of @kubernetes/client-node (see ./config.ts).
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { FencedError, isWrite, type WriteGate } from '../fence.ts';
import type { KubeAccess } from './config.ts';
import { apiError, KubeApiError } from './api-error.ts';
import { readWatchResponse } from './watch-stream.ts';

/** A KubeObject with any other fields: a body built as plain JSON. */
export type KubeJson = KubeObject & Record<string, unknown>;

/** One event of a watch stream. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

/**
 * Any object of the API as plain JSON. No index signature, so the @kubernetes/client-node types and
 * the generated CRD types are assignable to it (their timestamps are typed Date, though on the wire
 * and in caches they are strings); a resource's own type comes from its ResourceType<T>.
 */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string | Date;
  creationTimestamp?: string | Date;
  managedFields?: ManagedFieldsEntry[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: object;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Send even when the write gate is closed: only for the leader elector's own Lease requests. */
  unfenced?: boolean;
}

export class KubeClient {
  private readonly kc: KubeAccess;
  private readonly server: URL;
  /** One keep-alive agent per client: a fresh TLS handshake per request costs more than the request. */
  private agent: https.Agent | undefined;
  /** Watches hold their socket for minutes: an agent of their own, unbounded, so they never queue requests. */
  private watchAgent: https.Agent | undefined;
  /** Sockets that finished connecting (and their TLS handshake): a write may go out on them at once. */
  private readonly connected = new WeakSet<Socket>();
  private gate: WriteGate | undefined;

  constructor(kc: KubeAccess) {
    this.kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  /**
   * Fences writes: from now on every POST/PUT/PATCH/DELETE asks `gate` first, once before the
   * request is built and again on a connected socket right before the request goes out, and
   * fails with FencedError (nothing sent) when it refuses. Reads are never fenced.
   */
  fenceWrites(gate: WriteGate | undefined): void {
    this.gate = gate;
  }

  private refusal(method: string, url: URL, options: RequestOptions): FencedError | undefined {
    if (!this.gate || options.unfenced || !isWrite(method)) return undefined;
    const reason = this.gate();
    return reason === undefined
      ? undefined
      : new FencedError(`${method} ${url.pathname}: not sent: ${reason}`);
  }

  private url(path: string, query: RequestOptions['query']): URL {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /** Request options with the credentials and the shared keep-alive agent. */
  private async connection(method: string, url: URL, watch = false): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    if (url.protocol === 'https:') {
      const agent = () =>
        new https.Agent({
          keepAlive: true,
          maxSockets: watch ? Infinity : 64,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          rejectUnauthorized: opts.rejectUnauthorized,
          servername: opts.servername,
        });
      opts.agent = watch ? (this.watchAgent ??= agent()) : (this.agent ??= agent());
    }
    return opts;
  }

  /**
   * Watches a collection from `query.resourceVersion`: calls `onEvent` for every event until the
   * server ends the stream (resolves) or the request fails (rejects; an ERROR event rejects with
   * its Status's code, so 410 Gone means "relist"). `signal` ends it early (resolves).
   */
  async watch(
    path: string,
    query: RequestOptions['query'],
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const url = this.url(path, { ...query, watch: 1 });
    const opts = await this.connection('GET', url, true);
    const transport = url.protocol === 'http:' ? http : https;
    const idleMs = (Number(query?.timeoutSeconds ?? 300) + 60) * 1000;
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const req = transport.request(url, { ...opts, timeout: idleMs }, (res) =>
        readWatchResponse(res, url, onEvent, {
          resolve,
          reject,
          fail: (err) => {
            reject(err);
            req.destroy();
          },
          aborted: () => signal.aborted,
        }),
      );
      const onAbort = () => {
        req.destroy();
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new Error(`WATCH ${url.pathname}: no data for ${idleMs} ms`)));
      req.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
      req.end();
    });
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = this.url(path, options.query);
    const early = this.refusal(method, url, options);
    if (early) throw early;
    const opts = await this.connection(method, url);
    const body = encodeBody(options.body);
    const headers = requestHeaders(opts.headers as Record<string, string>, body, options.contentType);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const transport = url.protocol === 'http:' ? http : https;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = transport.request(url, { ...opts, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${url.pathname}: timed out after ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      // Headers and body go out together at end(). Wait for a connected socket, then ask the
      // gate once more, so a replica frozen (or slow) between the first check and the send
      // cannot write after its term.
      req.once('socket', (socket: Socket) => {
        const send = () => {
          this.connected.add(socket);
          const refused = this.refusal(method, url, options);
          if (refused) req.destroy(refused);
          else req.end(body);
        };
        if (this.connected.has(socket)) send();
        else socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', send);
      });
    });
    if (status < 200 || status >= 300) throw apiError(method, url, status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T extends KubeObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET, or undefined when the object does not exist (404). */
  async find<T extends KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  /** Lists every page of a collection. */
  async list<T extends KubeObject>(
    path: string,
    query: { labelSelector?: string; fieldSelector?: string } = {},
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.request<KubeList<T>>('GET', path, {
        query: { ...query, limit: 500, continue: cont },
      });
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  create<T extends KubeObject>(path: string, body: T): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /** PUT: with metadata.resourceVersion set, fails with 409 if the object changed meanwhile. */
  replace<T extends KubeObject>(path: string, body: T): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  mergePatch<T extends KubeObject>(path: string, patch: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body: patch, contentType: 'application/merge-patch+json' });
  }

  jsonPatch<T extends KubeObject>(path: string, ops: unknown[]): Promise<T> {
    return this.request<T>('PATCH', path, { body: ops, contentType: 'application/json-patch+json' });
  }

  /** Server-side apply (JSON is YAML), forcing ownership of the fields in `body`. */
  apply<T extends KubeObject>(path: string, body: T, fieldManager: string): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true },
    });
  }

  delete(path: string, body?: unknown): Promise<unknown> {
    return this.request('DELETE', path, { body });
  }

  /** DELETE; an object that is already gone is fine. */
  async deleteIfExists(path: string): Promise<void> {
    try {
      await this.delete(path);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.code === 404)) throw err;
    }
  }
}

/** A request body as sent: a string as is, anything else as JSON; undefined for none. Pure. */
export function encodeBody(body: unknown): string | undefined {
  return body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
}

/** The credentials' headers, accepting JSON, and for a body its type and length. Pure. */
export function requestHeaders(
  base: Record<string, string> | undefined,
  body: string | undefined,
  contentType: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { ...base, accept: 'application/json' };
  if (body !== undefined) {
    headers['content-type'] = contentType ?? 'application/json';
    // Node frames a DELETE body only with an explicit length; without it a keep-alive
    // connection desynchronises and the next request on it fails.
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return headers;
}
