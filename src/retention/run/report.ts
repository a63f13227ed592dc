// The run's report. The ConfigMap `<report>` (created or replaced) always holds `summary.json`,
// complete, whose `reportParts` names the ConfigMaps that hold the entries, in order:
// - at most 900 KiB of JSON: `data["report.json"]` of `<report>` itself (reportParts = [<report>]);
// - more: the entries split into consecutive parts, each a JSON array gzipped to at most 900 KiB in
//   `binaryData["report.json.gz"]` (a series of gzip members, which gunzip reads as one): the first
//   in `<report>`, the others in `<report>-2`, `<report>-3`, ... Those are owned by `<report>` (ownerReference), so deleting the report (the RetentionPolicy
//   controller does, for old runs) deletes them too; the run needs no list or delete permission.
//   A ConfigMap holds at most 1 MiB, so there is no limit on the number of entries.
// `readReport` reassembles the entries: the concatenation of the parts' arrays.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KubeClient, KubeObject, OwnerReference } from '../../runtime/kube/client.ts';
import { deletionKey, type ExecutionResult } from './execute.ts';
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

/** Most JSON text compressed at once (one gzip member), to bound memory. */
export const maxMemberText = 512 * 1024;

/** The last member of every part: the array's closing bracket. */
const closingMember = gzipSync(']');

/**
 * Gzips entries as they come into consecutive JSON arrays of at most `limit` bytes each, holding
 * at most one member's JSON text (`maxMemberText`, or half the limit) at a time, never the whole
 * report. A part is a series of gzip members (RFC 1952 allows several in one file; gunzip and
 * zlib read them as one stream): `[` and the first entries, then `,` and the next ones, ..., then
 * `]`. A member that does not fit in the part closes it and starts the next one; a member too large
 * for an empty part is halved until it fits.
 */
export class GzipParts {
  readonly parts: Buffer[] = [];
  private readonly limit: number;
  private readonly memberText: number;
  private members: Buffer[] = [];
  private size = 0;
  private lines: string[] = [];
  private raw = 0;

  constructor(limit = inlineReportLimit) {
    this.limit = limit;
    this.memberText = Math.max(1024, Math.min(maxMemberText, Math.floor(limit / 2)));
  }

  /** Adds one entry's JSON text. */
  addLine(line: string): void {
    const size = Buffer.byteLength(line) + 1;
    if (this.lines.length > 0 && this.raw + size > this.memberText) this.flushMember();
    this.lines.push(line);
    this.raw += size;
  }

  add(entry: PlanEntry): void {
    this.addLine(JSON.stringify(entry));
  }

  private flushMember(): void {
    if (this.lines.length === 0) return;
    const lines = this.lines;
    this.lines = [];
    this.raw = 0;
    this.addMember(lines);
  }

  private addMember(lines: string[]): void {
    const gz = gzipSync(`${this.size === 0 ? '[' : ','}${lines.join(',')}`);
    if (this.size + gz.length + closingMember.length <= this.limit) {
      this.members.push(gz);
      this.size += gz.length;
    } else if (this.size > 0) {
      this.closePart();
      this.addMember(lines);
    } else if (lines.length === 1) {
      throw new ReportError(`one report entry is larger than ${this.limit} bytes gzipped`);
    } else {
      const mid = Math.floor(lines.length / 2);
      this.addMember(lines.slice(0, mid));
      this.addMember(lines.slice(mid));
    }
  }

  private closePart(): void {
    this.members.push(closingMember);
    this.parts.push(Buffer.concat(this.members));
    this.members = [];
    this.size = 0;
  }

  /** The parts, once every entry was added. */
  finish(): Buffer[] {
    this.flushMember();
    if (this.size > 0) this.closePart();
    return this.parts;
  }
}

/** The entries as consecutive gzipped JSON arrays of at most `limit` bytes each (see GzipParts). */
export function gzipParts(entries: Iterable<PlanEntry>, limit = inlineReportLimit): Buffer[] {
  const out = new GzipParts(limit);
  for (const e of entries) out.add(e);
  return out.finish();
}

/**
 * The entries encoded for the report, serialised one at a time: the JSON text itself when it is at
 * most `limit` bytes, else gzipped parts. Holds at most `limit` bytes of text before it knows which,
 * then one chunk at a time.
 */
export function encodeEntries(
  entries: Iterable<PlanEntry>,
  limit = inlineReportLimit,
): { inline: string } | { gzipped: Buffer[] } {
  let small: string[] | undefined = [];
  let bytes = 1; // the opening bracket; each line brings its comma or the closing bracket
  let gz: GzipParts | undefined;
  for (const e of entries) {
    const line = JSON.stringify(e);
    if (small) {
      small.push(line);
      bytes += Buffer.byteLength(line) + 1;
      if (bytes <= limit) continue;
      gz = new GzipParts(limit);
      for (const l of small) gz.addLine(l);
      small = undefined;
    } else gz?.addLine(line);
  }
  if (small) return { inline: `[${small.join(',')}]` };
  return { gzipped: gz?.finish() ?? [] };
}

/** The report's ConfigMaps' contents: the first holds summary.json, with `reportParts` filled in. */
export function reportData(
  report: string,
  summary: Omit<Summary, 'reportParts'>,
  entries: Iterable<PlanEntry>,
  limit = inlineReportLimit,
): ReportPart[] {
  const summaryText = (parts: number) =>
    JSON.stringify(
      { ...summary, reportParts: Array.from({ length: parts }, (_, i) => partName(report, i)) },
      null,
      2,
    );
  const encoded = encodeEntries(entries, limit);
  if ('inline' in encoded)
    return [{ name: report, data: { 'summary.json': summaryText(1), 'report.json': encoded.inline } }];
  const gz = encoded.gzipped;
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
