// Helpers for the delivery suites: render the chart with helm, build kustomize bases with kubectl,
// and look objects up in the result.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { binary, repoRoot } from '../harness/processes.ts';

const exec = promisify(execFile);

export const chartDir = path.join(repoRoot, 'charts/berth');

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its exit code and output (never throws on a non-zero exit). */
export async function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await exec(command, args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`invalid YAML in rendered output: ${d.errors[0]?.message}`);
      return d.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null && typeof m === 'object' && 'kind' in m);
}

/** `helm template` with --set style values; throws with helm's message when rendering fails. */
export async function helmTemplate(
  values: string[] = [],
  options: { release?: string; namespace?: string } = {},
): Promise<Manifest[]> {
  const result = await helmTemplateRaw(values, options);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

export async function helmTemplateRaw(
  values: string[] = [],
  options: { release?: string; namespace?: string } = {},
): Promise<RunResult> {
  return run(binary('helm'), [
    'template',
    options.release ?? 'berth',
    chartDir,
    '--namespace',
    options.namespace ?? 'berth-system',
    ...values.flatMap((v) => ['--set', v]),
  ]);
}

export async function kustomize(dir: string): Promise<Manifest[]> {
  const result = await run(binary('kubectl'), ['kustomize', path.join(repoRoot, dir)]);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

export function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) {
    const have = manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ');
    throw new Error(`no ${kind}/${name} in the rendered manifests (have: ${have})`);
  }
  return found;
}

export function ofKind(manifests: Manifest[], ...kinds: string[]): Manifest[] {
  return manifests.filter((m) => kinds.includes(m.kind));
}

export function rulesOf(m: Manifest): PolicyRule[] {
  return (m.rules as PolicyRule[] | undefined) ?? [];
}

/** The berth.dev CRDs that the chart and config/crd must ship (from crds/). */
export const expectedCRDs = ['registries.berth.dev', 'repositories.berth.dev', 'retentionpolicies.berth.dev'];
