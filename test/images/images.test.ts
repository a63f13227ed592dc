// The images that `make images` (hack/images.sh) builds without Docker: what their archives say
// (names, config, files), and what they do when containerd runs them as a kubelet would: imported
// with `ctr images import` under the names berth's pods use, then run with the image's own user,
// entrypoint and arguments.
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { run, type RunResult } from '../delivery/manifests.ts';
import { binDir, ProcessGroup, repoRoot } from '../harness/processes.ts';
import { openDockerArchive, type DockerArchive } from './archive.ts';

const exec = promisify(execFile);
const imagesDir = path.join(binDir, 'images');
const names = {
  registry: 'docker.io/library/registry:3.1.1',
  pause: 'registry.k8s.io/pause:3.10.1',
};

function ok(result: RunResult, what: string): RunResult {
  if (result.code !== 0)
    throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
  return result;
}

let dir = '';
let berthRef = '';
const archives: Record<'berth' | 'registry' | 'pause', DockerArchive | undefined> = {
  berth: undefined,
  registry: undefined,
  pause: undefined,
};
const archive = (name: keyof typeof archives): DockerArchive => {
  const a = archives[name];
  if (!a) throw new Error(`${name}.tar was not read`);
  return a;
};

beforeAll(async () => {
  // The same script as `make images`; seconds when nothing changed.
  ok(await run('bash', [path.join(repoRoot, 'hack/images.sh')]), 'hack/images.sh');
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-images-'));
  berthRef = readFileSync(path.join(imagesDir, 'berth.ref'), 'utf8').trim();
  for (const name of ['berth', 'registry', 'pause'] as const)
    archives[name] = await openDockerArchive(path.join(imagesDir, `${name}.tar`), path.join(dir, name));
}, 3_600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the archives in bin/images', () => {
  test('each names its image, as ctr import and docker load read it', () => {
    expect(berthRef).toBe('localhost/berth:dev');
    expect(archive('berth').repoTags).toEqual([berthRef]);
    expect(archive('registry').repoTags).toEqual([names.registry]);
    expect(archive('pause').repoTags).toEqual([names.pause]);
  });

  test("berth: the Dockerfile's user, entrypoint and command", () => {
    const c = archive('berth').config;
    expect(c.User).toBe('65532:65532');
    expect(c.Entrypoint).toEqual(['node', '--enable-source-maps', '/app/dist/main.js']);
    expect(c.Cmd).toEqual(['--help']);
    expect(c.WorkingDir).toBe('/app');
    expect(c.Env).toContain('NODE_ENV=production');
    expect(Object.keys(c.ExposedPorts ?? {}).sort()).toEqual(['8080/tcp', '8081/tcp']);
    expect(c.Labels?.['org.opencontainers.image.title']).toBe('berth');
  });

  test('berth: /app/node_modules holds the production dependencies and no development one', async () => {
    const files = await archive('berth').files();
    const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
    };
    const topLevel = Object.entries(lock.packages).filter(([p]) =>
      /^node_modules\/(@[^/]+\/)?[^/@]+$/.test(p),
    );
    const present = (p: string) => files.has(`app/${p}/package.json`);
    const dev = topLevel.filter(([, e]) => e.dev).map(([p]) => p);
    const prod = topLevel.filter(([, e]) => !e.dev && !e.devOptional && !e.optional).map(([p]) => p);
    expect(dev).toContain('node_modules/typescript');
    expect(prod).toContain('node_modules/@kubernetes/client-node');
    expect(dev.filter(present)).toEqual([]);
    expect(prod.filter((p) => !present(p))).toEqual([]);
    expect(files.has('app/dist/main.js')).toBe(true);
    // Only the compiled sources: no src/, no compiled tests (.dockerignore).
    expect([...files].filter((f) => f.startsWith('app/src/'))).toEqual([]);
    expect([...files].filter((f) => f.startsWith('app/dist/') && f.endsWith('.test.js'))).toEqual([]);
    // What the build stages were given (hack/images.sh build_berth) stays out of the image.
    expect(files.has('usr/local/etc/npmrc')).toBe(false);
  });

  test('registry: the layout of the official image, which berth runs with args only', () => {
    const c = archive('registry').config;
    expect(c.Entrypoint).toEqual(['registry']);
    expect(c.Cmd).toEqual(['serve', '/etc/distribution/config.yml']);
    expect(c.User ?? '').toBe('');
    expect(Object.keys(c.Volumes ?? {})).toEqual(['/var/lib/registry']);
    expect(c.Env).toContain('OTEL_TRACES_EXPORTER=none');
  });

  test('pause: /pause as 65535, on no base', async () => {
    const c = archive('pause').config;
    expect(c.Entrypoint).toEqual(['/pause']);
    expect(c.User).toBe('65535:65535');
    expect([...(await archive('pause').files())].filter((f) => !f.endsWith('/'))).toEqual(['pause']);
  });
});

