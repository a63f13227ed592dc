// A Job's outcome as both controllers read it: finished when its Complete or Failed condition is
// True (the Job controller, or whoever acts as it, sets them with the status subresource).
import type * as k8s from '@kubernetes/client-node';

export function jobState(job: k8s.V1Job | undefined): JobState {
  if (!job) return { state: 'Absent' };
  const conditions = job.status?.conditions ?? [];
  const on = (type: string) => conditions.find((c) => c.type === type && c.status === 'True');
  if (on('Complete')) return { state: 'Succeeded' };
  const failed = on('Failed');
  if (failed) {
    return {
      state: 'Failed',
      message: [failed.reason, failed.message].filter(Boolean).join(': ') || 'the Job failed',
    };
  }
  return { state: 'Running' };
}

export const isFinished = (job: k8s.V1Job | undefined): boolean => {
  const s = jobState(job).state;
  return s === 'Succeeded' || s === 'Failed';
};

/** The termination message of the Job's (last finished) pod, where the step writes its output. */
export function terminationMessage(pods: k8s.V1Pod[]): string | undefined {
  const finished = pods
    .flatMap((p) => p.status?.containerStatuses ?? [])
    .map((c) => c.state?.terminated)
    .filter((t): t is k8s.V1ContainerStateTerminated => !!t?.message)
    .sort((a, b) => String(a.finishedAt ?? '').localeCompare(String(b.finishedAt ?? '')));
  return finished[finished.length - 1]?.message;
}

export type JobState =
  | { state: 'Absent' }
  | { state: 'Running' }
  | { state: 'Succeeded'; output?: string }
  | { state: 'Failed'; message: string };
