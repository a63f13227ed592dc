// The summary a retention run writes (summary.json) and logs: its result and its message, decided
// from the plan and what the deletions did. Pure: the run (command.ts) passes the times in.
import type { ExecutionResult } from './execute.ts';
import type { Plan } from './model.ts';
import type { Summary } from './report.ts';

export type RunSummary = Omit<Summary, 'reportParts'>;
export type RunMode = Summary['mode'];

export interface RunFacts {
  mode: RunMode;
  plan: Plan;
  /** The report's counts after the deletions (applyOutcomes). */
  applied: { deleted: number; kept: number };
  /** What the deletions did; undefined when none ran (DryRun, refused, nothing to delete). */
  execution: ExecutionResult | undefined;
  /** Repositories planned. */
  repositories: number;
  startTime: string;
  completionTime: string;
}

/**
 * A run's summary: Failed when a deletion failed, else Refused when the circuit breaker refused,
 * else Succeeded; the message says what was (or would be) deleted, skipped and failed.
 */
export function runSummary(f: RunFacts): RunSummary {
  const { plan } = f;
  const outcomes = [...(f.execution?.outcomes.values() ?? [])];
  const failures = outcomes.filter((o) => o.status === 'failed');
  const skipped = outcomes.filter((o) => o.status === 'skipped');
  const result = failures.length > 0 ? 'Failed' : plan.refused ? 'Refused' : 'Succeeded';
  const verb = f.mode === 'Enforce' ? 'deleted' : 'would delete';
  const message = plan.refused
    ? (plan.refusedReason ?? 'refused')
    : `${f.mode}: ${verb} ${f.applied.deleted} of ${plan.counts.evaluated} entries in ${f.repositories} repositories` +
      (skipped.length
        ? `; ${skipped.length} deletions skipped (a tag moved, or points to it since the plan)`
        : '') +
      (failures.length ? `; ${failures.length} deletions failed, first: ${failures[0]?.reason ?? ''}` : '');
  return {
    mode: f.mode,
    evaluated: plan.counts.evaluated,
    deleted: f.applied.deleted,
    kept: f.applied.kept,
    protected: plan.counts.protected,
    refused: plan.refused,
    ...(plan.refusedReason ? { refusedReason: plan.refusedReason } : {}),
    startTime: f.startTime,
    completionTime: f.completionTime,
    result,
    message,
  };
}

/** The summary of a run that failed before it could plan or delete: nothing counted. */
export function failedSummary(
  mode: RunMode,
  startTime: string,
  completionTime: string,
  message: string,
): RunSummary {
  return {
    mode,
    evaluated: 0,
    deleted: 0,
    kept: 0,
    protected: 0,
    refused: false,
    startTime,
    completionTime,
    result: 'Failed',
    message,
  };
}
