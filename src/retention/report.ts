// The run's report: `summary.json` and `report.json` (or, when too large for a ConfigMap,
// `report.json.gz` in binaryData, gzip then base64) in a ConfigMap that is created or replaced.
import { gzipSync } from 'node:zlib';
import type { KubeClient, KubeObject } from '../runtime/kube/client.ts';
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
}

/** Above this, report.json goes gzipped into binaryData (a ConfigMap holds at most 1 MiB). */
export const inlineReportLimit = 900 * 1024;

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

export function reportData(
  summary: Summary,
  entries: PlanEntry[],
): { data: Record<string, string>; binaryData?: Record<string, string> } {
  const data: Record<string, string> = { 'summary.json': JSON.stringify(summary, null, 2) };
  const report = JSON.stringify(entries);
  if (Buffer.byteLength(report) <= inlineReportLimit) {
    data['report.json'] = report;
    return { data };
  }
  return { data, binaryData: { 'report.json.gz': gzipSync(report).toString('base64') } };
}

export async function writeReportConfigMap(
  client: KubeClient,
  target: { name: string; namespace: string; policyName: string },
  content: { data: Record<string, string>; binaryData?: Record<string, string> },
): Promise<void> {
  const path = `/api/v1/namespaces/${target.namespace}/configmaps`;
  const body: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: target.name,
      namespace: target.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'berth', 'berth.dev/retention-policy': target.policyName },
    },
    data: content.data,
    ...(content.binaryData ? { binaryData: content.binaryData } : {}),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: KubeObject | undefined;
    try {
      existing = await client.get<KubeObject>(`${path}/${target.name}`);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    try {
      if (!existing) {
        await client.create(path, body);
      } else {
        const metadata = {
          ...existing.metadata,
          labels: { ...existing.metadata?.labels, ...body.metadata?.labels },
        };
        await client.replace(`${path}/${target.name}`, { ...body, metadata });
      }
      return;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code !== 409) throw err; // created or changed meanwhile: read again
    }
  }
  throw new Error(`could not write ConfigMap ${target.namespace}/${target.name}: conflicts`);
}
