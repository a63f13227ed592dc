import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import { retentionJob, retentionUnsupported } from './controller-job.ts';

const registry = (storage: Registry['spec']['storage']): Registry =>
  ({ metadata: { name: 'main', namespace: 'registry-system', uid: 'u' }, spec: { storage } }) as Registry;
const job = (storage: Registry['spec']['storage']) =>
  retentionJob({
    policy: { name: 'ci', namespace: 'team-a' },
    registry: registry(storage),
    ref: { name: 'main', namespace: 'registry-system' },
    job: 'retention-ci-1',
    report: 'retention-ci-1',
    mode: 'DryRun',
    image: 'berth:test',
    nodeName: 'node-1',
  });
const container = (storage: Registry['spec']['storage']) => job(storage).spec?.template.spec?.containers[0];

describe('retentionJob storage', () => {
  it('mounts a claim read-only and reads push times from it', () => {
    const c = container({ persistentVolumeClaim: { size: '1Gi' } });
    expect(c?.args).toContain('--storage-root=/var/lib/registry');
    expect(c?.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/registry', readOnly: true });
    expect(c?.env).toEqual([{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=2' }]);
  });

  it('reads push times from S3 with the Registry’s credentials, taken from its Secret', () => {
    const c = container({
      s3: {
        bucket: 'images',
        region: 'eu-west-1',
        regionEndpoint: 'https://s3.example.com',
        forcePathStyle: true,
        rootDirectory: '/berth',
        secretRef: { name: 's3-creds' },
      },
    });
    expect(c?.args).toEqual(
      expect.arrayContaining([
        '--s3-bucket=images',
        '--s3-region=eu-west-1',
        '--s3-region-endpoint=https://s3.example.com',
        '--s3-force-path-style=true',
        '--s3-root-directory=/berth',
      ]),
    );
    expect(c?.args?.some((a) => a.startsWith('--storage-root'))).toBe(false);
    expect(c?.env).toEqual([
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=2' },
      { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 's3-creds', key: 'accessKeyID' } } },
      {
        name: 'AWS_SECRET_ACCESS_KEY',
        valueFrom: { secretKeyRef: { name: 's3-creds', key: 'secretAccessKey' } },
      },
    ]);
  });
});

describe('retentionJob placement: as the Registry places its own pods', () => {
  const placed = (storage: Registry['spec']['storage'], nodeName?: string) =>
    retentionJob({
      policy: { name: 'ci', namespace: 'team-a' },
      registry: {
        ...registry(storage),
        spec: {
          storage,
          nodeSelector: { pool: 'registry' },
          priorityClassName: 'registry-critical',
          tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
        },
      } as Registry,
      ref: { name: 'main', namespace: 'registry-system' },
      job: 'retention-ci-1',
      report: 'retention-ci-1',
      mode: 'DryRun',
      image: 'berth:test',
      ...(nodeName ? { nodeName } : {}),
    }).spec?.template.spec;
  const s3 = { s3: { bucket: 'b', region: 'r', secretRef: { name: 's' } } };

  it.each<[string, Registry['spec']['storage'], string | undefined]>([
    ['S3: any node of the nodeSelector', s3, 'node-1'],
    [
      'a shared claim: any node of the nodeSelector',
      { persistentVolumeClaim: { size: '1Gi', accessModes: ['ReadWriteMany'] } },
      'node-1',
    ],
    [
      'a ReadWriteOnce claim whose registry pod runs nowhere yet',
      { persistentVolumeClaim: { size: '1Gi' } },
      undefined,
    ],
  ])('%s, with its priority class and tolerations', (_name, storage, node) => {
    const pod = placed(storage, node);
    expect(pod?.nodeSelector).toEqual({ pool: 'registry' });
    expect(pod?.priorityClassName).toBe('registry-critical');
    expect(pod?.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(pod?.affinity).toBeUndefined();
  });

  it("a ReadWriteOnce claim: on the registry pod's node, with its priority class and tolerations", () => {
    const pod = placed({ persistentVolumeClaim: { size: '1Gi' } }, 'node-1');
    expect(
      pod?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    ).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-1'] }] }]);
    expect(pod?.nodeSelector).toBeUndefined(); // the registry pod's node satisfied it
    expect(pod?.priorityClassName).toBe('registry-critical');
    expect(pod?.tolerations).toHaveLength(1);
  });

  it('owned by its Registry', () => {
    const job = retentionJob({
      policy: { name: 'ci', namespace: 'team-a' },
      registry: registry(s3),
      ref: { name: 'main', namespace: 'registry-system' },
      job: 'retention-ci-1',
      report: 'r',
      mode: 'DryRun',
      image: 'berth:test',
    });
    expect(job.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        name: 'main',
        uid: 'u',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(job.metadata?.annotations).toEqual({ 'berth.dev/report-configmap': 'r' });
    expect(job.spec?.backoffLimit).toBe(0);
    expect(job.spec?.activeDeadlineSeconds).toBe(6 * 3600);
  });
});

describe('retentionUnsupported', () => {
  it.each<[string, Registry['spec']['storage'], RegExp | undefined]>([
    ['a claim', { persistentVolumeClaim: { size: '1Gi' } }, undefined],
    ['a shared claim', { persistentVolumeClaim: { size: '1Gi', accessModes: ['ReadWriteMany'] } }, undefined],
    ['S3', { s3: { bucket: 'b', region: 'r', secretRef: { name: 's' } } }, undefined],
    ['an emptyDir', { emptyDir: {} }, /^spec\.storage\.emptyDir: .*visible only inside the registry pod/],
    [
      'a ReadWriteOncePod claim',
      { persistentVolumeClaim: { size: '1Gi', accessModes: ['ReadWriteOncePod'] } },
      /ReadWriteOncePod/,
    ],
    ['no storage at all', {}, /needs a PersistentVolumeClaim or S3/],
  ])('%s', (_name, storage, reason) => {
    const why = retentionUnsupported(registry(storage));
    if (reason) expect(why).toMatch(reason);
    else expect(why).toBeUndefined();
  });

  it('every Job the controller may start reads the storage (so no run exits with a usage error)', () => {
    for (const storage of [
      { persistentVolumeClaim: { size: '1Gi' } },
      { s3: { bucket: 'b', region: 'r', secretRef: { name: 's' } } },
    ] as Registry['spec']['storage'][]) {
      expect(retentionUnsupported(registry(storage))).toBeUndefined();
      expect(container(storage)?.args?.some((a) => /^--(storage-root|s3-bucket)=/.test(a))).toBe(true);
      expect(container(storage)?.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    }
  });
});
