import { describe, expect, test } from '@jest/globals';
import type { ReconcileContext } from '../runtime/controller.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeClient, KubeObject } from '../runtime/kube/client.ts';
import { PullSecretReconciler, pullSecretsFinalizer } from './reconciler.ts';
import { alreadyReported, summarize } from './status.ts';

/** A cache of plain JSON objects, as an informer holds them. */
const cacheOf = <T extends KubeObject>(json: KubeObject[]): Cache<T> => {
  const objects = json as T[];
  return {
    get: (name, namespace) =>
      objects.find((o) => o.metadata?.name === name && o.metadata.namespace === namespace),
    list: () => objects,
    hasSynced: () => true,
  };
};

/** A Registry being deleted, as a cache may still hold it after the finalizer was removed. */
const deleting: KubeObject = {
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'Registry',
  metadata: {
    name: 'main',
    namespace: 'registry-system',
    resourceVersion: '41',
    deletionTimestamp: '2026-01-01T00:00:00Z',
    finalizers: [pullSecretsFinalizer],
  },
  spec: { pullSecrets: {} },
} as KubeObject;

function reconcilerAnswering(status: number) {
  const patches: string[] = [];
  const client = {
    mergePatch: (path: string) => {
      patches.push(path);
      return Promise.reject(Object.assign(new Error(`HTTP ${status}`), { code: status }));
    },
  } as unknown as KubeClient;
  const reconciler = new PullSecretReconciler(
    {
      client,
      clock: { now: () => Date.parse('2026-01-01T00:01:00Z') },
      events: { event: () => undefined },
    } as never,
    {
      registries: cacheOf([deleting]),
      namespaces: cacheOf([]),
      serviceAccounts: cacheOf([]),
      secrets: cacheOf([]),
    },
    { propagationMs: 0 },
  );
  const ctx = { signal: new AbortController().signal } as ReconcileContext;
  return {
    patches,
    run: () =>
      reconciler.reconcile({ key: 'registry-system/main', name: 'main', namespace: 'registry-system' }, ctx),
  };
}

describe('PullSecretReconciler on a Registry being deleted', () => {
  test('a 404 on removing the finalizer (a stale cached copy of a Registry already gone) is success', async () => {
    const { patches, run } = reconcilerAnswering(404);
    await expect(run()).resolves.toBeUndefined();
    expect(patches).toEqual(['/apis/berth.dev/v1alpha1/namespaces/registry-system/registries/main']);
  });

  test('any other failure is still an error, retried', async () => {
    await expect(reconcilerAnswering(500).run()).rejects.toThrow('HTTP 500');
  });
});

describe('alreadyReported: a clash gets its Event once, when it first shows in status', () => {
  const failed = [
    { namespace: 'team-a', reason: 'SecretNotOwned' },
    { namespace: 'team-b', reason: 'WriteFailed' },
  ];
  test.each([
    ['no status yet', undefined, 'team-a', 'SecretNotOwned', false],
    ['no failures', [], 'team-a', 'SecretNotOwned', false],
    ['the same clash already in status', failed, 'team-a', 'SecretNotOwned', true],
    ['another namespace', failed, 'team-c', 'SecretNotOwned', false],
    ['the namespace failed for another reason', failed, 'team-b', 'SecretNotOwned', false],
  ] as const)('%s', (_name, list, namespace, reason, want) => {
    expect(alreadyReported(list, namespace, reason)).toBe(want);
  });
});

describe('summarize: status.pullSecrets from the kept outcomes of the selected namespaces', () => {
  const outcomes = new Map([
    ['a', { ready: true, dueAt: 300, lastRotation: 50 }],
    ['b', { ready: true, dueAt: 200 }],
    ['c', { ready: false, failure: { namespace: 'c', reason: 'SecretNotOwned', message: 'm' } }],
    ['gone', { ready: true, dueAt: 100, lastRotation: 90, overdue: true }],
  ]);
  test.each([
    ['nothing selected', [], { selected: 0, ready: 0, failures: [], overdue: false }],
    [
      'a namespace not looked at yet counts as selected, not ready',
      ['a', 'new'],
      { selected: 2, ready: 1, failures: [], lastRotation: 50, nextRotation: 300, overdue: false },
    ],
    [
      'failures are listed; outcomes of namespaces no longer selected do not count',
      ['c', 'b', 'a'],
      {
        selected: 3,
        ready: 2,
        failures: [{ namespace: 'c', reason: 'SecretNotOwned', message: 'm' }],
        lastRotation: 50,
        nextRotation: 200,
        overdue: false,
      },
    ],
  ] as const)('%s', (_name, selected, want) => {
    expect(summarize(selected, outcomes)).toEqual(want);
  });
});
