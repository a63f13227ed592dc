// The cluster primary's /healthz and /readyz: the service is healthy when at least one worker
// serves and every worker that serves answers, with a store in force, within the deadline. A
// worker that does not answer (its event loop is stuck) makes the pod unhealthy, so the kubelet
// replaces it; a worker being replaced after a crash does not (the others serve meanwhile).
import type { StoreHealthBody } from './server.ts';

/** One serving worker's answer, or undefined when it did not answer in time. */
export type WorkerHealthAnswer = { status: number; body: StoreHealthBody } | undefined;

export interface ClusterHealthBody {
  status: string;
  /** Workers serving now / configured. */
  workers: string;
  /** Credentials in force (the largest across workers; they agree once every one has reloaded). */
  credentials?: number;
  /** When the oldest store still in force anywhere was loaded. */
  storeLoadedAt?: string;
  /** Workers that did not answer or have no store. */
  unhealthy?: number;
}

export function clusterHealth(
  answers: readonly WorkerHealthAnswer[],
  configured: number,
  stopping: boolean,
): { status: number; body: ClusterHealthBody } {
  const workers = `${answers.length}/${configured}`;
  if (stopping) return { status: 503, body: { status: 'stopping', workers } };
  if (answers.length === 0) return { status: 503, body: { status: 'no worker serving', workers } };
  const healthy = answers.filter((a) => a?.status === 200);
  const unhealthy = answers.length - healthy.length;
  const credentials = healthy.map((a) => a?.body.credentials ?? 0);
  const loadedAt = healthy
    .map((a) => a?.body.storeLoadedAt)
    .filter((t): t is string => t !== undefined)
    .sort();
  const body: ClusterHealthBody = {
    status: unhealthy === 0 ? 'ok' : 'a worker does not answer or has no credential store',
    workers,
  };
  if (credentials.length > 0) body.credentials = Math.max(...credentials);
  if (loadedAt[0] !== undefined) body.storeLoadedAt = loadedAt[0];
  if (unhealthy > 0) body.unhealthy = unhealthy;
  return { status: unhealthy === 0 ? 200 : 503, body };
}
