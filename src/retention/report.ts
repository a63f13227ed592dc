// The run's report. The ConfigMap `<report>` (created or replaced) always holds `summary.json`,
// complete, whose `reportParts` names the ConfigMaps that hold the entries, in order:
// - at most 900 KiB of JSON: `data["report.json"]` of `<report>` itself (reportParts = [<report>]);
// - more: the entries split into consecutive parts, each a JSON array gzipped to at most 900 KiB in
//   `binaryData["report.json.gz"]`: the first in `<report>`, the others in `<report>-2`, `<report>-3`,
//   ... Those are owned by `<report>` (ownerReference), so deleting the report (the RetentionPolicy
//   controller does, for old runs) deletes them too; the run needs no list or delete permission.
//   A ConfigMap holds at most 1 MiB, so there is no limit on the number of entries.
// `readReport` reassembles the entries: the concatenation of the parts' arrays.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KubeClient, KubeObject, OwnerReference } from '../runtime/kube/client.ts';
import type { ExecutionResult } from './execute.ts';
import { deletionKey } from './execute.ts';
import type { Plan, PlanEntry } from './model.ts';

export type RunResult = 'Succeeded' | 'Refused' | 'Failed';

export interface Summary {
  mode: 'DryRun' | 'Enforce';
  evaluated: number;
  deleted: number;
  kept: number;
  protected: number;
  refused: boolean;
  refusedReason?: string;
  startTime: string;
  completionTime: string;
  result: RunResult;
  message: string;
  /** The ConfigMaps holding the report's entries, in order (the first is the report itself). */
  reportParts: string[];
}

/**
 * Above this, report.json goes gzipped into binaryData, split into parts of at most this many
 * gzipped bytes each (a ConfigMap holds at most 1 MiB, summary.json included).
 */
export const inlineReportLimit = 900 * 1024;

export class ReportError extends Error {
  override name = 'ReportError';
}

/**
 * The report entries after an enforcing run: a planned deletion that was skipped or failed becomes
 * `keep`, with the reason. Counts follow. A dry run's entries are the plan's, unchanged.
 */
export function applyOutcomes(
  plan: Plan,
  execution: ExecutionResult | undefined,
): { entries: PlanEntry[]; deleted: number; kept: number } {
  if (!execution) return { entries: plan.entries, deleted: plan.counts.deleted, kept: plan.counts.kept };
  let moved = 0;
  const entries = plan.entries.map((e) => {
    if (e.decision !== 'delete') return e;
    const outcome = execution.outcomes.get(deletionKey(e.repository, e.digest));
    if (outcome?.status === 'deleted') return e;
    moved++;
    const why = outcome ? `${outcome.status}: ${outcome.reason}` : 'not executed';
    return { ...e, decision: 'keep' as const, reason: `${e.reason}; planned deletion ${why}` };
  });
  return { entries, deleted: plan.counts.deleted - moved, kept: plan.counts.kept + moved };
}

