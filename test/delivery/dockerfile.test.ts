// The Dockerfile, without a Docker engine: hadolint, the structure an operator image needs
// (Node 24, non-root numeric user, production dependencies only, the berth entrypoint), and the
// build stage's own commands run here, producing a berth that starts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { binary, repoRoot } from '../harness/processes.ts';
import { run } from './manifests.ts';

const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

const all = instructions(dockerfile);
const stages = all.reduce<Instruction[][]>((acc, i) => {
  if (i.keyword === 'FROM') acc.push([]);
  acc.at(-1)?.push(i);
  return acc;
}, []);
const finalStage = stages.at(-1) ?? [];

describe('Dockerfile', () => {
  test('passes hadolint', async () => {
    const result = await run(binary('hadolint'), ['--failure-threshold', 'info', 'Dockerfile']);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  test('builds in stages from a pinned Node 24 image', () => {
    const nodeVersion = /^ARG NODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
    expect(nodeVersion).toMatch(/^24\.\d+\.\d+$/);
    const froms = all.filter((i) => i.keyword === 'FROM').map((i) => i.args);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^node:\$\{NODE_VERSION\}-bookworm-slim( AS \w+)?$/);
  });

  test('installs only production dependencies into the final image, from the lockfile', () => {
    const runs = all.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(runs.some((r) => /npm install\b/.test(r))).toBe(false);
    const copies = finalStage.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copies).toContainEqual(expect.stringMatching(/^--from=deps .*\/app\/node_modules/));
    expect(copies).toContainEqual(expect.stringMatching(/^--from=build .*\/app\/dist/));
    expect(all.filter((i) => i.keyword === 'ADD')).toEqual([]);
  });

  test('runs as a numeric non-root user, with berth as the entrypoint', () => {
    const user = finalStage.filter((i) => i.keyword === 'USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    const entrypoint = JSON.parse(
      finalStage.find((i) => i.keyword === 'ENTRYPOINT')?.args ?? '[]',
    ) as string[];
    expect(entrypoint[0]).toBe('node');
    expect(entrypoint.at(-1)).toBe('/app/dist/main.js');
  });

  test('sends only what the build needs (no node_modules, tests or secrets)', () => {
    const ignore = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8');
    expect(ignore).toMatch(/^\*$/m);
    expect(ignore).toMatch(/^!src\/$/m);
    expect(ignore).toMatch(/^src\/\*\*\/\*\.test\.ts$/m);
  });

  test("the build stage's compile produces a berth that starts and lists its subcommands", async () => {
    const out = path.join(repoRoot, '.tmp/image-build/dist');
    const tsc = await run(path.join(repoRoot, 'node_modules/.bin/tsc'), [
      '-p',
      'tsconfig.build.json',
      '--outDir',
      out,
    ]);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
    const node = path.join(repoRoot, 'node_modules/.bin/node');
    const version = await run(node, ['--enable-source-maps', path.join(out, 'main.js'), 'version']);
    expect(version.stdout.trim()).toMatch(/^berth \d+\.\d+\.\d+/);
    const help = await run(node, [path.join(out, 'main.js'), '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^\s+operator\s/m);
    expect(help.stdout).toMatch(/^\s+token-service\s/m);
  });
});
