// Typed errors decide what happens after a reconcile:
// - TerminalError: the user must change something; reported (log, Event) and not retried;
// - WaitingError: something outside berth is not ready yet; requeued after `retryAfterMs`;
// - FencedError (src/runtime/fence.ts): a write this replica refused to send because it may no
//   longer lead; retried with backoff if it still leads, dropped with the queue if it does not;
// - anything else: retried with per-key exponential backoff.
import { FencedError } from './fence.ts';

export class TerminalError extends Error {
  override name = 'TerminalError';
  readonly reason: string;

  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

export class WaitingError extends Error {
  override name = 'WaitingError';
  readonly reason: string;
  readonly retryAfterMs: number;

  constructor(reason: string, message: string, retryAfterMs: number, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

export type ErrorOutcome =
  | { kind: 'terminal'; reason: string; message: string }
  | { kind: 'waiting'; reason: string; message: string; retryAfterMs: number }
  | { kind: 'conflict'; message: string }
  | { kind: 'fenced'; message: string }
  | { kind: 'error'; message: string };

/** Classifies anything thrown by a reconcile. A 409 from the API server is a conflict: retried quietly. */
export function classifyError(err: unknown): ErrorOutcome {
  if (err instanceof TerminalError) return { kind: 'terminal', reason: err.reason, message: err.message };
  if (err instanceof WaitingError)
    return { kind: 'waiting', reason: err.reason, message: err.message, retryAfterMs: err.retryAfterMs };
  if (isFenced(err)) return { kind: 'fenced', message: errorMessage(err) };
  if (isStatus(err, 409)) return { kind: 'conflict', message: errorMessage(err) };
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
