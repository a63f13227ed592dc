import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import winston from 'winston';
import { mintCredential } from '../credentials/secret.ts';
import { serializeCredentialStore } from '../credentials/store.ts';
import { createSigningKey } from '../pki/certificates.ts';
import { createTokenMetrics } from './metrics.ts';
import { startTokenServer, type RunningTokenServer } from './server.ts';
import { TokenSigner } from './signer.ts';
import { CredentialStoreFile } from './store-file.ts';
import { systemClock } from '../runtime/clock.ts';

const user = mintCredential({ username: 'u', grants: [{ repositories: ['**'], actions: ['pull'] }] });
let dir: string;
let server: RunningTokenServer;
let unloaded: RunningTokenServer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-token-server-'));
  const file = path.join(dir, 'store.json');
  writeFileSync(
    file,
    serializeCredentialStore({ version: 1, anonymousPull: false, credentials: [user.entry] }),
  );
  const logger = winston.createLogger({ silent: true });
  const metrics = createTokenMetrics();
  const clock = systemClock;
  const signer = new TokenSigner((await createSigningKey()).privateKeyPem);
  const storeFile = new CredentialStoreFile(file, { logger, metrics, clock });
  await storeFile.load();
  const settings = { issuer: 'i', service: 's', ttlMs: 60_000 };
  const listen = { host: '127.0.0.1', port: 0 };
  server = await startTokenServer(settings, { clock, signer, logger, metrics, storeFile }, { listen });
  const never = new CredentialStoreFile(path.join(dir, 'absent.json'), { logger, metrics, clock });
  unloaded = await startTokenServer(
    settings,
    { clock, signer, logger, metrics, storeFile: never },
    { listen },
  );
});

afterAll(async () => {
  await server?.close();
  await unloaded?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the token server over HTTP', () => {
  it('answers the OAuth2 form', async () => {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'u',
        password: user.secret,
        scope: 'repository:a/b:pull',
        service: 's',
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toMatchObject({ scope: 'repository:a/b:pull', expires_in: 60 });
  });

  it.each<[string, RequestInit & { path?: string }, number, RegExp]>([
    ['another method', { method: 'PUT' }, 405, /use GET or POST/],
    [
      'a JSON body',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
      415,
      /x-www-form-urlencoded/,
    ],
    [
      'a huge form',
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `scope=${'a'.repeat(20_000)}`,
      },
      413,
      /too large/,
    ],
    ['an unknown path', { path: '/v2/' }, 404, /not found/],
    [
      'metrics on the main listener when there is no health listener',
      { path: '/metrics' },
      200,
      /berth_token_issued_total/,
    ],
  ])('%s', async (_name, init, status, body) => {
    const res = await fetch(`${server.url}${init.path ?? '/token'}`, init);
    expect(res.status).toBe(status);
    expect(await res.text()).toMatch(body);
  });

  it('is healthy with a store, unhealthy without', async () => {
    const ok = await fetch(`${server.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', credentials: 1 });
    const bad = await fetch(`${unloaded.url}/readyz`);
    expect(bad.status).toBe(503);
  });

  it('answers 500 without details when the store is missing at request time', async () => {
    const res = await fetch(`${unloaded.url}/token`, {
      headers: { authorization: `Basic ${Buffer.from('u:x').toString('base64')}` },
    });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ errors: [{ code: 'UNKNOWN', message: 'internal error' }] });
  });

  it('closes gracefully: the idle connection at once, the request in flight answered with connection: close', async () => {
    const logger = winston.createLogger({ silent: true });
    const metrics = createTokenMetrics();
    const clock = systemClock;
    const storeFile = new CredentialStoreFile(path.join(dir, 'store.json'), { logger, metrics, clock });
    await storeFile.load();
    const signer = new TokenSigner((await createSigningKey()).privateKeyPem);
    const s = await startTokenServer(
      { issuer: 'i', service: 's', ttlMs: 60_000 },
      { clock, signer, logger, metrics, storeFile },
      { listen: { host: '127.0.0.1', port: 0 } },
    );
    const open = (): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> =>
      new Promise((resolve, reject) => {
        let text = '';
        const socket = net.connect(s.port, '127.0.0.1', () =>
          resolve({ socket, received: () => text, closed }),
        );
        const closed = new Promise<void>((r) => socket.once('close', () => r()));
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.once('error', reject);
      });
    const idle = await open();
    idle.socket.write('GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n');
    const busy = await open();
    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'u',
      password: user.secret,
      service: 's',
    }).toString();
    busy.socket.write(
      'POST /token HTTP/1.1\r\nhost: t\r\ncontent-type: application/x-www-form-urlencoded\r\n' +
        `expect: 100-continue\r\ncontent-length: ${form.length}\r\n\r\n`,
    );
    // Headers read by the server (it asks for the body), and the first connection's answer in.
    await waitUntil(() => busy.received().includes('100 Continue') && idle.received().includes('"ok"'));
    const closing = s.close(10_000);
    await idle.closed; // idle keep-alive connection: closed at once
    busy.socket.write(form);
    await busy.closed; // answered, then closed by the server
    await closing;
    expect(busy.received()).toMatch(/HTTP\/1\.1 200 OK[\s\S]*connection: close/i);
    expect(busy.received()).toMatch(/"access_token"/);
  });
});

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
}
