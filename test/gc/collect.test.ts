// The core of the safe garbage collection on the real registry, with crane as the client and the
// configuration rendered by src/registry/config.ts: images are pushed, some are deleted (their blobs
// become garbage), the registry is switched to read-only (a push is then refused cleanly: no tag, no
// upload, no blob left behind), the collect Job's own script runs the real `registry
// garbage-collect --delete-untagged` on the storage while the registry serves read-only, the disk
// usage is measured before and after, the registry restarts read-write, and every kept image pulls
// completely and passes `berth gc-run verify`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { collectScript } from '../../src/gc/jobs.ts';
import { parseCollectOutput } from '../../src/gc/procedure.ts';
import { verifyRegistry } from '../../src/gc/run/verify.ts';
import { binary, repoRoot } from '../harness/processes.ts';
import { mint, startTokenGround, type TokenGround } from '../token/fixture.ts';

const exec = promisify(execFile);
const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });
let g: TokenGround;

/** Every file under `dir`, relative. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

async function diskUsage(dir: string): Promise<number> {
  const { stdout } = await exec('du', ['-sk', dir]);
  return Number(stdout.split('\t')[0]) * 1024;
}

beforeAll(async () => {
  g = await startTokenGround({ credentials: [admin] });
}, 120_000);

afterAll(async () => {
  await g?.stop();
});

describe('garbage collection on the real registry', () => {
  it('frees the disk of deleted images, refuses pushes while read-only, and keeps every kept image whole', async () => {
    const a = g.client(admin);
    const host = g.registry.host;
    const storage = g.registry.storageDir;
    const layerBytes = 512 * 1024;

    // Kept images, and garbage: deleted manifests, and a tag that moved (its old manifest is untagged).
    const kept = ['team/app:v1', 'team/app:v2', 'team/base:latest'];
    for (const ref of kept) await a.pushRandomImage(`${host}/${ref}`, { layers: 2, layerBytes });
    const doomed = ['team/app:pr-1', 'team/app:pr-2', 'team/old:1'];
    const doomedDigests: string[] = [];
    for (const ref of doomed)
      doomedDigests.push(await a.pushRandomImage(`${host}/${ref}`, { layers: 2, layerBytes }));
    const movedFrom = await a.pushRandomImage(`${host}/team/base:moving`, { layers: 1, layerBytes });
    const movedTo = await a.pushRandomImage(`${host}/team/base:moving`, { layers: 1, layerBytes });
    expect(movedTo).not.toBe(movedFrom);
    kept.push('team/base:moving');
    for (let i = 0; i < doomed.length; i++) {
      const repo = doomed[i]!.split(':')[0]!;
      await a.must(['delete', `${host}/${repo}@${doomedDigests[i]}`]);
    }
    expect(await a.tags(`${host}/team/app`)).toEqual(['v1', 'v2']);

    // Maintenance mode: the rendered read-only configuration, and a restart (the rollout).
    await g.reconfigure({ readOnly: true });
    const blobsBefore = files(path.join(storage, 'docker/registry/v2/blobs'));
    const push = await a.run([
      'append',
      '--new_tag',
      `${host}/team/app:during-gc`,
      '-f',
      await writeLayer(g.dir, 256 * 1024),
    ]);
    expect(push.ok).toBe(false);
    expect(push.stderr).toMatch(/UNSUPPORTED|read-only|405|Method Not Allowed/i);
    expect(await a.tags(`${host}/team/app`)).toEqual(['v1', 'v2']);
    expect(files(path.join(storage, 'docker/registry/v2/blobs'))).toEqual(blobsBefore); // nothing half-written
    expect(files(path.join(storage, 'docker/registry/v2/repositories/team/app/_uploads'))).toEqual([]);
    const del = await a.run(['delete', `${host}/team/app:v1`]);
    expect(del.ok).toBe(false);
    expect((await a.pull(`${host}/team/app:v1`)).ok).toBe(true); // pulls go on

    // The collect Job's script, with the real registry binary, on the storage, while it serves.
    const usageBefore = await diskUsage(storage);
    const terminationLog = path.join(g.dir, 'termination-log');
    writeFileSync(terminationLog, '');
    const script = collectScript({
      registryBinary: binary('registry'),
      configPath: path.join(g.dir, 'registry', 'config.yml'),
      storageRoot: storage,
      deleteUntagged: true,
      terminationLog,
    });
    const started = Date.now();
    const run = await exec('/bin/sh', ['-c', script], {
      env: {
        ...process.env,
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: storage,
        OTEL_TRACES_EXPORTER: 'none',
      },
      cwd: repoRoot,
    });
    const seconds = (Date.now() - started) / 1000;
    const usageAfter = await diskUsage(storage);
    const out = parseCollectOutput(readFileSync(terminationLog, 'utf8'));
    // 3 deleted images × (2 layers + config + manifest) + the moved tag's old (1 layer + config + manifest).
    expect(out.blobsDeleted).toBe(3 * 4 + 3);
    expect(out.bytesFreed).toBe(usageBefore - usageAfter);
    // At least the deleted layers' bytes (7 × 512 KiB of random data) were freed.
    expect(usageBefore - usageAfter).toBeGreaterThanOrEqual(7 * layerBytes);
    console.log(
      `garbage collection: ${out.blobsDeleted} blobs deleted, disk ${usageBefore} → ${usageAfter} bytes ` +
        `(${usageBefore - usageAfter} freed) in ${seconds.toFixed(2)} s\n${run.stdout.split('\n').slice(-3).join('\n')}`,
    );

    // Restart read-write, then every kept image pulls completely and the verification passes.
    await g.reconfigure({ readOnly: false });
    for (const ref of kept) {
      const pulled = await a.pull(`${host}/${ref}`);
      expect({ ref, ...pulled, ok: pulled.ok }).toMatchObject({ ref, ok: true });
    }
    for (const digest of [...doomedDigests, movedFrom]) {
      expect((await a.pull(`${host}/team/app@${digest}`)).ok).toBe(false);
    }
    const report = await verifyRegistry({
      url: g.registry.url,
      caPem: g.ca.certPem,
      credential: { username: admin.username, password: admin.secret },
    });
    expect(report.problems).toEqual([]);
    expect(report.tags).toBe(kept.length);
    expect(report.blobs).toBe(3 * 3 + 2); // per kept image: its layers and config

    // Pushes work again.
    await a.pushRandomImage(`${host}/team/app:after-gc`, { layers: 1, layerBytes: 1024 });
    expect(await a.tags(`${host}/team/app`)).toEqual(['after-gc', 'v1', 'v2']);
  }, 240_000);

  it('the verification finds a kept image whose blob is gone, and `berth gc-run verify` exits 1', async () => {
    const a = g.client(admin);
    const host = g.registry.host;
    await a.pushRandomImage(`${host}/team/broken:1`, { layers: 1, layerBytes: 4096 });
    const manifest = JSON.parse(await a.must(['manifest', `${host}/team/broken:1`])) as {
      layers: { digest: string }[];
    };
    const layer = manifest.layers[0]!.digest.replace('sha256:', '');
    const blobDir = path.join(
      g.registry.storageDir,
      'docker/registry/v2/blobs/sha256',
      layer.slice(0, 2),
      layer,
    );
    expect(statSync(blobDir).isDirectory()).toBe(true);
    rmSync(blobDir, { recursive: true });
    await g.registry.restart(); // no cached descriptor

    const report = await verifyRegistry({
      url: g.registry.url,
      caPem: g.ca.certPem,
      credential: { username: admin.username, password: admin.secret },
    });
    expect(report.problems).toEqual([
      expect.stringMatching(`team/broken:1: blob sha256:${layer} is missing`),
    ]);

    const caFile = path.join(g.dir, 'ca.crt');
    const dockerConfig = path.join(g.dir, 'admin.json');
    const terminationLog = path.join(g.dir, 'verify-termination-log');
    writeFileSync(caFile, g.ca.certPem);
    writeFileSync(
      dockerConfig,
      JSON.stringify({
        auths: { [host]: { auth: Buffer.from(`admin:${admin.secret}`).toString('base64') } },
      }),
    );
    const cmd = await exec(
      process.execPath,
      [
        path.join(repoRoot, 'src/main.ts'),
        'gc-run',
        'verify',
        `--registry-url=${g.registry.url}`,
        `--ca-file=${caFile}`,
        `--docker-config=${dockerConfig}`,
        `--termination-log=${terminationLog}`,
      ],
      { cwd: repoRoot },
    ).then(
      () => ({ code: 0 }),
      (err: { code: number }) => ({ code: err.code }),
    );
    expect(cmd.code).toBe(1);
    expect(readFileSync(terminationLog, 'utf8')).toMatch(
      `1 problem(s): team/broken:1: blob sha256:${layer} is missing`,
    );
    expect(readFileSync(terminationLog, 'utf8')).not.toContain(admin.secret);
  }, 120_000);
});

async function writeLayer(dir: string, bytes: number): Promise<string> {
  const src = path.join(dir, `layer-${Date.now()}`);
  const { mkdirSync } = await import('node:fs');
  const { randomFillSync } = await import('node:crypto');
  mkdirSync(src);
  writeFileSync(path.join(src, 'data.bin'), randomFillSync(Buffer.alloc(bytes)));
  await exec('tar', ['-C', src, '-cf', `${src}.tar`, 'data.bin']);
  return `${src}.tar`;
}
