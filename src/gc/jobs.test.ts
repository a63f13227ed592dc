import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import { collectJob, collectScript, probeJob, verifyJob } from './jobs.ts';
import { registryURL } from '../model/hosts.ts';
import { needsSameNode, unsupported } from '../jobs/placement.ts';

const ref = { name: 'main', namespace: 'registry-system' };
const registry = (spec: Partial<Registry['spec']>): Registry =>
  ({
    metadata: { name: 'main', namespace: 'registry-system', uid: 'u1' },
    spec: { storage: { emptyDir: {} }, ...spec },
  }) as Registry;
const pvc = (accessModes?: string[]) =>
  ({
    persistentVolumeClaim: { size: '1Gi', ...(accessModes ? { accessModes } : {}) },
  }) as Registry['spec']['storage'];
const s3 = {
  s3: { bucket: 'b', region: 'r', secretRef: { name: 's3-creds' } },
} as Registry['spec']['storage'];

describe('placement and support', () => {
  it.each([
    ['default claim (ReadWriteOnce)', pvc(), true, undefined],
    ['ReadWriteMany claim', pvc(['ReadWriteMany']), false, undefined],
    ['ReadWriteOncePod claim', pvc(['ReadWriteOncePod']), true, /ReadWriteOncePod/],
    ['S3', s3, false, undefined],
    ['emptyDir', { emptyDir: {} } as Registry['spec']['storage'], false, /emptyDir/],
  ])('%s', (_n, storage, sameNode, problem) => {
    const r = registry({ storage });
    expect(needsSameNode(r)).toBe(sameNode);
    if (problem) expect(unsupported(r)).toMatch(problem);
    else expect(unsupported(r)).toBeUndefined();
  });
});

describe('registryURL', () => {
  it.each([
    [{}, 'https://main.registry-system.svc'],
    [{ expose: { service: { port: 5000 } } }, 'https://main.registry-system.svc:5000'],
    [
      { tls: { mode: 'Disabled' }, expose: { service: { port: 443 } } },
      'http://main.registry-system.svc:443',
    ],
  ] as [Partial<Registry['spec']>, string][])('%j → %s', (spec, url) => {
    expect(registryURL(ref, registry(spec))).toBe(url);
  });
});

describe('collectJob', () => {
  it('S3: the credentials from the Secret, no claim, no disk figures', () => {
    const job = collectJob(registry({ storage: s3, image: 'mirror/registry:3.1.1' }), ref, 'main-gc-1', {});
    const c = job.spec!.template.spec!.containers[0]!;
    expect(c.image).toBe('mirror/registry:3.1.1');
    expect(c.env?.map((e) => e.valueFrom?.secretKeyRef?.key).filter(Boolean)).toEqual([
      'accessKeyID',
      'secretAccessKey',
    ]);
    expect(job.spec!.template.spec!.volumes?.some((v) => v.persistentVolumeClaim)).toBe(false);
    expect(c.command?.[2]).not.toContain('du -sk');
    expect(c.command?.[2]).toContain("garbage-collect --delete-untagged '/etc/distribution/config.yml'");
    // A container that dies before the script writes its message still says why (its logs).
    expect(c.terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });

  it('deleteUntagged false, and the node of the registry pod', () => {
    const job = collectJob(
      registry({ storage: pvc(), garbageCollection: { schedule: '0 3 * * 0', deleteUntagged: false } }),
      ref,
      'main-gc-1',
      { nodeName: 'node-7' },
    );
    const spec = job.spec!.template.spec!;
    expect(spec.containers[0]!.command?.[2]).toContain("garbage-collect '/etc/distribution/config.yml'");
    expect(
      spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]
        ?.matchFields,
    ).toEqual([{ key: 'metadata.name', operator: 'In', values: ['node-7'] }]);
    expect(job.spec?.backoffLimit).toBe(0);
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Registry',
      name: 'main',
      uid: 'u1',
      controller: true,
    });
  });

  it("is placed as the Registry's pods: nodeSelector, priority class, tolerations", () => {
    const placing = {
      nodeSelector: { pool: 'registry' },
      priorityClassName: 'registry-critical',
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
    } as Partial<Registry['spec']>;
    const anywhere = collectJob(registry({ storage: s3, ...placing }), ref, 'main-gc-1', {}).spec!.template
      .spec!;
    expect(anywhere.nodeSelector).toEqual({ pool: 'registry' });
    expect(anywhere.priorityClassName).toBe('registry-critical');
    expect(anywhere.tolerations).toEqual(placing.tolerations);
    expect(anywhere.affinity).toBeUndefined();
    const beside = collectJob(registry({ storage: pvc(), ...placing }), ref, 'main-gc-1', {
      nodeName: 'node-7',
    }).spec!.template.spec!;
    expect(beside.nodeSelector).toBeUndefined(); // the registry pod's node satisfied it
    expect(beside.affinity).toBeDefined();
    expect(beside.priorityClassName).toBe('registry-critical');
    expect(beside.tolerations).toEqual(placing.tolerations);
  });

  it('quotes paths in the script', () => {
    expect(
      collectScript({
        registryBinary: "/a b/reg'istry",
        configPath: '/c',
        deleteUntagged: true,
        terminationLog: '/t',
      }),
    ).toContain(`'/a b/reg'\\''istry' garbage-collect --delete-untagged '/c'`);
  });
});

describe('verifyJob', () => {
  it('without TLS: no CA', () => {
    const job = verifyJob(
      registry({ tls: { mode: 'Disabled' } } as Partial<Registry['spec']>),
      ref,
      'v',
      'berth:1',
    );
    const c = job.spec!.template.spec!.containers[0]!;
    expect(c.args).toEqual([
      'gc-run',
      'verify',
      '--registry-url=http://main.registry-system.svc:443',
      '--docker-config=/etc/berth/admin/config.json',
    ]);
  });
});

describe('probeJob', () => {
  it("berth's image tries a push with the admin credential through the Service, trusting the CA", () => {
    const job = probeJob(registry({ storage: pvc() }), ref, 'main-gcp-1', 'berth:1');
    const spec = job.spec!.template.spec!;
    const c = spec.containers[0]!;
    expect(c.image).toBe('berth:1');
    expect(c.args).toEqual([
      'gc-run',
      'probe',
      '--registry-url=https://main.registry-system.svc',
      '--docker-config=/etc/berth/admin/config.json',
      '--ca-file=/etc/berth/ca/ca.crt',
    ]);
    expect(c.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.volumes?.find((v) => v.name === 'admin')?.secret?.secretName).toBe('main-admin');
    expect(job.metadata?.labels?.['berth.dev/gc-step']).toBe('probe');
    expect(job.spec?.backoffLimit).toBe(0);
  });
});

describe("the verify and probe Jobs run where the Registry's pods may", () => {
  it.each([
    ['verify', verifyJob],
    ['probe', probeJob],
  ])('%s: tolerations, nodeSelector and priority class; no node affinity', (_step, build) => {
    const tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'registry', effect: 'NoSchedule' }];
    const job = build(
      registry({
        storage: pvc(),
        tolerations,
        nodeSelector: { 'node-role/registry': 'true' },
        priorityClassName: 'registry-critical',
      } as Partial<Registry['spec']>),
      ref,
      'j',
      'berth:1',
    );
    const spec = job.spec!.template.spec!;
    expect(spec.tolerations).toEqual(tolerations);
    expect(spec.nodeSelector).toEqual({ 'node-role/registry': 'true' });
    expect(spec.priorityClassName).toBe('registry-critical');
    expect(spec.affinity).toBeUndefined();
  });
});
