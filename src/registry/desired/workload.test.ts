import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../../api/index.ts';
import type { BuildContext } from './context.ts';
import { tokenDeployment, tokenServiceIdentity } from './token-service.ts';
import { registryDeployment } from './workload.ts';

const ref = { name: 'main', namespace: 'ns' };
const ctx = (spec: object, tls = true): BuildContext => ({
  registry: {
    metadata: { name: 'main', namespace: 'ns', uid: 'u' },
    spec: { storage: { emptyDir: {} }, ...spec },
  } as unknown as Registry,
  ref,
  operatorImage: 'berth:1',
  tls,
  tlsSecretName: 'main-tls',
  checksums: { config: 'c', tls: 't', tokenKey: 'k' },
});
const s3 = { s3: { bucket: 'b', region: 'r', secretRef: { name: 'creds' } } };
const rwx = { persistentVolumeClaim: { size: '1Gi', accessModes: ['ReadWriteMany'] } };

describe('registryDeployment', () => {
  it.each([
    { name: 'emptyDir', spec: {}, tls: true, volumes: ['config', 'token-cert', 'tmp', 'data', 'tls'] },
    { name: 'TLS disabled', spec: {}, tls: false, volumes: ['config', 'token-cert', 'tmp', 'data'] },
    {
      name: 'S3: no data volume',
      spec: { storage: s3 },
      tls: true,
      volumes: ['config', 'token-cert', 'tmp', 'tls'],
    },
  ])('volumes: $name', (c) => {
    const pod = registryDeployment(ctx(c.spec, c.tls)).spec?.template.spec;
    expect(pod?.volumes?.map((v) => v.name)).toEqual(c.volumes);
    expect(pod?.containers[0]?.volumeMounts?.map((m) => m.name)).toEqual(c.volumes);
  });

  it.each([
    { name: 'one writer: one pod, Recreate', spec: { replicas: 3 }, replicas: 1, strategy: 'Recreate' },
    {
      name: 'shared storage: replicas, rolling',
      spec: { replicas: 3, storage: rwx },
      replicas: 3,
      strategy: 'RollingUpdate',
    },
  ])('$name', (c) => {
    const d = registryDeployment(ctx(c.spec));
    expect([d.spec?.replicas, d.spec?.strategy?.type]).toEqual([c.replicas, c.strategy]);
  });

  it('takes the S3 keys from the user Secret', () => {
    const env = registryDeployment(ctx({ storage: s3 })).spec?.template.spec?.containers[0]?.env;
    expect(env?.map((e) => [e.name, e.valueFrom?.secretKeyRef?.name ?? e.value])).toEqual([
      ['OTEL_TRACES_EXPORTER', 'none'],
      ['REGISTRY_STORAGE_S3_ACCESSKEY', 'creds'],
      ['REGISTRY_STORAGE_S3_SECRETKEY', 'creds'],
    ]);
  });

  it('mounts a claim by its name, and rolls on every checksum', () => {
    const d = registryDeployment(ctx({ storage: { persistentVolumeClaim: { size: '1Gi' } } }));
    const data = d.spec?.template.spec?.volumes?.find((v) => v.name === 'data');
    expect(data?.persistentVolumeClaim?.claimName).toBeTruthy();
    expect(d.spec?.template.metadata?.annotations).toMatchObject({
      'berth.dev/config-checksum': 'c',
      'berth.dev/tls-checksum': 't',
      'berth.dev/token-key-checksum': 'k',
    });
  });
});

describe('tokenDeployment', () => {
  it.each([
    { name: 'TLS', tls: true, volumes: ['signing-key', 'credentials', 'tls'] },
    { name: 'TLS disabled', tls: false, volumes: ['signing-key', 'credentials'] },
  ])('volumes: $name', (c) => {
    const pod = tokenDeployment(ctx({}, c.tls)).spec?.template.spec;
    expect(pod?.volumes?.map((v) => v.name)).toEqual(c.volumes);
    expect(pod?.containers[0]?.volumeMounts?.map((m) => m.name)).toEqual(c.volumes);
  });

  it.each([
    { name: 'one writer', spec: { replicas: 3 }, replicas: 1 },
    { name: 'shared storage, one replica', spec: { replicas: 1, storage: rwx }, replicas: 1 },
    { name: 'shared storage, several replicas', spec: { replicas: 3, storage: rwx }, replicas: 2 },
  ])('replicas: $name', (c) => expect(tokenDeployment(ctx(c.spec)).spec?.replicas).toBe(c.replicas));

  it.each([
    {
      name: 'ServiceAccount tokens on by default: the default audience, its own ServiceAccount, a projected token',
      auth: {},
      arg: '--service-account-audience=berth.dev/ns/main',
      pod: { serviceAccountName: 'berth-token-service', automountServiceAccountToken: true },
    },
    {
      name: 'an audience set on the Registry',
      auth: { serviceAccountTokens: { audience: 'registry.example.com' } },
      arg: '--service-account-audience=registry.example.com',
      pod: { serviceAccountName: 'berth-token-service', automountServiceAccountToken: true },
    },
    {
      name: 'ServiceAccount tokens off: no API credentials at all',
      auth: { serviceAccountTokens: { enabled: false } },
      arg: undefined,
      pod: { serviceAccountName: undefined, automountServiceAccountToken: false },
    },
  ])('$name', (c) => {
    const pod = tokenDeployment(ctx({ auth: c.auth })).spec?.template.spec;
    expect(pod?.containers[0]?.args?.find((a) => a.startsWith('--service-account-audience'))).toBe(c.arg);
    expect({
      serviceAccountName: pod?.serviceAccountName,
      automountServiceAccountToken: pod?.automountServiceAccountToken,
    }).toEqual(c.pod);
  });
});

describe('tokenServiceIdentity', () => {
  it('binds the ServiceAccount of the namespace to the TokenReview ClusterRole, and mounts no token through it', () => {
    const { serviceAccount, binding } = tokenServiceIdentity(ref, 'berth-token-review');
    expect(serviceAccount.metadata).toMatchObject({ name: 'berth-token-service', namespace: 'ns' });
    expect(serviceAccount.automountServiceAccountToken).toBe(false);
    expect(binding.metadata?.name).toBe('berth-token-review:ns');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'berth-token-review',
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'berth-token-service', namespace: 'ns' },
    ]);
  });
});
