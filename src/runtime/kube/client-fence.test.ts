// The client's write gate, against a loopback HTTPS server (so the send waits for the TLS
// handshake, as against the API server): what the gate refuses never reaches it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { createCA, issueCertificate } from '../../pki/certificates.ts';
import { FencedError } from '../fence.ts';
import { KubeClient } from './client.ts';

let server: https.Server;
const received: string[] = [];
let client: KubeClient;
let kc: k8s.KubeConfig;

beforeAll(async () => {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 3600_000);
  const ca = await createCA({ commonName: 'fence-test-ca', notBefore, notAfter });
  const serving = await issueCertificate(ca, {
    commonName: 'localhost',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    notBefore,
    notAfter,
    usage: 'server',
  });
  server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        caData: Buffer.from(ca.certPem).toString('base64'),
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  client = new KubeClient(kc);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('KubeClient write gate', () => {
  it('sends everything when no gate is set', async () => {
    received.length = 0;
    await client.create('/api/v1/namespaces/a/configmaps', { metadata: { name: 'x' } });
    expect(received).toEqual(['POST /api/v1/namespaces/a/configmaps']);
  });

  it('refuses every write while the gate is closed and sends none of them; reads and unfenced requests go out', async () => {
    received.length = 0;
    client.fenceWrites(() => 'not leading');
    const writes = [
      client.create('/api/v1/namespaces/a/configmaps', { metadata: { name: 'x' } }),
      client.replace('/api/v1/namespaces/a/configmaps/x', { metadata: { name: 'x' } }),
      client.mergePatch('/api/v1/namespaces/a/configmaps/x', {}),
      client.apply('/api/v1/namespaces/a/configmaps/x', { metadata: { name: 'x' } }, 'berth'),
      client.delete('/api/v1/namespaces/a/configmaps/x'),
    ];
    for (const w of writes) await expect(w).rejects.toThrow(FencedError);
    await expect(client.delete('/api/v1/namespaces/a/configmaps/x')).rejects.toThrow(
      'DELETE /api/v1/namespaces/a/configmaps/x: not sent: not leading',
    );
    await client.get('/api/v1/namespaces/a/configmaps/x');
    await client.request('PUT', '/apis/coordination.k8s.io/v1/namespaces/a/leases/l', {
      body: {},
      unfenced: true,
    });
    expect(received).toEqual([
      'GET /api/v1/namespaces/a/configmaps/x',
      'PUT /apis/coordination.k8s.io/v1/namespaces/a/leases/l',
    ]);
    client.fenceWrites(undefined);
  });

  it('asks the gate again on the connected socket: a gate that closes after the call started stops the send', async () => {
    received.length = 0;
    const client = new KubeClient(kc); // a fresh connection: the second check waits for the TLS handshake
    let calls = 0;
    // open for the first check (before the request is built), closed for the second (at the send)
    client.fenceWrites(() => (calls++ === 0 ? undefined : 'lost the Lease meanwhile'));
    await expect(
      client.create('/api/v1/namespaces/a/configmaps', { metadata: { name: 'y' } }),
    ).rejects.toThrow(/not sent: lost the Lease meanwhile/);
    expect(calls).toBe(2);
    await client.get('/api/v1/namespaces/a/configmaps/y');
    expect(received).toEqual(['GET /api/v1/namespaces/a/configmaps/y']);
    client.fenceWrites(undefined);
  });
});
