// Status owners against the real API server and berth's Registry CRD: two controllers' parts of one
// Registry's status (written by applyStatus, server-side apply with each owner's field manager)
// live side by side, nothing is sent when a part already holds, a part dropped is removed, fields an
// older berth wrote by replacing the whole status are removed too, and a stale cached object
// (another client changed the Registry since) is refused with a conflict, so that a reconcile never
// writes what it decided from an old view. No controller runs here: the test
// calls applyStatus as the controllers do.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import type { Registry } from '../../src/api/index.ts';
import { buildDeps } from '../../src/runtime/deps.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { collectionPath, objectPath } from '../../src/runtime/kube/resource.ts';
import { applyStatus } from '../../src/runtime/writes.ts';
import { classifyError, statusCodeOf } from '../../src/runtime/errors.ts';
import { resources } from '../../src/model/resources.ts';
import { pullSecretsStatusOwner, registryStatusOwner } from '../../src/model/status-owners.ts';

const kc = testKubeConfig();
const deps = buildDeps({ kubeConfig: kc, logger: silentLogger(), defaultMetrics: false });
const client = deps.client;
let ns: string;

const condition = (type: string, status: 'True' | 'False', reason: string) => ({
  type,
  status,
  reason,
  message: `${type} is ${status}`,
  observedGeneration: 1,
  lastTransitionTime: '2026-12-01T00:00:00Z',
});

async function createRegistry(name: string): Promise<Registry> {
  return client.create<Registry>(collectionPath(resources.registries, ns), {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name, namespace: ns },
    spec: { storage: { emptyDir: {} } },
  } as Registry);
}

const read = (name: string) => client.get<Registry>(objectPath(resources.registries, name, ns));
const types = (r: Registry) => (r.status?.conditions ?? []).map((c) => c.type).sort();

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'status-owners');
});

describe('one owner per status field', () => {
  it('keeps each owner’s part, writes nothing when a part holds, and removes what an owner drops', async () => {
    let reg = await createRegistry('owners');
    const registryPart = {
      endpoint: 'owners.example:443',
      adminSecret: 'owners-admin',
      conditions: [condition('Ready', 'False', 'PodsNotReady')],
    };
    expect(await applyStatus(client, resources.registries, reg, registryPart, registryStatusOwner)).toBe(
      true,
    );
    reg = await read('owners');
    // the pull-secret controller writes from an object read before the registry owner's write
    const pullPart = {
      pullSecrets: { selectedNamespaces: 2, readyNamespaces: 2 },
      conditions: [condition('PullSecretsReady', 'True', 'AllNamespacesReady')],
    };
    expect(await applyStatus(client, resources.registries, reg, pullPart, pullSecretsStatusOwner)).toBe(true);
    reg = await read('owners');
    expect(reg.status).toMatchObject({ endpoint: 'owners.example:443', pullSecrets: { readyNamespaces: 2 } });
    expect(types(reg)).toEqual(['PullSecretsReady', 'Ready']);
    const managers = (reg.metadata?.managedFields ?? []).filter((m) => m.subresource === 'status');
    expect(managers.map((m) => `${m.manager}/${m.operation}`).sort()).toEqual([
      'berth-pullsecrets/Apply',
      'berth-registry/Apply',
    ]);

    // the same part again: no request, the resourceVersion stays
    const rv = reg.metadata?.resourceVersion;
    expect(await applyStatus(client, resources.registries, reg, { ...reg.status }, registryStatusOwner)).toBe(
      false,
    );
    expect((await read('owners')).metadata?.resourceVersion).toBe(rv);

    // the registry owner flips Ready: the pull-secret part is untouched
    const ready = { ...registryPart, conditions: [condition('Ready', 'True', 'Available')] };
    await applyStatus(client, resources.registries, reg, ready, registryStatusOwner);
    reg = await read('owners');
    expect(reg.status?.pullSecrets?.readyNamespaces).toBe(2);
    expect(reg.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Available');

    // pull secrets no longer asked for: that owner drops its part; the registry's stays
    await applyStatus(client, resources.registries, reg, { endpoint: 'ignored' }, pullSecretsStatusOwner);
    reg = await read('owners');
    expect(reg.status?.pullSecrets).toBeUndefined();
    expect(types(reg)).toEqual(['Ready']);
    expect(reg.status?.endpoint).toBe('owners.example:443');
  });

  it('removes fields an older berth wrote by replacing the whole status', async () => {
    let reg = await createRegistry('upgraded');
    // what berth before status owners did: PUT of the whole status
    reg = await client.replace<Registry>(objectPath(resources.registries, 'upgraded', ns, 'status'), {
      ...reg,
      status: {
        endpoint: 'upgraded.example:443',
        caConfigMap: 'upgraded-ca',
        conditions: [
          condition('Ready', 'True', 'Available'),
          condition('NodesReady', 'True', 'AllNodesReady'),
        ],
      },
    } as Registry);
    // now the CA is gone (TLS from a user Secret) and node access is off
    const part = { endpoint: 'upgraded.example:443', conditions: [condition('Ready', 'True', 'Available')] };
    expect(await applyStatus(client, resources.registries, reg, part, registryStatusOwner)).toBe(true);
    reg = await read('upgraded');
    expect(reg.status?.caConfigMap).toBeUndefined();
    expect(types(reg)).toEqual(['Ready']);
    expect(await applyStatus(client, resources.registries, reg, part, registryStatusOwner)).toBe(false);
  });

  it('refuses a write decided from a stale cached object (409: the reconcile runs again), apply and removal alike', async () => {
    const stale = await createRegistry('stale');
    await client.mergePatch(objectPath(resources.registries, 'stale', ns), {
      metadata: { annotations: { 'example.com/touched-by': 'someone-else' } },
    });
    const part = { endpoint: 'stale.example:443', conditions: [condition('Ready', 'False', 'PodsNotReady')] };
    const refused = await applyStatus(client, resources.registries, stale, part, registryStatusOwner).catch(
      (err: unknown) => err,
    );
    expect(statusCodeOf(refused)).toBe(409);
    expect(classifyError(refused).kind).toBe('conflict');
    expect((await read('stale')).status?.endpoint).toBeUndefined();
    // from a fresh read it goes through
    await applyStatus(client, resources.registries, await read('stale'), part, registryStatusOwner);
    const fresh = await read('stale');
    expect(fresh.status?.endpoint).toBe('stale.example:443');
    // a removal (a JSON patch) from a stale object is refused the same way
    await client.mergePatch(objectPath(resources.registries, 'stale', ns), {
      metadata: { annotations: { 'example.com/touched-by': 'someone-else-again' } },
    });
    const removal = await applyStatus(
      client,
      resources.registries,
      fresh,
      { conditions: part.conditions },
      registryStatusOwner,
    ).catch((err: unknown) => err);
    expect(classifyError(removal).kind).toBe('conflict');
    expect((await read('stale')).status?.endpoint).toBe('stale.example:443');
  });
});
