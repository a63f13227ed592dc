// A tiny proxy stands in front of the real registry (bin/registry) in this test: it passes every
// request through, except that once the first DELETE arrives it answers 429 with `Retry-After: 1`
// to every request for 0.9 s, as a rate limiter at an ingress would. The retention run's client
// deletes through it with four deletions in flight: each request in flight when the limit starts
// may be refused once, but no new request may be sent until the second has passed (so the proxy
// refuses at most as many as were in flight), and every deletion ends done, with the rest of the
// repository intact. Counts only; no timing is asserted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { executeDeletions } from '../../src/retention/run/execute.ts';
import type { Deletion } from '../../src/retention/run/model.ts';
import { RegistryClient } from '../../src/distribution/client.ts';
import { storageTagResolver } from '../../src/retention/run/snapshot.ts';
import { FilesystemPushTimes } from '../../src/retention/run/storage.ts';
import { RegistryClient as Crane, startRegistry, type RunningRegistry } from '../harness/registry.ts';

const limitMs = 900;

interface LimitingProxy {
  url: string;
  /** Requests passed to the registry, and those refused with 429. */
  passed: string[];
  refused: string[];
  close(): Promise<void>;
}

async function limitingProxy(target: string): Promise<LimitingProxy> {
  const passed: string[] = [];
  const refused: string[] = [];
  let limitedSince: number | undefined;
  let limitedOnce = false;
  const server = http.createServer((req, res) => {
    const what = `${req.method} ${req.url}`;
    if (req.method === 'DELETE' && !limitedOnce) {
      limitedOnce = true;
      limitedSince = Date.now();
    }
    if (limitedSince !== undefined && Date.now() - limitedSince < limitMs) {
      refused.push(what);
      req.resume();
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return;
    }
    passed.push(what);
    const upstream = http.request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    passed,
    refused,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let dir: string;
let registry: RunningRegistry;
let proxy: LimitingProxy;
let crane: Crane;
const repo = 'team/app';
const digests: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-throttle-'));
  writeFileSync(
    path.join(dir, 'config.yml'),
    'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: /tmp}\n  delete: {enabled: true}\nhttp: {addr: 127.0.0.1:5000}\n',
  );
  registry = await startRegistry({ configDir: dir, tls: false });
  crane = new Crane({ insecure: true });
  for (const tag of ['keep', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8'])
    digests[tag] = await crane.pushRandomImage(`${registry.host}/${repo}:${tag}`, { layerBytes: 256 });
  proxy = await limitingProxy(registry.url);
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
  await crane?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deleting through a registry that answers 429 with Retry-After', () => {
  test('the client waits as told, with every worker, and every deletion is done', async () => {
    const doomed = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8'];
    const plan: Deletion[] = doomed.map((tag) => ({
      repository: repo,
      digest: digests[tag] ?? '',
      tags: [tag],
      after: [],
    }));
    const client = new RegistryClient({ url: proxy.url, concurrency: 4 });
    const result = await executeDeletions(plan, new Map([[repo, new Set(['keep', ...doomed])]]), client, {
      perRepository: 4,
      resolveTags: storageTagResolver(client, new FilesystemPushTimes(registry.storageDir)),
    });
    client.close();

    expect([...result.outcomes.values()]).toEqual(doomed.map(() => ({ status: 'deleted' })));
    // The limit was met, and honoured: only requests already in flight when it started were
    // refused, none sent during it; then each deletion's DELETE reached the registry once.
    expect(proxy.refused.length).toBeGreaterThanOrEqual(1);
    expect(proxy.refused.length).toBeLessThanOrEqual(4);
    expect(client.throttle.stats.pauses).toBe(proxy.refused.length);
    expect(proxy.passed.filter((r) => r.startsWith('DELETE')).sort()).toEqual(
      plan.map((d) => `DELETE /v2/${repo}/manifests/${d.digest}`).sort(),
    );
    // And what a user sees: the kept tag still pulls; the doomed ones are gone.
    expect(await crane.tags(`${registry.host}/${repo}`)).toEqual(['keep']);
    expect((await crane.pull(`${registry.host}/${repo}:keep`)).ok).toBe(true);
  }, 120_000);
});
