// A report too large for one ConfigMap, against the real API server (the shared control plane): a
// synthetic plan of 150,000 entries (the planner over 1,500 repositories × 100 tags with distinct
// digests) is written as `<report>`, `<report>-2`, ...; every part is accepted by the API server,
// reads back and reassembles to the same entries; the parts go when the report is deleted (owner
// references, the garbage collector of kube-controller-manager); a rewrite with fewer parts leaves
// the summary naming only its own.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { KubeClient, type KubeObject } from '../../src/runtime/kube/client.ts';
import type { PlanEntry, RepositoryState } from '../../src/retention/run/model.ts';
import { planRetention } from '../../src/retention/run/planner.ts';
import {
  inlineReportLimit,
  readReport,
  reportData,
  writeReportConfigMaps,
  type Summary,
} from '../../src/retention/run/report.ts';
import { createTestNamespace, eventually, testKubeConfig } from '../harness/kube.ts';

const H = 3_600_000;
const now = Date.parse('2026-01-01T00:00:00Z');
let kube: KubeClient;
let ns: string;
let entries: PlanEntry[];

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

const summary: Omit<Summary, 'reportParts'> = {
  mode: 'DryRun',
  evaluated: 0,
  deleted: 0,
  kept: 0,
  protected: 0,
  refused: false,
  startTime: new Date(now).toISOString(),
  completionTime: new Date(now).toISOString(),
  result: 'Succeeded',
  message: 'synthetic',
};
const configMaps = (name = '') => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ''}`;
const names = async () =>
  (await kube.list<ConfigMap>(configMaps())).items
    .map((c) => c.metadata?.name ?? '')
    .filter((n) => n.startsWith('big'))
    .sort();

beforeAll(async () => {
  const state: RepositoryState[] = Array.from({ length: 1500 }, (_, r) => {
    const tags = Array.from({ length: 100 }, (_, t) => ({
      tag: `build-${t}`,
      digest: `sha256:${createHash('sha256').update(`${r}/${t}`).digest('hex')}`,
      pushedAt: now - (t + 1) * H,
    }));
    return {
      name: `team-${r % 30}/service-${r}`,
      tags,
      manifests: tags.map((t) => ({ digest: t.digest, mediaType: 'x', children: [], pushedAt: t.pushedAt })),
    };
  });
  const plan = planRetention(
    state,
    {
      rules: [{ name: 'ci', include: ['build-*'], exclude: [], keep: { mostRecent: 10 } }],
      untagged: { delete: true, olderThanMs: 0 },
      protect: { inUse: false, minAgeMs: 0 },
    },
    { digests: new Map(), tags: new Map() },
    now,
  );
  entries = plan.entries;
  summary.evaluated = plan.counts.evaluated;
  summary.deleted = plan.counts.deleted;
  summary.kept = plan.counts.kept;
  const kc = testKubeConfig();
  kube = new KubeClient(kc);
  ns = await createTestNamespace(kc, 'rt-report');
}, 60_000);

afterAll(async () => {
  if (ns) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
});

describe('a report larger than a ConfigMap', () => {
  let parts: string[];

  test('150,000 entries are written over several ConfigMaps and read back to the same entries', async () => {
    expect(entries).toHaveLength(150_000);
    const json = Buffer.byteLength(JSON.stringify(entries));
    expect(json).toBeGreaterThan(30 * 1024 * 1024);
    const content = reportData('big', summary, entries);
    parts = content.map((p) => p.name);
    expect(parts.length).toBeGreaterThan(1);
    const target = { name: 'big', namespace: ns, policyName: 'nightly' };
    const started = Date.now();
    await writeReportConfigMaps(kube, target, content);
    const writeMs = Date.now() - started;

    expect(await names()).toEqual([...parts].sort());
    const main = await kube.get<ConfigMap>(configMaps('big'));
    const stored = JSON.parse(main.data?.['summary.json'] ?? '{}') as Summary;
    expect(stored).toEqual({ ...summary, reportParts: parts });
    expect(parts).toEqual(['big', ...parts.slice(1).map((_, i) => `big-${i + 2}`)]);
    for (const name of parts) {
      const cm = await kube.get<ConfigMap>(configMaps(name));
      const gz = Buffer.from(cm.binaryData?.['report.json.gz'] ?? '', 'base64');
      expect(gz.length).toBeGreaterThan(0);
      expect(gz.length).toBeLessThanOrEqual(inlineReportLimit);
      expect(cm.metadata?.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'berth',
        'berth.dev/retention-policy': 'nightly',
      });
      if (name !== 'big')
        expect(cm.metadata?.ownerReferences).toEqual([
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'big', uid: main.metadata?.uid },
        ]);
    }
    const started2 = Date.now();
    const back = await readReport(kube, ns, 'big');
    const readMs = Date.now() - started2;
    expect(back.summary.reportParts).toEqual(parts);
    expect(back.entries).toHaveLength(entries.length);
    expect(back.entries).toEqual(entries);
    console.log(
      `report: ${entries.length} entries, ${(json / 1048576).toFixed(1)} MiB JSON, ${parts.length} ConfigMaps; write ${writeMs} ms, read ${readMs} ms`,
    );
  }, 120_000);

  test('rewriting the report with fewer entries: the summary names only the new parts', async () => {
    const fewer = entries.slice(0, 40_000);
    const content = reportData('big', summary, fewer);
    expect(content.length).toBeLessThan(parts.length);
    await writeReportConfigMaps(kube, { name: 'big', namespace: ns, policyName: 'nightly' }, content);
    const back = await readReport(kube, ns, 'big');
    expect(back.summary.reportParts).toEqual(content.map((p) => p.name));
    expect(back.entries).toEqual(fewer);
  }, 60_000);

  test('deleting the report deletes its parts (owner references)', async () => {
    await kube.delete(configMaps('big'));
    await eventually('the report parts to be garbage-collected', names, (n) => n.length === 0, 90_000);
  }, 120_000);
});
