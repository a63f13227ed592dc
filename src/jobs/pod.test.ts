import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import { adminCredential, caBundle, podPlacement, registryJob, s3CredentialEnv } from './pod.ts';

const ref = { name: 'main', namespace: 'registry-system' };
const registry = (spec: Partial<Registry['spec']>): Registry =>
  ({
    metadata: { name: 'main', namespace: 'registry-system', uid: 'u1' },
    spec: { storage: { persistentVolumeClaim: { size: '1Gi' } }, ...spec },
  }) as Registry;
const tolerations: NonNullable<Registry['spec']['tolerations']> = [
  { key: 'dedicated', operator: 'Equal', value: 'registry', effect: 'NoSchedule' },
];
const beside = (node: string) => ({
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
    },
  },
});

describe('podPlacement', () => {
  it.each<[string, Partial<Registry['spec']>, string | undefined, object]>([
    ['nothing asked', {}, undefined, {}],
    [
      'the nodeSelector, tolerations and priority class of the Registry',
      { nodeSelector: { pool: 'registry' }, tolerations, priorityClassName: 'registry-critical' },
      undefined,
      { nodeSelector: { pool: 'registry' }, tolerations, priorityClassName: 'registry-critical' },
    ],
    [
      "beside the registry pod: its node's name replaces the nodeSelector (the node satisfied it)",
      { nodeSelector: { pool: 'registry' }, tolerations, priorityClassName: 'registry-critical' },
      'node-7',
      { affinity: beside('node-7'), tolerations, priorityClassName: 'registry-critical' },
    ],
    ['beside the registry pod, nothing else asked', {}, 'node-7', { affinity: beside('node-7') }],
  ])('%s', (_name, spec, node, want) => {
    expect(podPlacement(registry(spec), node)).toEqual(want);
  });
});

describe('s3CredentialEnv', () => {
  it('none without S3', () => {
    expect(s3CredentialEnv(registry({}), { accessKey: 'A', secretKey: 'S' })).toEqual([]);
  });
  it('both keys of the Secret, under the names asked for', () => {
    const r = registry({ storage: { s3: { bucket: 'b', region: 'r', secretRef: { name: 's3-creds' } } } });
    expect(s3CredentialEnv(r, { accessKey: 'A', secretKey: 'S' })).toEqual([
      { name: 'A', valueFrom: { secretKeyRef: { name: 's3-creds', key: 'accessKeyID' } } },
      { name: 'S', valueFrom: { secretKeyRef: { name: 's3-creds', key: 'secretAccessKey' } } },
    ]);
  });
});

describe('client access', () => {
  it('the admin credential as a Docker config, read-only', () => {
    const a = adminCredential(ref);
    expect(a.volumes[0]?.secret).toEqual({
      secretName: 'main-admin',
      items: [{ key: '.dockerconfigjson', path: 'config.json' }],
    });
    expect(a.mounts).toEqual([{ name: 'admin', mountPath: '/etc/berth/admin', readOnly: true }]);
    expect(a.args).toEqual(['--docker-config=/etc/berth/admin/config.json']);
  });
  it('the CA bundle with TLS, nothing without', () => {
    expect(caBundle(registry({}), ref).args).toEqual(['--ca-file=/etc/berth/ca/ca.crt']);
    expect(caBundle(registry({}), ref).volumes).toEqual([{ name: 'ca', configMap: { name: 'main-ca' } }]);
    expect(caBundle(registry({ tls: { mode: 'Disabled' } } as Partial<Registry['spec']>), ref)).toEqual({
      volumes: [],
      mounts: [],
      args: [],
    });
  });
});

describe('registryJob', () => {
  it('owned by its Registry, the labels on the Job and its pods', () => {
    const job = registryJob({
      registry: registry({}),
      name: 'j',
      namespace: 'registry-system',
      labels: { a: 'b' },
      annotations: { c: 'd' },
      spec: { backoffLimit: 0 },
      pod: { containers: [] },
    });
    expect(job.metadata).toEqual({
      name: 'j',
      namespace: 'registry-system',
      labels: { a: 'b' },
      annotations: { c: 'd' },
      ownerReferences: [
        {
          apiVersion: 'berth.dev/v1alpha1',
          kind: 'Registry',
          name: 'main',
          uid: 'u1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(job.spec).toEqual({
      backoffLimit: 0,
      template: { metadata: { labels: { a: 'b' } }, spec: { containers: [] } },
    });
  });
});
