// What the controller does after one reconcile, decided from what the reconcile returned or threw
// (classifyError): which result the metrics count, what the work queue does with the key, which log
// line is written and whether a Warning Event goes to the object. Pure: the controller applies it.
import type { ErrorOutcome } from './errors.ts';
import type { ReconcileResult as ResultLabel } from './metrics.ts';

/** What the work queue does with the key. */
export type QueueAction =
  /** forget the key's failures; reconcile again only when something changes */
  | { kind: 'forget' }
  /** forget the key's failures and reconcile again after `afterMs` */
  | { kind: 'requeue'; afterMs: number }
  /** re-add with the key's exponential backoff (its failures are kept) */
  | { kind: 'backoff' };

/** The backoff the queue chose, for the log line of a 'backoff' action. */
export interface Backoff {
  delayMs: number;
  /** The key's retries after this one was added. */
  retries: number;
}

export interface OutcomeLog {
  level: 'debug' | 'info' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export interface ReconcileDecision {
  result: ResultLabel;
  queue: QueueAction;
  /** The log line; `backoff` is given for a 'backoff' action. */
  log(backoff?: Backoff): OutcomeLog;
  /** A Warning Event for the object (terminal errors: the user must act). */
  event?: { reason: string; message: string };
}

/** After a reconcile that returned: requeue when it asked for it (0 or more ms), else forget. */
export function afterSuccess(out: { requeueAfterMs?: number } | void): ReconcileDecision {
  const requeueAfterMs = out?.requeueAfterMs;
  const requeue = requeueAfterMs !== undefined && requeueAfterMs >= 0;
  return {
    result: requeue ? 'requeue' : 'success',
    queue: requeue ? { kind: 'requeue', afterMs: requeueAfterMs } : { kind: 'forget' },
    log: () => ({ level: 'debug', message: 'Reconciled object', fields: { requeueAfterMs } }),
  };
}

const retryInMs = (backoff: Backoff | undefined): number => Math.round(backoff?.delayMs ?? 0);

/**
 * After a reconcile that threw: terminal errors are not retried, unless they ask to be looked at
 * again after a while (and are reported with an Event),
 * waiting errors requeue after their delay, conflicts, fenced writes and anything else back off.
 */
export function afterFailure(outcome: ErrorOutcome): ReconcileDecision {
  switch (outcome.kind) {
    case 'terminal':
      return {
        result: 'terminal',
        queue:
          outcome.recheckAfterMs !== undefined
            ? { kind: 'requeue', afterMs: outcome.recheckAfterMs }
            : { kind: 'forget' },
        log: () =>
          outcome.recheckAfterMs === undefined
            ? {
                level: 'error',
                message: 'Reconcile failed and will not be retried until the object changes',
                fields: { reason: outcome.reason, error: outcome.message },
              }
            : {
                level: 'error',
                message: 'Reconcile failed; it is looked at again later, or when the object changes',
                fields: {
                  reason: outcome.reason,
                  error: outcome.message,
                  recheckAfterMs: outcome.recheckAfterMs,
                },
              },
        event: { reason: outcome.reason, message: outcome.message },
      };
    case 'waiting':
      return {
        result: 'waiting',
        queue: { kind: 'requeue', afterMs: outcome.retryAfterMs },
        log: () => ({
          level: 'info',
          message: 'Reconcile is waiting',
          fields: { reason: outcome.reason, message: outcome.message, retryAfterMs: outcome.retryAfterMs },
        }),
      };
    case 'conflict':
      return backoffDecision('conflict', 'info', 'Reconcile met a conflicting write; retrying', (b) => ({
        error: outcome.message,
        retryInMs: retryInMs(b),
      }));
    case 'fenced':
      // not an error of the object: this replica may have lost the Lease and sent nothing
      return backoffDecision(
        'fenced',
        'info',
        'Reconcile stopped: this replica may no longer hold the leader Lease; nothing was written',
        (b) => ({ error: outcome.message, retryInMs: retryInMs(b) }),
      );
    default:
      return backoffDecision('error', 'error', 'Reconcile failed; retrying with backoff', (b) => ({
        error: outcome.message,
        retries: b?.retries,
        retryInMs: retryInMs(b),
      }));
  }
}

function backoffDecision(
  result: ResultLabel,
  level: OutcomeLog['level'],
  message: string,
  fields: (backoff: Backoff | undefined) => Record<string, unknown>,
): ReconcileDecision {
  return { result, queue: { kind: 'backoff' }, log: (b) => ({ level, message, fields: fields(b) }) };
}
