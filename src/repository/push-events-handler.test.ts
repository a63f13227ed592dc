import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import express from 'express';
import { Registry } from 'prom-client';
import type { Cache } from '../runtime/informer.ts';
import type { KubeClient, KubeJson, KubeObject } from '../runtime/kube/client.ts';
import { createLogger } from '../runtime/logger.ts';
import { secretData } from '../util/secrets.ts';
import { pushEventsRouter, sameSecret } from './push-events-handler.ts';

const token = 'the-events-token-0123456789abcdef';

/** A cache of plain JSON objects, as an informer holds them. */
function cache<T extends KubeObject>(json: KubeJson[]): Cache<T> {
  const objects = json as T[];
  return {
    get: (name, namespace) =>
      objects.find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace),
    list: () => objects,
    hasSynced: () => true,
  };
}

const repository: KubeJson = {
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'Repository',
  metadata: {
    name: 'web',
    namespace: 'team-a',
    resourceVersion: '7',
    creationTimestamp: '2026-01-01T00:00:00Z',
  },
  spec: { registryRef: { name: 'main', namespace: 'registry-system' } },
  status: { lastPushTime: '2026-03-01T00:00:00.000Z' },
};
const configSecret: KubeJson = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'main-registry-config', namespace: 'registry-system' },
  data: secretData({ 'events-token': token }),
};

const envelope = (timestamp: string) => ({
  events: [
    {
      id: '1',
      timestamp,
      action: 'push',
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: 'sha256:00',
        repository: 'team-a/web',
        tag: 'v1',
      },
    },
  ],
});

let leader = true;
let conflictOnce = false;
const patches: { path: string; body: unknown }[] = [];
const logs = new PassThrough();
let logText = '';
logs.on('data', (c: Buffer) => (logText += c.toString()));
const client = {
  mergePatch: async (path: string, body: unknown) => {
    if (conflictOnce) {
      conflictOnce = false;
      throw new k8s.ApiException(409, 'conflict', '', {});
    }
    patches.push({ path, body });
    return {};
  },
  find: async () => ({ ...repository, metadata: { ...repository.metadata, resourceVersion: '8' } }),
} as unknown as KubeClient;

let server: Server;
let base: string;

beforeAll(async () => {
  const app = express();
  app.use(
    pushEventsRouter(
      { client, logger: createLogger('debug', logs), registry: new Registry() },
      { repositories: cache([repository]), secrets: cache([configSecret]) },
      { isLeader: () => leader, synced: () => true },
    ),
  );
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const post = (body: unknown, auth: string | null = `Bearer ${token}`, registry = 'registry-system/main') =>
  fetch(`${base}/registry-events/${registry}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/vnd.docker.distribution.events.v2+json',
      ...(auth !== null ? { authorization: auth } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('the push-event endpoint', () => {
  it.each<[string, string | null, string]>([
    ['no Authorization header', null, 'registry-system/main'],
    ['a wrong token', 'Bearer not-it', 'registry-system/main'],
    ['not a bearer token', `Basic ${token}`, 'registry-system/main'],
    ['the token of another Registry name', `Bearer ${token}`, 'registry-system/other'],
  ])('answers 401 to %s and writes nothing', async (_name, auth, registry) => {
    patches.length = 0;
    const res = await post(envelope('2026-03-02T00:00:00Z'), auth, registry);
    expect(res.status).toBe(401);
    expect(patches).toEqual([]);
  });

  it('answers 503 when not leading, so the registry retries', async () => {
    leader = false;
    patches.length = 0;
    try {
      expect((await post(envelope('2026-03-02T00:00:00Z'))).status).toBe(503);
      expect(patches).toEqual([]);
    } finally {
      leader = true;
    }
  });

  it('writes a newer push time with the cached resourceVersion, reading again after a conflict', async () => {
    patches.length = 0;
    conflictOnce = true;
    const res = await post(envelope('2026-03-02T00:00:00Z'));
    expect(res.status).toBe(200);
    expect(patches).toEqual([
      {
        path: '/apis/berth.dev/v1alpha1/namespaces/team-a/repositories/web/status',
        body: { metadata: { resourceVersion: '8' }, status: { lastPushTime: '2026-03-02T00:00:00.000Z' } },
      },
    ]);
  });

  it('answers 200 and writes nothing for an older push', async () => {
    patches.length = 0;
    expect((await post(envelope('2026-02-01T00:00:00Z'))).status).toBe(200);
    expect(patches).toEqual([]);
  });

  it('answers 400 to a body that is not an envelope', async () => {
    expect((await post('{not json')).status).toBe(400);
    expect((await post({ nope: 1 })).status).toBe(400);
  });

  it('never logs the token', () => expect(logText).not.toContain(token));
});

describe('sameSecret', () => {
  it.each<[string, string, boolean]>([
    ['a', 'a', true],
    ['a', 'b', false],
    ['short', 'longer-secret', false],
    ['', '', false],
  ])('%s vs %s → %s', (a, b, expected) => expect(sameSecret(a, b)).toBe(expected));
});
