// The Argo CD health check (deploy/argocd/health.lua), run by a real Lua 5.1 interpreter (Argo CD
// runs gopher-lua, which implements Lua 5.1) against sample statuses of the three kinds.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { repoRoot } from '../harness/processes.ts';

const exec = promisify(execFile);
const script = path.join(repoRoot, 'deploy/argocd/health.lua');
const lua = 'lua5.1';

/** A JSON value as a Lua expression, the way Argo CD hands the object to the script. */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `[${JSON.stringify(k)}] = ${toLua(v)}`,
  );
  return `{${entries.join(', ')}}`;
}

async function health(obj: unknown): Promise<{ status: string; message: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-lua-'));
  const runner = path.join(dir, 'run.lua');
  writeFileSync(
    runner,
    [
      `obj = ${toLua(obj)}`,
      `local hs = dofile(${JSON.stringify(script)})`,
      'io.write(tostring(hs.status), "\\n", tostring(hs.message))',
    ].join('\n'),
  );
  let stdout: string;
  try {
    ({ stdout } = await exec(lua, [runner]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const [status = '', ...rest] = stdout.split('\n');
  return { status, message: rest.join('\n') };
}

const condition = (
  type: string,
  status: string,
  reason: string,
  message: string,
  observedGeneration = 2,
) => ({
  type,
  status,
  reason,
  message,
  observedGeneration,
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

const object = (kind: string, status: unknown, generation = 2) => ({
  apiVersion: 'berth.dev/v1alpha1',
  kind,
  metadata: { name: 'x', namespace: 'ns', generation },
  spec: {},
  ...(status === undefined ? {} : { status }),
});

describe('Argo CD health check', () => {
  test('needs a Lua 5.1 interpreter (installed by `make tools` through hack/system-deps.sh)', async () => {
    const { stdout, stderr } = await exec(lua, ['-v']).catch((err: Error) => {
      throw new Error(`${lua} is missing: run \`bash hack/system-deps.sh\` (${err.message})`);
    });
    expect(stdout + stderr).toMatch(/^Lua 5\.1/);
  });

  test('uses nothing that Argo CD sandboxes away', () => {
    const text = readFileSync(script, 'utf8');
    expect(text).not.toMatch(/\b(os|io|debug|package)\.|\brequire\b|\bloadstring\b|\bdofile\b/);
  });

  const cases: { name: string; obj: unknown; status: string; message: RegExp }[] = [
    {
      name: 'a new Registry without status is progressing',
      obj: object('Registry', undefined),
      status: 'Progressing',
      message: /Waiting for berth to report a status/,
    },
    {
      name: 'a Registry whose status describes an older generation is progressing, even if it was Ready',
      obj: object(
        'Registry',
        { observedGeneration: 1, conditions: [condition('Ready', 'True', 'Available', 'ok', 1)] },
        2,
      ),
      status: 'Progressing',
      message: /observe generation 2/,
    },
    {
      name: 'a Ready Registry is healthy',
      obj: object('Registry', {
        observedGeneration: 2,
        endpoint: 'main.registry-system.svc:443',
        conditions: [
          condition('Ready', 'True', 'Available', 'the registry serves (1/1 ready)'),
          condition('Progressing', 'False', 'RolloutComplete', 'every pod runs the current configuration'),
          condition('Degraded', 'False', 'AsExpected', 'no problem found'),
        ],
      }),
      status: 'Healthy',
      message: /^Available: the registry serves/,
    },
    {
      name: 'a Registry rolling out is progressing with the rollout message',
      obj: object('Registry', {
        observedGeneration: 2,
        conditions: [
          condition('Ready', 'False', 'PodsNotReady', 'waiting for pods'),
          condition('Progressing', 'True', 'RollingOut', 'registry: 0/1 updated'),
          condition('Degraded', 'False', 'AsExpected', 'no problem found'),
        ],
      }),
      status: 'Progressing',
      message: /^RollingOut: registry: 0\/1 updated/,
    },
    {
      name: 'a Degraded Registry is degraded, even while still serving',
      obj: object('Registry', {
        observedGeneration: 2,
        conditions: [
          condition('Ready', 'True', 'Available', 'the registry serves'),
          condition('Degraded', 'True', 'GarbageCollectionFailed', 'left read-only: verify failed'),
        ],
      }),
      status: 'Degraded',
      message: /^GarbageCollectionFailed: left read-only/,
    },
    {
      name: 'a Repository that lost a path conflict (Stalled, kstatus) is degraded',
      obj: object('Repository', {
        observedGeneration: 2,
        conditions: [
          condition('Ready', 'False', 'PathConflict', 'team-a/web is claimed by team-a/other'),
          condition('Stalled', 'True', 'PathConflict', 'team-a/web is claimed by team-a/other'),
        ],
      }),
      status: 'Degraded',
      message: /^PathConflict: team-a\/web is claimed/,
    },
    {
      name: 'a Repository waiting for its Registry is progressing',
      obj: object('Repository', {
        observedGeneration: 2,
        conditions: [condition('Ready', 'False', 'RegistryNotReady', 'waiting for registry-system/main')],
      }),
      status: 'Progressing',
      message: /^RegistryNotReady: waiting for registry-system\/main/,
    },
    {
      name: 'a Ready RetentionPolicy is healthy; a condition without message shows its reason',
      obj: object('RetentionPolicy', {
        observedGeneration: 2,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Scheduled', observedGeneration: 2 }],
      }),
      status: 'Healthy',
      message: /^Scheduled: Ready$/,
    },
    {
      name: 'a RetentionPolicy with a status but no Ready condition yet is progressing',
      obj: object('RetentionPolicy', { observedGeneration: 2, conditions: [] }),
      status: 'Progressing',
      message: /Waiting for the Ready condition/,
    },
    {
      name: 'the Ready condition’s own observedGeneration counts when status.observedGeneration is absent',
      obj: object('Repository', { conditions: [condition('Ready', 'True', 'Ready', 'pullable', 1)] }, 2),
      status: 'Progressing',
      message: /observe generation 2/,
    },
  ];

  test.each(cases)('$name', async ({ obj, status, message }) => {
    const hs = await health(obj);
    expect(hs.status).toBe(status);
    expect(hs.message).toMatch(message);
  });

  test('docs/gitops.md carries the same script, for all three kinds', () => {
    const docs = readFileSync(path.join(repoRoot, 'docs/gitops.md'), 'utf8');
    const body = readFileSync(script, 'utf8').trimEnd();
    const indented = body
      .split('\n')
      .map((l) => (l ? `    ${l}` : ''))
      .join('\n');
    for (const kind of ['Registry', 'Repository', 'RetentionPolicy']) {
      expect(docs).toContain(`resource.customizations.health.berth.dev_${kind}: |\n${indented}\n`);
    }
  });
});
