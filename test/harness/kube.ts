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

/** Creates a namespace with a unique name for one test, with optional labels. */
export async function createTestNamespace(
  kc: k8s.KubeConfig,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels } } });
  return name;
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
