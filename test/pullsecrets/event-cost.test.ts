// What one event costs the pull-secret fan-out, counted by the API server's audit log (and by
// berth's own metric of namespaces looked at), never timed: a ServiceAccount created in one of
// many selected namespaces costs one write (its imagePullSecrets entry) and a bounded number of
// reads, however many namespaces the Registry selects, even when some of them hold a foreign
// Secret of berth's name (which berth reads directly, as its informer does not hold it).
// Its own control plane, so that the audit log holds only this suite's operator.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { installCRDs } from '../harness/crds.ts';
import { eventually } from '../harness/kube.ts';
import { createRegistry } from '../harness/objects.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { readAuditLog, type AuditEvent } from '../runtime/audit-terms.ts';

const user = 'berth-event-cost';
const selected = 40;
const foreign = 10;
const label = { 'berth.dev/pull': 'cost' };
const writeVerbs = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

let cp: ControlPlane;
let operator: RunningOperator;
let core: k8s.CoreV1Api;
let custom: k8s.CustomObjectsApi;
const names = Array.from({ length: selected + foreign }, (_, i) => `cost-${i}`);

const readyNamespaces = async () =>
  (
    (await custom.getNamespacedCustomObject({
      group: 'berth.dev',
      version: 'v1alpha1',
      plural: 'registries',
      namespace: 'cost-reg',
      name: 'main',
    })) as { status?: { pullSecrets?: { readyNamespaces?: number; selectedNamespaces?: number } } }
  ).status?.pullSecrets;

async function namespacesLookedAt(): Promise<number> {
  const text = await (await fetch(operator.metricsUrl)).text();
  return Number(/^berth_pullsecret_namespaces_reconciled_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** berth's requests received in [from, to], except watches (long-lived, not per event) and Leases. */
function requests(from: number, to: number): AuditEvent[] {
  const seen = new Map<string, AuditEvent>();
  for (const e of readAuditLog(cp.auditLog ?? '')) {
    const t = Date.parse(e.requestReceivedTimestamp);
    if (e.user.username !== user || t < from || t > to || e.verb === 'watch') continue;
    if (e.objectRef?.resource === 'leases') continue;
    seen.set((e as AuditEvent & { auditID: string }).auditID, e);
  }
  return [...seen.values()];
}
const describeRequest = (e: AuditEvent) =>
  `${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.namespace ?? ''}/${e.objectRef?.name ?? ''}`;

beforeAll(async () => {
  cp = await startControlPlane({ nodes: 1, auditUsers: [user] });
  await installCRDs(cp.kubeconfig);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: 'cost-reg' } } });
  for (const [i, name] of names.entries()) {
    await core.createNamespace({ body: { metadata: { name, labels: label } } });
    if (i >= selected)
      await core.createNamespacedSecret({
        namespace: name,
        body: { metadata: { name: 'main-pull' }, stringData: { mine: 'not berth' } },
      });
  }
  await eventually(
    'every default ServiceAccount',
    () => core.listServiceAccountForAllNamespaces(),
    (l) =>
      l.items.filter((s) => s.metadata?.name === 'default' && names.includes(s.metadata.namespace ?? ''))
        .length === names.length,
  );
  operator = await startOperator({
    kubeconfig: await cp.userKubeconfig(user, ['system:masters']),
    args: ['--log-level=info'],
  });
  await createRegistry(kc, 'cost-reg', 'main', {
    storage: { emptyDir: {} },
    pullSecrets: {
      namespaceSelector: { matchLabels: label },
      secretName: 'main-pull',
      serviceAccounts: { names: ['default', 'builder'] },
    },
  });
  await eventually(
    `${selected} ready namespaces of ${selected + foreign} selected`,
    readyNamespaces,
    (p) => p?.readyNamespaces === selected && p.selectedNamespaces === selected + foreign,
    120_000,
  );
}, 300_000);

afterAll(async () => {
  await operator?.stop();
  await cp?.stop();
});

describe('the cost of one event', () => {
  it('a ServiceAccount created in one of 50 selected namespaces costs 1 write and O(1) reads', async () => {
    // let what followed the fan-out (status, the credential store) settle first
    await new Promise((r) => setTimeout(r, 5000));
    const lookedBefore = await namespacesLookedAt();
    const from = Date.now();
    await core.createNamespacedServiceAccount({
      namespace: 'cost-7',
      body: { metadata: { name: 'builder' } },
    });
    await eventually(
      'the new ServiceAccount to get berth’s entry',
      () => core.readNamespacedServiceAccount({ name: 'builder', namespace: 'cost-7' }),
      (sa) => (sa.imagePullSecrets ?? []).some((e) => e.name === 'main-pull'),
    );
    // whatever the event still causes (the echo of berth's own write) has happened by now
    await new Promise((r) => setTimeout(r, 3000));
    const seen = requests(from, Date.now()).filter((e) => e.objectRef?.namespace !== 'cost-reg');
    const writes = seen.filter((e) => writeVerbs.has(e.verb));
    const reads = seen.filter((e) => !writeVerbs.has(e.verb));
    const looked = (await namespacesLookedAt()) - lookedBefore;
    console.log(
      `one ServiceAccount created: ${writes.length} writes, ${reads.length} reads, ${looked} namespaces looked at\n  ${seen.map(describeRequest).join('\n  ')}`,
    );
    expect(writes.map(describeRequest)).toEqual(['patch serviceaccounts cost-7/builder']);
    // the foreign Secrets (10 namespaces) are not read again, nor is any other namespace
    expect(reads.length).toBeLessThanOrEqual(2);
    // the event, and the echo of berth's own patch: each looks at that one namespace
    expect(looked).toBeLessThanOrEqual(2);
  });
});
