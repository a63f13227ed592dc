// The read-only check before a garbage collection, against the real registry binary: writable, the
// throw-away upload is accepted and cancelled (nothing is left of it) and the check fails; in
// read-only maintenance mode (the configuration the procedure rolls out) the push is refused and
// the check passes. `berth gc-run probe` as the Job runs it: exit code and termination message.
// A registry that refuses connections for a moment (its Service still pointing at a pod that has
// just gone) is retried, not taken for an answer: a small TCP forwarder in front of the real
// registry resets the first connections, then passes the rest through (TLS end to end).
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { RegistryClient } from '../../src/distribution/client.ts';
import { probeReadOnly, probeRepository } from '../../src/gc/run/probe.ts';
import type { JobAccess } from '../../src/gc/run/verify.ts';
import { mint, startTokenGround, type TokenGround } from '../token/fixture.ts';

const exec = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });
const puller = mint({ username: 'ci-pull', grants: [{ repositories: ['**'], actions: ['pull'] }] });

let ground: TokenGround;
let access: JobAccess;
let files: { dockerConfig: string; ca: string };

/** `berth gc-run probe` as a process; its exit code and termination message. */
async function probeCommand(
  name: string,
  url = ground.registry.url,
  extra: string[] = [],
): Promise<{ code: number; message: string }> {
  const terminationLog = path.join(ground.dir, `${name}.termination-log`);
  writeFileSync(terminationLog, '');
  let code = 0;
  try {
    await exec(
      process.execPath,
      [
        path.join(repoRoot, 'src/main.ts'),
        'gc-run',
        'probe',
        `--registry-url=${url}`,
        `--ca-file=${files.ca}`,
        `--docker-config=${files.dockerConfig}`,
        `--termination-log=${terminationLog}`,
        ...extra,
      ],
      { timeout: 90_000 },
    );
  } catch (err) {
    code = (err as { code?: number }).code ?? -1;
  }
  return { code, message: readFileSync(terminationLog, 'utf8') };
}

beforeAll(async () => {
  ground = await startTokenGround({ credentials: [admin, puller] });
  access = {
    url: ground.registry.url,
    caPem: ground.ca.certPem,
    credential: { username: 'admin', password: admin.secret },
  };
  files = {
    dockerConfig: path.join(ground.dir, 'probe-admin.json'),
    ca: path.join(ground.dir, 'probe-ca.pem'),
  };
  writeFileSync(
    files.dockerConfig,
    JSON.stringify({
      auths: { [ground.registry.host]: { auth: Buffer.from(`admin:${admin.secret}`).toString('base64') } },
    }),
  );
  writeFileSync(files.ca, ground.ca.certPem);
}, 120_000);

afterAll(async () => {
  await ground?.stop();
});

describe('the read-only probe against the real registry', () => {
  test('writable: the push is accepted, the upload cancelled, and the check fails', async () => {
    await ground.reconfigure({ readOnly: false });
    const result = await probeReadOnly(access);
    expect(result).toMatchObject({ verdict: 'accepted', status: 202, cancelled: true });
    // Nothing is left of the upload: no repository, and no upload in progress.
    const client = new RegistryClient({
      url: access.url,
      caPem: access.caPem!,
      credential: { username: 'admin', password: admin.secret },
    });
    try {
      expect(await client.catalog()).not.toContain(probeRepository);
    } finally {
      client.close();
    }

    const cmd = await probeCommand('writable');
    expect(cmd.code).toBe(1);
    expect(cmd.message).toMatch(
      /^the registry accepted a push .*HTTP 202.*not read-only.*upload was cancelled$/,
    );
    expect(cmd.message).not.toContain(admin.secret);
  });

  test('a credential that may not push proves nothing', async () => {
    await ground.reconfigure({ readOnly: false });
    const result = await probeReadOnly({
      ...access,
      credential: { username: 'ci-pull', password: puller.secret },
    });
    expect(result).toMatchObject({ verdict: 'inconclusive' });
    expect(result.verdict === 'inconclusive' && result.detail).toMatch(
      /credential was refused \(HTTP (401|403)\)/,
    );
  });

  test('read-only maintenance mode: the push is refused with 405 and the check passes', async () => {
    await ground.reconfigure({ readOnly: true });
    const result = await probeReadOnly(access);
    expect(result).toEqual({ verdict: 'refused', status: 405 });
    const cmd = await probeCommand('readonly');
    expect(cmd).toEqual({ code: 0, message: '' });
  });

  test('an unreachable registry: the check cannot run once its attempts are spent, exit 1', async () => {
    const cmd = await probeCommand('unreachable', 'https://127.0.0.1:1', ['--attempts=2']);
    expect(cmd.code).toBe(1);
    expect(cmd.message).toMatch(/^the read-only check could not run: .*ECONNREFUSED/);
  });

  test('connections reset for a moment: the check retries and concludes', async () => {
    await ground.reconfigure({ readOnly: true });
    const forwarder = await resettingForwarder(new URL(ground.registry.url), 3);
    try {
      const url = `https://${new URL(ground.registry.url).hostname}:${forwarder.port}`;
      const cmd = await probeCommand('reset', url);
      expect(cmd).toEqual({ code: 0, message: '' });
      expect(forwarder.reset).toBe(3);
      expect(forwarder.passed).toBeGreaterThan(0);
      // With a single attempt, the first reset is the end of it.
      const once = await resettingForwarder(new URL(ground.registry.url), 1);
      try {
        const url1 = `https://${new URL(ground.registry.url).hostname}:${once.port}`;
        const failed = await probeCommand('reset-once', url1, ['--attempts=1']);
        expect(failed.code).toBe(1);
        expect(failed.message).toMatch(/^the read-only check could not run: /);
      } finally {
        await once.close();
      }
    } finally {
      await forwarder.close();
    }
  }, 120_000);
});

/** A TCP forwarder to `target` that resets its first `resets` connections. */
async function resettingForwarder(
  target: URL,
  resets: number,
): Promise<{ port: number; reset: number; passed: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { reset: 0, passed: 0 };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (state.reset < resets) {
      state.reset++;
      client.resetAndDestroy();
      return;
    }
    state.passed++;
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get reset() {
      return state.reset;
    },
    get passed() {
      return state.passed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