/** What one ConfigMap of the report holds. */
export interface ReportPart {
  name: string;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** The name of part `i` (0-based): `<report>`, `<report>-2`, `<report>-3`, ... */
export const partName = (report: string, i: number) => (i === 0 ? report : `${report}-${i + 1}`);

const jsonArray = (lines: string[], from: number, to: number) => `[${lines.slice(from, to).join(',')}]`;

/**
 * The entries as consecutive gzipped JSON arrays of at most `limit` bytes each. Chunks are cut by
 * JSON size, aiming at `limit` after compression from the ratio seen so far; a chunk that compresses
 * worse than expected is halved until it fits.
 */
export function gzipParts(entries: readonly PlanEntry[], limit = inlineReportLimit): Buffer[] {
  const lines = entries.map((e) => JSON.stringify(e));
  const sizes = lines.map((l) => Buffer.byteLength(l) + 1);
  const out: Buffer[] = [];
  let ratio = 4; // JSON bytes per gzipped byte, learnt from each chunk
  const fit = (from: number, to: number): void => {
    const gz = gzipSync(jsonArray(lines, from, to));
    if (gz.length <= limit) {
      out.push(gz);
      let raw = 0;
      for (let i = from; i < to; i++) raw += sizes[i] ?? 0;
      ratio = raw / gz.length;
      return;
    }
    if (to - from === 1) throw new ReportError(`one report entry is larger than ${limit} bytes gzipped`);
    const mid = from + Math.floor((to - from) / 2);
    fit(from, mid);
    fit(mid, to);
  };
  let start = 0;
  while (start < lines.length) {
    const target = Math.max(64 * 1024, Math.floor(limit * 0.9 * ratio));
    let end = start;
    let raw = 0;
    while (end < lines.length && (end === start || raw + (sizes[end] ?? 0) <= target))
      raw += sizes[end++] ?? 0;
    fit(start, end);
    start = end;
  }
  return out;
}

/** The report's ConfigMaps' contents: the first holds summary.json, with `reportParts` filled in. */
export function reportData(
  report: string,
  summary: Omit<Summary, 'reportParts'>,
  entries: readonly PlanEntry[],
  limit = inlineReportLimit,
): ReportPart[] {
  const text = JSON.stringify(entries);
  const summaryText = (parts: number) =>
    JSON.stringify(
      { ...summary, reportParts: Array.from({ length: parts }, (_, i) => partName(report, i)) },
      null,
      2,
    );
  if (Buffer.byteLength(text) <= limit)
    return [{ name: report, data: { 'summary.json': summaryText(1), 'report.json': text } }];
  const gz = gzipParts(entries, limit);
  return gz.map((g, i) => ({
    name: partName(report, i),
    ...(i === 0 ? { data: { 'summary.json': summaryText(gz.length) } } : {}),
    binaryData: { 'report.json.gz': g.toString('base64') },
  }));
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

async function createOrReplace(client: KubeClient, namespace: string, body: ConfigMap): Promise<ConfigMap> {
  const path = `/api/v1/namespaces/${namespace}/configmaps`;
  const name = body.metadata?.name ?? '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await client.find<ConfigMap>(`${path}/${name}`);
    try {
      if (!existing) return await client.create(path, body);
      const metadata = {
        ...existing.metadata,
        labels: { ...existing.metadata?.labels, ...body.metadata?.labels },
        ...(body.metadata?.ownerReferences ? { ownerReferences: body.metadata.ownerReferences } : {}),
      };
      return await client.replace(`${path}/${name}`, { ...body, metadata });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err; // created or changed meanwhile: read again
    }
  }
  throw new ReportError(`could not write ConfigMap ${namespace}/${name}: conflicts`);
}

/**
 * Writes the report: `<report>` first (created or replaced; its summary names every part), then the
 * other parts, owned by it. A part left over from an earlier write of the same report with more
 * parts is not named by the summary, and goes with the report.
 */
export async function writeReportConfigMaps(
  client: KubeClient,
  target: { name: string; namespace: string; policyName: string },
  parts: ReportPart[],
): Promise<void> {
  const labels = { 'app.kubernetes.io/managed-by': 'berth', 'berth.dev/retention-policy': target.policyName };
  const body = (part: ReportPart, ownerReferences?: OwnerReference[]): ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: part.name,
      namespace: target.namespace,
      labels: part.name === target.name ? labels : { ...labels, 'berth.dev/report': target.name },
      ...(ownerReferences ? { ownerReferences } : {}),
    },
    ...(part.data ? { data: part.data } : {}),
    ...(part.binaryData ? { binaryData: part.binaryData } : {}),
  });
  const [first, ...rest] = parts;
  if (!first || first.name !== target.name) throw new ReportError('the first report part must be the report');
  const main = await createOrReplace(client, target.namespace, body(first));
  const owner: OwnerReference = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    name: target.name,
    uid: main.metadata?.uid ?? '',
  };
  for (const part of rest) await createOrReplace(client, target.namespace, body(part, [owner]));
}

/** Reads a report back: its summary and every entry, reassembled from its parts in order. */
export async function readReport(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<{ summary: Summary; entries: PlanEntry[] }> {
  const path = `/api/v1/namespaces/${namespace}/configmaps`;
  const main = await client.get<ConfigMap>(`${path}/${name}`);
  const summary = JSON.parse(main.data?.['summary.json'] ?? 'null') as Summary | null;
  if (!summary) throw new ReportError(`ConfigMap ${namespace}/${name} has no summary.json`);
  const entries: PlanEntry[] = [];
  for (const partName of summary.reportParts ?? [name]) {
    const part = partName === name ? main : await client.get<ConfigMap>(`${path}/${partName}`);
    const gz = part.binaryData?.['report.json.gz'];
    const text =
      gz !== undefined ? gunzipSync(Buffer.from(gz, 'base64')).toString('utf8') : part.data?.['report.json'];
    if (text === undefined)
      throw new ReportError(`report part ${namespace}/${partName} holds no report.json`);
    for (const e of JSON.parse(text) as PlanEntry[]) entries.push(e);
  }
  return { summary, entries };
}
