// Helpers for the API suites: berth's custom objects through CustomObjectsApi (plain objects, as a
// user's YAML reaches the API server), the samples, kubectl, and the API server's rejections.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { GROUP, VERSION, kinds } from '../../src/api/index.ts';
import { binary, repoRoot } from '../harness/processes.ts';
import { waitFor } from '../harness/net.ts';

export type KindName = (typeof kinds)[number]['kind'];
export type Obj = { apiVersion: string; kind: KindName; metadata: k8s.V1ObjectMeta; spec?: unknown } & Record<
  string,
  unknown
>;

export function pluralOf(kind: KindName): string {
  return kinds.find((k) => k.kind === kind)!.plural;
}

export class BerthObjects {
  readonly api: k8s.CustomObjectsApi;
  constructor(kc: k8s.KubeConfig) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async create(obj: Obj): Promise<Obj> {
    return (await this.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: obj.metadata.namespace!,
      plural: pluralOf(obj.kind),
      body: obj,
    })) as Obj;
  }

  async get(kind: KindName, namespace: string, name: string): Promise<Obj> {
    return (await this.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: pluralOf(kind),
      name,
    })) as Obj;
  }

  async replace(obj: Obj): Promise<Obj> {
    return (await this.api.replaceNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: obj.metadata.namespace!,
      plural: pluralOf(obj.kind),
      name: obj.metadata.name!,
      body: obj,
    })) as Obj;
  }
}

/** The samples in config/samples, parsed. */
export function sample(file: string): Obj {
  return parse(readFileSync(path.join(repoRoot, 'config/samples', file), 'utf8')) as Obj;
}

/**
 * A sample moved into `namespace`. A Repository's path starts with its namespace, so the
 * sample's "team-a/" prefix follows the namespace.
 */
export function sampleIn(file: string, namespace: string): Obj {
  const obj = sample(file);
  obj.metadata = { ...obj.metadata, namespace };
  const spec = obj.spec as { path?: string } | undefined;
  if (obj.kind === 'Repository' && spec?.path) spec.path = spec.path.replace(/^team-a\//, `${namespace}/`);
  return obj;
}

export interface Rejection {
  code: number | undefined;
  reason: string | undefined;
  message: string;
  /**
   * The fields the API server blames (details.causes[].field). Causes without a field are left
   * out, and so is "<nil>": when the schema refuses an object, the API server adds a cause
   * "<nil>: some validation rules were not checked because the object was invalid".
   */
  fields: string[];
}

/** What the API server answered to a request it refused; throws if `promise` succeeds. */
export async function rejection(promise: Promise<unknown>): Promise<Rejection> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof k8s.ApiException)) throw err;
    const body = (typeof err.body === 'string' ? safeJSON(err.body) : err.body) as k8s.V1Status | undefined;
    return {
      code: err.code,
      reason: body?.reason,
      message: body?.message ?? String(err.body),
      fields: (body?.details?.causes ?? [])
        .map((c) => c.field ?? '')
        .filter((f) => f !== '' && f !== '<nil>'),
    };
  }
  throw new Error('the API server accepted the object');
}

function safeJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

const run = promisify(execFile);

export async function kubectl(args: string[]): Promise<string> {
  const kubeconfig = process.env.BERTH_TEST_KUBECONFIG;
  if (!kubeconfig) throw new Error('BERTH_TEST_KUBECONFIG is not set');
  const { stdout } = await run(binary('kubectl'), [...args, '--kubeconfig', kubeconfig], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/**
 * Installs the non-CRD part of the API (the ValidatingAdmissionPolicy for Repository paths, in
 * crds/) and waits until the API server enforces it: a Repository outside its namespace is refused.
 */
export async function installAdmissionPolicies(objects: BerthObjects, namespace: string): Promise<void> {
  await kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    path.join(repoRoot, 'crds/admission/repositories-path.yaml'),
  ]);
  await waitFor(
    'the Repository admission policy to be enforced',
    async () => {
      const probe: Obj = {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Repository',
        metadata: { name: 'policy-probe', namespace },
        spec: { registryRef: { name: 'main' }, path: 'not-this-namespace/probe' },
      };
      try {
        await objects.api.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: 'repositories',
          body: probe,
          dryRun: 'All',
        });
        return false;
      } catch (err) {
        return err instanceof k8s.ApiException && err.code === 422;
      }
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}
