// Kubernetes clients for tests, against the control plane that the global setup started.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { waitFor } from './net.ts';

export function testKubeConfig(file = process.env.BERTH_TEST_KUBECONFIG): k8s.KubeConfig {
  if (!file)
    throw new Error('BERTH_TEST_KUBECONFIG is not set: run the integration tests through jest (make test)');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** What the current test file made outside its namespaces' reach, undone after it (test/setup/cleanup.ts). */
const made: { namespaces: { kc: k8s.KubeConfig; name: string }[]; undo: (() => Promise<void>)[] } = {
  namespaces: [],
  undo: [],
};

/** Registers something to undo after the test file (for example a cluster-scoped object it made). */
export function undoAfterFile(undo: () => Promise<void>): void {
  made.undo.push(undo);
}

/** Creates a namespace with a unique name for one test, with optional labels; deleted after the file. */
export async function createTestNamespace(
  kc: k8s.KubeConfig,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels } } });
  made.namespaces.push({ kc, name });
  return name;
}

/**
 * Deletes the namespaces this file created and runs what it registered to undo. Runs before the
 * file's own afterAll hooks, so its operator still removes its finalizers; what is still there
 * after `waitMs` loses berth's finalizers, so no namespace stays Terminating. Never throws.
 */
export async function cleanUpAfterFile(waitMs = 20_000): Promise<void> {
  const namespaces = made.namespaces.splice(0);
  const undo = made.undo.splice(0);
  const quiet = <T>(p: Promise<T>) => p.catch(() => undefined);
  await Promise.all(
    namespaces.map(({ kc, name }) => quiet(kc.makeApiClient(k8s.CoreV1Api).deleteNamespace({ name }))),
  );
  const remaining = async () =>
    (
      await Promise.all(
        namespaces.map(async (n) =>
          (await quiet(n.kc.makeApiClient(k8s.CoreV1Api).readNamespace({ name: n.name }))) ? [n] : [],
        ),
      )
    ).flat();
  const deadline = Date.now() + waitMs;
  let left = await remaining();
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    left = await remaining();
  }
  for (const { kc, name } of left) {
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    for (const plural of ['registries', 'repositories', 'retentionpolicies']) {
      const list = (await quiet(
        custom.listNamespacedCustomObject({
          group: 'berth.dev',
          version: 'v1alpha1',
          plural,
          namespace: name,
        }),
      )) as { items?: { metadata?: { name?: string; finalizers?: string[] } }[] } | undefined;
      for (const item of list?.items ?? [])
        if (item.metadata?.finalizers?.length)
          await quiet(
            custom.patchNamespacedCustomObject(
              {
                group: 'berth.dev',
                version: 'v1alpha1',
                plural,
                namespace: name,
                name: item.metadata.name ?? '',
                body: { metadata: { finalizers: null } },
              },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
            ),
          );
    }
  }
  for (const u of undo.reverse()) await quiet(u());
}

/** Waits until `read` returns a value that satisfies `predicate`, and returns it. */
export async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  let last: T | undefined;
  await waitFor(
    what,
    async () => {
      last = await read();
      return predicate(last);
    },
    { timeoutMs, intervalMs: 250, describe: () => `last value: ${JSON.stringify(last)?.slice(0, 2000)}` },
  );
  return last as T;
}

/** The HTTP status of a failed client call, or undefined. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}