/** /proc/<pid>/stat: the state letter and the parent pid of each process whose parent is ppid. */
function childrenOf(ppid: number): { pid: number; comm: string; state: string }[] {
  const out: { pid: number; comm: string; state: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const [state, parent] = stat.slice(close + 2).split(' ');
    if (Number(parent) === ppid) out.push({ pid: Number(entry), comm, state: state ?? '?' });
  }
  return out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const asRoot = process.getuid?.() === 0;
const unshare = ['/usr/bin/unshare', '/usr/bin/nsenter'].every(existsSync);
(asRoot && unshare ? describe : describe.skip)(
  'the pause program as the first process of a PID namespace',
  () => {
    test('reaps the orphans reparented to it and exits 0 on SIGTERM', async () => {
      const bin = path.join(dir, 'pause-bin');
      mkdirSync(path.join(dir, 'pause-layer'));
      await exec('tar', ['-xf', archive('pause').layers[0]!, '-C', path.join(dir, 'pause-layer'), 'pause']);
      renameSync(path.join(dir, 'pause-layer', 'pause'), bin);
      // --kill-child: pause dies with unshare, also when an assertion fails.
      const holder = spawn('/usr/bin/unshare', ['--pid', '--fork', '--kill-child', bin], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => holder.once('exit', (code) => resolve(code)));
      try {
        let pause: number | undefined;
        for (let i = 0; i < 50 && pause === undefined; i++) {
          pause = childrenOf(holder.pid!).find((p) => p.comm === 'pause-bin')?.pid;
          if (pause === undefined) await sleep(100);
        }
        expect(pause).toBeDefined();
        // A shell in pause's namespace starts a child and exits: the child is reparented to pause.
        await exec('/usr/bin/nsenter', [
          '--target',
          String(pause),
          '--pid',
          '--',
          '/bin/sh',
          '-c',
          // Its output away from our pipes, or exec would wait for the orphan to close them.
          'sleep 3 </dev/null >/dev/null 2>&1 & exit 0',
        ]);
        const orphans = () => childrenOf(pause!).filter((p) => p.comm === 'sleep');
        for (let i = 0; i < 20 && orphans().length === 0; i++) await sleep(100);
        expect(orphans().map((p) => p.state)).toEqual(['S']);
        // When it exits, pause collects it: no zombie stays behind (without reaping, it would).
        for (let i = 0; i < 100 && orphans().some((p) => p.state !== 'Z'); i++) await sleep(100);
        await sleep(500);
        expect(orphans()).toEqual([]);
        process.kill(pause!, 'SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        // unshare ignores SIGTERM while it waits; its death takes pause along (--kill-child).
        if (holder.exitCode === null) holder.kill('SIGKILL');
      }
    }, 30_000);
  },
);

// A containerd of its own (root, state and socket in a temporary folder): bin/containerd when the
// node's containerd 2 has been built, else Debian's.
const fromBin = ['containerd', 'ctr', 'containerd-shim-runc-v2'].every((b) =>
  existsSync(path.join(binDir, b)),
);
const containerdDir = fromBin ? binDir : '/usr/bin';
const haveContainerd = ['containerd', 'ctr'].every((b) => existsSync(path.join(containerdDir, b)));
if (!asRoot || !haveContainerd)
  process.stderr.write(
    `[images] containerd tests SKIPPED: ${asRoot ? `no containerd and ctr in ${containerdDir}` : 'not root'}\n`,
  );

(asRoot && haveContainerd ? describe : describe.skip)(`in containerd (${containerdDir}/containerd)`, () => {
  let group: ProcessGroup | undefined;
  let socket = '';
  const ctr = (...args: string[]) =>
    run(path.join(containerdDir, 'ctr'), ['--address', socket, '--namespace', 'k8s.io', ...args], {
      PATH: `${containerdDir}:${process.env.PATH ?? ''}`,
    });

  beforeAll(async () => {
    group = new ProcessGroup(mkdtempSync(path.join(os.tmpdir(), 'berth-images-containerd-')));
    const root = group.workDir;
    socket = path.join(root, 'containerd.sock');
    writeFileSync(
      path.join(root, 'config.toml'),
      [
        'version = 2',
        `root = "${root}/root"`,
        `state = "${root}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${socket}"`,
        '[ttrpc]',
        `  address = "${socket}.ttrpc"`,
      ].join('\n'),
    );
    const p = group.start(
      'containerd',
      path.join(containerdDir, 'containerd'),
      ['--config', path.join(root, 'config.toml')],
      {
        PATH: `${containerdDir}:${process.env.PATH ?? ''}`,
      },
    );
    for (let i = 0; i < 100 && !(await ctr('version')).stdout.includes('Server'); i++) await sleep(200);
    if (!(await ctr('version')).stdout.includes('Server'))
      throw new Error(`containerd did not answer:\n${ProcessGroup.tail(p.logFile)}`);
    // --local: the client unpacks, as the node harness imports (containerd 2's ctr has the flag).
    const local = (await ctr('images', 'import', '--help')).stdout.includes('--local') ? ['--local'] : [];
    for (const name of ['pause', 'registry', 'berth'])
      ok(
        await ctr('images', 'import', ...local, path.join(imagesDir, `${name}.tar`)),
        `ctr images import ${name}.tar`,
      );
  }, 600_000);

  afterAll(async () => {
    if (!group) return;
    await group.stopAll({ keepDir: true });
    // Snapshot mounts that a failed run left behind, deepest first, before the folder goes.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(group!.workDir))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m]);
    rmSync(group.workDir, { recursive: true, force: true });
  }, 60_000);

  test('ctr images import keeps the names that the pods use', async () => {
    const listed = ok(await ctr('images', 'ls', '-q'), 'ctr images ls').stdout.split('\n');
    expect(listed).toEqual(expect.arrayContaining([berthRef, names.registry, names.pause]));
  });

  test('berth runs as 65532 on a read-only root and prints its usage (the image command, --help)', async () => {
    const r = ok(await ctr('run', '--rm', '--read-only', berthRef, 'berth-help'), 'ctr run berth');
    expect(r.stdout).toMatch(/^usage: berth <command> \[flags\]/m);
    expect(r.stdout).toMatch(/operator/);
    const id = ok(
      await ctr(
        'run',
        '--rm',
        '--read-only',
        berthRef,
        'berth-id',
        'node',
        '-e',
        'console.log(process.getuid(), process.version)',
      ),
      'ctr run berth node -e',
    );
    expect(id.stdout.trim()).toBe('65532 v24.21.0');
  }, 120_000);

  test('registry: `registry --version` is v3.1.1, and the garbage-collect Job finds its shell tools', async () => {
    const r = ok(
      await ctr('run', '--rm', '--read-only', names.registry, 'registry-version', 'registry', '--version'),
      'registry --version',
    );
    expect(r.stdout).toMatch(/github\.com\/distribution\/distribution\/v3 v3\.1\.1\b/);
    // src/gc/jobs.ts collectScript runs under /bin/sh with du, cut, tail, grep and printf.
    const tools = ok(
      await ctr(
        'run',
        '--rm',
        names.registry,
        'registry-tools',
        '/bin/sh',
        '-c',
        'for t in du cut tail grep printf cat; do command -v $t; done',
      ),
      'registry shell tools',
    );
    expect(tools.stdout.trim().split('\n')).toHaveLength(6);
  }, 120_000);

  test('pause runs until SIGTERM and then exits 0', async () => {
    const started = run(
      path.join(containerdDir, 'ctr'),
      ['--address', socket, '--namespace', 'k8s.io', 'run', '--rm', names.pause, 'pause-run'],
      {
        PATH: `${containerdDir}:${process.env.PATH ?? ''}`,
      },
    );
    let running = false;
    for (let i = 0; i < 50 && !running; i++) {
      running = /pause-run\s+\d+\s+RUNNING/.test((await ctr('tasks', 'ls')).stdout);
      if (!running) await sleep(200);
    }
    expect(running).toBe(true);
    ok(await ctr('tasks', 'kill', '--signal', 'SIGTERM', 'pause-run'), 'ctr tasks kill');
    const r = await started;
    expect(r.code).toBe(0);
  }, 60_000);
});
