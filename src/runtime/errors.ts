// Typed errors decide what happens after a reconcile:
// - TerminalError: the user must change something; reported (log, Event) and not retried;
// - WaitingError: something outside berth is not ready yet; requeued after `retryAfterMs`;
//   for a controller that reports to its object's status (ControllerDefinition.reportTo), the
//   runtime also writes both as a False condition with their reason (src/runtime/report.ts);
// - FencedError (src/runtime/fence.ts): a write this replica refused to send because it may no
//   longer lead; retried with backoff if it still leads, dropped with the queue if it does not;
// - anything else: retried with per-key exponential backoff.
import { FencedError } from './fence.ts';

export interface OutcomeOptions extends ErrorOptions {
  /** Status fields of the reconciler's own (its StatusOwner's) written with the condition. */
  status?: Record<string, unknown>;
}

export interface TerminalOptions extends OutcomeOptions {
  /**
   * Look again after this long, for a fix that happens where no watch of the controller sees it
   * (a Secret of the user's that berth does not cache); otherwise only a change retries.
   */
  recheckAfterMs?: number;
}

export class TerminalError extends Error {
  override name = 'TerminalError';
  readonly reason: string;
  readonly status: Record<string, unknown> | undefined;
  readonly recheckAfterMs: number | undefined;

  constructor(reason: string, message: string, options?: TerminalOptions) {
    super(message, options);
    this.reason = reason;
    this.status = options?.status;
    this.recheckAfterMs = options?.recheckAfterMs;
  }
}

export class WaitingError extends Error {
  override name = 'WaitingError';
  readonly reason: string;
  readonly retryAfterMs: number;
  readonly status: Record<string, unknown> | undefined;

  constructor(reason: string, message: string, retryAfterMs: number, options?: OutcomeOptions) {
    super(message, options);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
    this.status = options?.status;
  }
}

/**
 * A write refused because the object changed since the reconcile read it, where the API server
 * does not answer 409 (a JSON patch whose test failed answers 422): retried quietly, as a 409.
 */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** A terminal or waiting outcome: what the runtime reports as a condition. */
export interface ReportedOutcome {
  reason: string;
  message: string;
  status?: Record<string, unknown>;
}

export type ErrorOutcome =
  | ({ kind: 'terminal'; recheckAfterMs?: number } & ReportedOutcome)
  | ({ kind: 'waiting'; retryAfterMs: number } & ReportedOutcome)
  | { kind: 'conflict'; message: string }
  | { kind: 'fenced'; message: string }
  | { kind: 'error'; message: string };

/** Classifies anything thrown by a reconcile. A 409 from the API server is a conflict: retried quietly. */
export function classifyError(err: unknown): ErrorOutcome {
  const status = err instanceof TerminalError || err instanceof WaitingError ? err.status : undefined;
  const extra = status ? { status } : {};
  if (err instanceof TerminalError) {
    const recheck = err.recheckAfterMs !== undefined ? { recheckAfterMs: err.recheckAfterMs } : {};
    return { kind: 'terminal', reason: err.reason, message: err.message, ...extra, ...recheck };
  }
  if (err instanceof WaitingError)
    return {
      kind: 'waiting',
      reason: err.reason,
      message: err.message,
      retryAfterMs: err.retryAfterMs,
      ...extra,
    };
  if (isFenced(err)) return { kind: 'fenced', message: errorMessage(err) };
  if (err instanceof ConflictError || isStatus(err, 409))
    return { kind: 'conflict', message: errorMessage(err) };
  return { kind: 'error', message: errorMessage(err) };
}

/** The HTTP status of an API error (client-node's ApiException or the runtime's KubeApiError). */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code =
    (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

export function isStatus(err: unknown, code: number): boolean {
  return statusCodeOf(err) === code;
}

/** A FencedError, or an error caused by one (a controller may wrap what a write threw). */
export function isFenced(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
    if (e instanceof FencedError) return true;
  return false;
}

export const isNotFound = (err: unknown): boolean => isStatus(err, 404);
export const isConflict = (err: unknown): boolean => isStatus(err, 409);

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
