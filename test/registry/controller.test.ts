// The Registry controller against the real control plane: the objects it creates, readiness
// from pods that kwok runs, rollouts on change, zero writes when nothing changed, deletion, and
// the problems only the controller can detect. The operator watches only this suite's namespaces;
// each test uses a Registry of its own or one the setup made ready, never another test's result.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, statusOf, testKubeConfig } from '../harness/kube.ts';
import { startOperator, type RunningOperator } from '../harness/operator.ts';
import { installCRDs } from '../harness/crds.ts';
import { createBoundVolume } from '../harness/objects.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const net = kc.makeApiClient(k8s.NetworkingV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
let operator: RunningOperator;
/** The suite's namespaces, made before the operator starts so that it watches exactly these. */
const nsFor: Record<'claim' | 'del' | 's3' | 'tls' | 'cm', string> = {
  claim: '',
  del: '',
  s3: '',
  tls: '',
  cm: '',
};
const dropVolumes: (() => Promise<void>)[] = [];

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}
interface RegistryObject {
  metadata: k8s.V1ObjectMeta;
  spec: Record<string, unknown>;
  status?: {
    conditions?: Condition[];
    endpoint?: string;
    caConfigMap?: string;
    adminSecret?: string;
    observedGeneration?: number;
  };
}

const group = { group: 'berth.dev', version: 'v1alpha1', plural: 'registries' };
const getRegistry = (namespace: string, name: string) =>
  custom.getNamespacedCustomObject({ ...group, namespace, name }) as Promise<RegistryObject>;
const condition = (r: RegistryObject, type: string) => r.status?.conditions?.find((c) => c.type === type);

async function createRegistry(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<RegistryObject> {
  return (await custom.createNamespacedCustomObject({
    ...group,
    namespace,
    body: { apiVersion: 'berth.dev/v1alpha1', kind: 'Registry', metadata: { name }, spec },
  })) as RegistryObject;
}

async function patchSpec(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { ...group, namespace, name, body: { spec } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

async function waitForCondition(
  namespace: string,
  name: string,
  type: string,
  status: string,
  reason?: string,
) {
  return eventually(
    `${namespace}/${name} ${type}=${status}${reason ? ` (${reason})` : ''}`,
    () => getRegistry(namespace, name),
    (r) => {
      const c = condition(r, type);
      return (
        c?.status === status &&
        (!reason || c.reason === reason) &&
        r.status?.observedGeneration === r.metadata.generation
      );
    },
    90_000,
  );
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

const pvcSpec = (size = '1Gi') => ({
  storage: { persistentVolumeClaim: { size, storageClassName: 'manual', accessModes: ['ReadWriteOnce'] } },
});

beforeAll(async () => {
  nsFor.claim = await createTestNamespace(kc, 'reg');
  nsFor.del = await createTestNamespace(kc, 'regdel');
  nsFor.s3 = await createTestNamespace(kc, 'regs3');
  nsFor.tls = await createTestNamespace(kc, 'regtls');
  nsFor.cm = await createTestNamespace(kc, 'regcm');
  operator = await startOperator({
    kubeconfig: process.env.BERTH_TEST_KUBECONFIG ?? '',
    args: ['--resync-period=3s', `--watch-namespaces=${Object.values(nsFor).join(',')}`],
    env: { BERTH_IMAGE: 'ghcr.io/berth-dev/berth:test' },
  });
});

afterAll(async () => {
  await operator?.stop();
  for (const drop of dropVolumes) await drop();
});

describe('a Registry with a claim and berth’s own CA', () => {
  let ns: string;
  let registry: RegistryObject;

  beforeAll(async () => {
    ns = nsFor.claim;
    dropVolumes.push(await createBoundVolume(kc, ns));
    registry = await createRegistry(ns, 'main', {
      ...pvcSpec(),
      tls: { mode: 'SelfSigned', dnsNames: ['registry.example.com'] },
    });
    // the Registry the rollout tests change
    await createRegistry(ns, 'changing', {
      storage: { emptyDir: {} },
      tls: { mode: 'SelfSigned', dnsNames: ['registry.example.com'] },
    });
    await waitForCondition(ns, 'main', 'Ready', 'True');
  }, 120_000);

  it('waits for its claim to bind, then becomes Ready once its pods run', async () => {
    await createRegistry(ns, 'late', pvcSpec());
    const pending = await waitForCondition(ns, 'late', 'StorageReady', 'False', 'PVCPending');
    expect(condition(pending, 'Ready')?.status).toBe('False');
    dropVolumes.push(await createBoundVolume(kc, ns, 'late-data'));
    const ready = await waitForCondition(ns, 'late', 'Ready', 'True');
    expect(ready.status?.endpoint).toBe(`late.${ns}.svc:443`);
    expect(ready.status?.caConfigMap).toBe('late-ca');
    expect(ready.status?.adminSecret).toBe('late-admin');
    for (const type of ['CertificateReady', 'StorageReady'])
      expect(condition(ready, type)?.status).toBe('True');
    expect(condition(ready, 'Degraded')?.status).toBe('False');
  });

  it('owns every object it created, labelled as berth’s', async () => {
    const uid = registry.metadata.uid;
    const owned = [
      await core.readNamespacedService({ name: 'main', namespace: ns }),
      await apps.readNamespacedDeployment({ name: 'main-registry', namespace: ns }),
      await apps.readNamespacedDeployment({ name: 'main-token', namespace: ns }),
      await core.readNamespacedSecret({ name: 'main-ca', namespace: ns }),
      await core.readNamespacedSecret({ name: 'main-tls', namespace: ns }),
      await core.readNamespacedSecret({ name: 'main-token-key', namespace: ns }),
      await core.readNamespacedSecret({ name: 'main-credentials', namespace: ns }),
      await core.readNamespacedSecret({ name: 'main-registry-config', namespace: ns }),
      await core.readNamespacedSecret({ name: 'main-admin', namespace: ns }),
      await core.readNamespacedConfigMap({ name: 'main-ca', namespace: ns }),
      await net.readNamespacedNetworkPolicy({ name: 'main-registry', namespace: ns }),
    ];
    for (const obj of owned) {
      expect({ name: obj.metadata?.name, owner: obj.metadata?.ownerReferences?.[0]?.uid }).toEqual({
        name: obj.metadata?.name,
        owner: uid,
      });
      expect(obj.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('berth');
    }
    // deletionPolicy Retain (the default): the claim has no owner, so it outlives the Registry.
    const pvc = await core.readNamespacedPersistentVolumeClaim({ name: 'main-data', namespace: ns });
    expect(pvc.metadata?.ownerReferences ?? []).toEqual([]);
    expect(pvc.status?.phase).toBe('Bound');
    const admin = await core.readNamespacedSecret({ name: 'main-admin', namespace: ns });
    expect(admin.type).toBe('kubernetes.io/dockerconfigjson');
    const auths = JSON.parse(Buffer.from(admin.data?.['.dockerconfigjson'] ?? '', 'base64').toString()).auths;
    expect(Object.keys(auths)).toContain(`main.${ns}.svc:443`);
    const store = Buffer.from(
      (await core.readNamespacedSecret({ name: 'main-credentials', namespace: ns })).data?.['store.json'] ??
        '',
      'base64',
    ).toString();
    expect(store).not.toContain(auths[`main.${ns}.svc:443`].password);
  });

  it('runs the registry with the restricted pod security profile and one writer on the claim', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'main-registry', namespace: ns });
    // written once: its first pod template already carried the final configuration and certificate
    expect(d.metadata?.generation).toBe(1);
    expect(d.spec?.replicas).toBe(1);
    expect(d.spec?.strategy?.type).toBe('Recreate');
    const pod = d.spec?.template.spec;
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod?.containers[0]?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('routes the Service’s registry port to registry pods and its token port to token-service pods', async () => {
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    const slices = await eventually(
      'EndpointSlices with ready endpoints for both ports',
      () =>
        discovery.listNamespacedEndpointSlice({
          namespace: ns,
          labelSelector: 'kubernetes.io/service-name=main',
        }),
      (l) => l.items.filter((s) => (s.endpoints ?? []).some((e) => e.conditions?.ready)).length >= 2,
    );
    const byPort = Object.fromEntries(
      slices.items.map((s) => [
        s.ports?.map((p) => p.name).join(','),
        s.endpoints?.map((e) => e.targetRef?.name ?? ''),
      ]),
    );
    expect(byPort.registry?.every((n: string) => n.startsWith('main-registry-'))).toBe(true);
    expect(byPort.token?.every((n: string) => n.startsWith('main-token-'))).toBe(true);
  });

  it('writes nothing when nothing changed, across several resyncs', async () => {
    const snapshot = async () => {
      const [secrets, cms, deps, svcs, reg] = await Promise.all([
        core.listNamespacedSecret({ namespace: ns }),
        core.listNamespacedConfigMap({ namespace: ns }),
        apps.listNamespacedDeployment({ namespace: ns }),
        core.listNamespacedService({ namespace: ns }),
        getRegistry(ns, 'main'),
      ]);
      return JSON.stringify(
        [...secrets.items, ...cms.items, ...deps.items, ...svcs.items, reg]
          .filter((o) => o.metadata?.name === 'main' || o.metadata?.name?.startsWith('main-'))
          .map((o) => [o.metadata?.name, o.metadata?.resourceVersion]),
      );
    };
    await waitForCondition(ns, 'main', 'Progressing', 'False');
    const before = await snapshot();
    await new Promise((r) => setTimeout(r, 10_000)); // three resync periods
    expect(await snapshot()).toBe(before);
  });

  it('rolls the pods when the resources change', async () => {
    await waitForCondition(ns, 'changing', 'Progressing', 'False');
    const before = await apps.readNamespacedDeployment({ name: 'changing-registry', namespace: ns });
    await patchSpec(ns, 'changing', { resources: { requests: { cpu: '50m', memory: '64Mi' } } });
    const after = await eventually(
      'the registry Deployment to get the new resources',
      () => apps.readNamespacedDeployment({ name: 'changing-registry', namespace: ns }),
      (d) => d.spec?.template.spec?.containers[0]?.resources?.requests?.cpu === '50m',
    );
    expect(after.metadata?.generation).toBeGreaterThan(before.metadata?.generation ?? 0);
    await waitForCondition(ns, 'changing', 'Progressing', 'False');
  });

  it('reissues the certificate for a new dnsName and rolls both deployments', async () => {
    await waitForCondition(ns, 'changing', 'CertificateReady', 'True');
    const tlsBefore = await core.readNamespacedSecret({ name: 'changing-tls', namespace: ns });
    const tokenBefore = await apps.readNamespacedDeployment({ name: 'changing-token', namespace: ns });
    await patchSpec(ns, 'changing', {
      tls: { mode: 'SelfSigned', dnsNames: ['registry.example.com', 'r2.example.com'] },
    });
    const tlsAfter = await eventually(
      'a new serving certificate',
      () => core.readNamespacedSecret({ name: 'changing-tls', namespace: ns }),
      (s) => s.data?.['tls.crt'] !== tlsBefore.data?.['tls.crt'],
    );
    const { describeCertificate } = await import('../../src/pki/certificates.ts');
    expect(
      describeCertificate(Buffer.from(tlsAfter.data?.['tls.crt'] ?? '', 'base64').toString()).dnsNames,
    ).toContain('r2.example.com');
    // the CA stays, so clients keep trusting it
    expect(tlsAfter.data?.['ca.crt']).toBe(tlsBefore.data?.['ca.crt']);
    await eventually(
      'the token service to roll',
      () => apps.readNamespacedDeployment({ name: 'changing-token', namespace: ns }),
      (d) =>
        d.spec?.template.metadata?.annotations?.['berth.dev/tls-checksum'] !==
        tokenBefore.spec?.template.metadata?.annotations?.['berth.dev/tls-checksum'],
    );
  });

  it('a deleted CA Secret: a new CA, and a serving certificate that the new CA signed', async () => {
    await waitForCondition(ns, 'changing', 'CertificateReady', 'True');
    const before = await core.readNamespacedSecret({ name: 'changing-tls', namespace: ns });
    const text = (s: k8s.V1Secret, key: string) => Buffer.from(s.data?.[key] ?? '', 'base64').toString();
    await core.deleteNamespacedSecret({ name: 'changing-ca', namespace: ns });
    // Every CA of a Registry has the same name: only its key tells the new one from the old.
    const after = await eventually(
      'the serving Secret to carry the new CA',
      () => core.readNamespacedSecret({ name: 'changing-tls', namespace: ns }),
      (s) => Boolean(s.data?.['ca.crt']) && s.data?.['ca.crt'] !== before.data?.['ca.crt'],
    );
    const ca = await eventually(
      'a new CA Secret',
      () => core.readNamespacedSecret({ name: 'changing-ca', namespace: ns }).catch(() => undefined),
      (s) => Boolean(s?.data?.['tls.crt']),
    );
    const { X509Certificate } = await import('node:crypto');
    const newCA = new X509Certificate(text(ca!, 'tls.crt'));
    expect(text(after, 'ca.crt')).toBe(text(ca!, 'tls.crt'));
    expect(text(after, 'tls.crt')).not.toBe(text(before, 'tls.crt'));
    expect(new X509Certificate(text(after, 'tls.crt')).verify(newCA.publicKey)).toBe(true);
    await waitForCondition(ns, 'changing', 'CertificateReady', 'True');
  });

  it('cascades on deletion and keeps the claim with deletionPolicy Retain', async () => {
    await createRegistry(ns, 'doomed', pvcSpec());
    await eventually(
      'the owned objects of a new Registry',
      async () =>
        (await exists(() => apps.readNamespacedDeployment({ name: 'doomed-registry', namespace: ns }))) &&
        (await exists(() => core.readNamespacedSecret({ name: 'doomed-admin', namespace: ns }))),
      (present) => present,
    );
    await custom.deleteNamespacedCustomObject({ ...group, namespace: ns, name: 'doomed' });
    await eventually(
      'owned objects to be garbage-collected',
      () => exists(() => apps.readNamespacedDeployment({ name: 'doomed-registry', namespace: ns })),
      (present) => !present,
    );
    expect(await exists(() => core.readNamespacedSecret({ name: 'doomed-admin', namespace: ns }))).toBe(
      false,
    );
    expect(
      await exists(() => core.readNamespacedPersistentVolumeClaim({ name: 'doomed-data', namespace: ns })),
    ).toBe(true);
  });
});

describe('deletionPolicy Delete', () => {
  it('removes the claim with the Registry', async () => {
    const ns = nsFor.del;
    await createRegistry(ns, 'gone', { ...pvcSpec(), deletionPolicy: 'Delete' });
    const pvc = await eventually(
      'the claim, owned by the Registry',
      () => core.listNamespacedPersistentVolumeClaim({ namespace: ns }),
      (l) => l.items.length === 1,
    );
    expect(pvc.items[0]?.metadata?.ownerReferences?.[0]?.kind).toBe('Registry');
    await custom.deleteNamespacedCustomObject({ ...group, namespace: ns, name: 'gone' });
    await eventually(
      'the claim to be deleted',
      () => exists(() => core.readNamespacedPersistentVolumeClaim({ name: 'gone-data', namespace: ns })),
      (present) => !present,
    );
  });
});

describe('problems only the controller can detect', () => {
  it('reports a missing S3 Secret and recovers when it appears', async () => {
    const ns = nsFor.s3;
    await createRegistry(ns, 's3', {
      replicas: 2,
      storage: { s3: { bucket: 'images', region: 'eu-west-1', secretRef: { name: 's3-creds' } } },
      expose: { ingress: { className: 'nginx', host: 'registry.example.com' } },
    });
    const failing = await waitForCondition(ns, 's3', 'Ready', 'False', 'StorageSecretMissing');
    expect(condition(failing, 'Ready')?.message).toContain('s3-creds');
    expect(condition(failing, 'StorageReady')?.reason).toBe('StorageSecretMissing');
    const events = await eventually(
      'a Warning event about the Secret',
      () => kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns }),
      (l) => l.items.some((e) => e.reason === 'StorageSecretMissing' && e.type === 'Warning'),
    );
    expect(events.items.length).toBeGreaterThan(0);
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 's3-creds' },
        stringData: { accessKeyID: 'AKIA', secretAccessKey: 'not-a-real-key' },
      },
    });
    const ready = await waitForCondition(ns, 's3', 'Ready', 'True');
    expect(condition(ready, 'StorageReady')?.status).toBe('True');
    const pdb = await kc
      .makeApiClient(k8s.PolicyV1Api)
      .readNamespacedPodDisruptionBudget({ name: 's3-registry', namespace: ns });
    expect(pdb.spec?.maxUnavailable).toBe(1);
    expect((await apps.readNamespacedDeployment({ name: 's3-registry', namespace: ns })).spec?.replicas).toBe(
      2,
    );
    // the Ingress routes /token to the token service and the rest to the registry, on one host
    const ingress = await net.readNamespacedIngress({ name: 's3', namespace: ns });
    expect(ingress.spec?.ingressClassName).toBe('nginx');
    expect(ingress.spec?.tls?.[0]).toEqual({ hosts: ['registry.example.com'], secretName: 's3-tls' });
    expect(
      ingress.spec?.rules?.[0]?.http?.paths.map((p) => [
        p.path,
        p.backend.service?.name,
        p.backend.service?.port?.name,
      ]),
    ).toEqual([
      ['/token', 's3', 'token'],
      ['/', 's3', 'registry'],
    ]);
    const tlsSecret = await core.readNamespacedSecret({ name: 's3-tls', namespace: ns });
    const { describeCertificate } = await import('../../src/pki/certificates.ts');
    expect(
      describeCertificate(Buffer.from(tlsSecret.data?.['tls.crt'] ?? '', 'base64').toString()).dnsNames,
    ).toContain('registry.example.com');
    const config = await core.readNamespacedSecret({ name: 's3-registry-config', namespace: ns });
    expect(Buffer.from(config.data?.['config.yml'] ?? '', 'base64').toString()).toContain(
      'realm: https://registry.example.com/token',
    );
  });

  it('reports a user TLS Secret without tls.crt and recovers when it is fixed', async () => {
    const ns = nsFor.tls;
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'my-tls' }, stringData: { 'tls.key': 'x' } },
    });
    await createRegistry(ns, 'own', {
      storage: { emptyDir: {} },
      tls: { mode: 'Secret', secretName: 'my-tls' },
    });
    const failing = await waitForCondition(ns, 'own', 'CertificateReady', 'False', 'TLSSecretInvalid');
    expect(condition(failing, 'Ready')?.message).toContain('tls.crt');
    const { createCA, issueCertificate } = await import('../../src/pki/certificates.ts');
    const now = new Date();
    const later = new Date(Date.now() + 3600_000 * 24);
    const ca = await createCA({ commonName: 'user-ca', notBefore: now, notAfter: later });
    const cert = await issueCertificate(ca, {
      commonName: 'own',
      dnsNames: [`own.${ns}.svc`],
      notBefore: now,
      notAfter: later,
      usage: 'server',
    });
    await core.replaceNamespacedSecret({
      name: 'my-tls',
      namespace: ns,
      body: {
        metadata: { name: 'my-tls' },
        stringData: { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem, 'ca.crt': ca.certPem },
      },
    });
    await waitForCondition(ns, 'own', 'CertificateReady', 'True');
    const bundle = await core.readNamespacedConfigMap({ name: 'own-ca', namespace: ns });
    expect(bundle.data?.['ca.crt']).toBe(ca.certPem);
  });

  it('reports an absent cert-manager and recovers once it is installed and issues', async () => {
    const ns = nsFor.cm;
    await createRegistry(ns, 'cm', {
      storage: { emptyDir: {} },
      tls: { mode: 'CertManager', issuerRef: { name: 'ca-issuer', kind: 'ClusterIssuer' } },
    });
    await waitForCondition(ns, 'cm', 'Ready', 'False', 'CertManagerNotInstalled');
    await installCRDs(process.env.BERTH_TEST_KUBECONFIG ?? '', [certManagerCertificateCRD()]);
    try {
      const certificate = await eventually(
        'a cert-manager Certificate',
        () =>
          custom
            .getNamespacedCustomObject({
              group: 'cert-manager.io',
              version: 'v1',
              plural: 'certificates',
              namespace: ns,
              name: 'cm-tls',
            })
            .catch(() => undefined) as Promise<
            { spec?: { secretName?: string; issuerRef?: { kind?: string } } } | undefined
          >,
        (c) => c !== undefined,
      );
      expect(certificate?.spec?.issuerRef?.kind).toBe('ClusterIssuer');
      // Act as cert-manager: write the Secret it would write.
      const { createCA, issueCertificate } = await import('../../src/pki/certificates.ts');
      const now = new Date();
      const later = new Date(Date.now() + 3600_000 * 24);
      const ca = await createCA({ commonName: 'cm-ca', notBefore: now, notAfter: later });
      const cert = await issueCertificate(ca, {
        commonName: 'cm',
        dnsNames: [`cm.${ns}.svc`],
        notBefore: now,
        notAfter: later,
        usage: 'server',
      });
      await core.createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: { name: certificate?.spec?.secretName ?? '' },
          type: 'kubernetes.io/tls',
          stringData: { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem, 'ca.crt': ca.certPem },
        },
      });
      await waitForCondition(ns, 'cm', 'CertificateReady', 'True');
    } finally {
      // the CRD is cluster-wide: no other suite sees cert-manager "installed" after this test
      await custom
        .deleteNamespacedCustomObject({ ...group, namespace: ns, name: 'cm' })
        .catch(() => undefined);
      await kc
        .makeApiClient(k8s.ApiextensionsV1Api)
        .deleteCustomResourceDefinition({ name: 'certificates.cert-manager.io' })
        .catch(() => undefined);
    }
  });
});

function certManagerCertificateCRD(): k8s.V1CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'certificates.cert-manager.io' },
    spec: {
      group: 'cert-manager.io',
      names: {
        kind: 'Certificate',
        plural: 'certificates',
        singular: 'certificate',
        listKind: 'CertificateList',
      },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  };
}
