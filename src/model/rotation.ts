// Pure: when a namespace's pull credential is due for rotation, and what becomes of the old one.
// Rotations are spread over the last tenth of the interval by a stable hash of the namespace, so
// namespaces whose credentials were minted together do not all rotate in the same second.
import { createHash } from 'node:crypto';

/** A stable fraction in [0, 1) for a name. */
export function spreadFraction(name: string): number {
  return createHash('sha256').update(name).digest().readUInt32BE(0) / 2 ** 32;
}

export function rotationDueAt(issuedAt: Date, intervalMs: number, namespace: string): Date {
  return new Date(issuedAt.getTime() + intervalMs - Math.floor(intervalMs * 0.1 * spreadFraction(namespace)));
}

export type RotationDecision =
  | { action: 'keep'; dueAt: Date }
  | { action: 'rotate'; dueAt: Date; oldNotAfter: Date }
  | { action: 'mint'; reason: string };

/**
 * What to do with a namespace's credential at `now`. `issuedAt` is undefined when it has none
 * (or it cannot be read): then a new one is minted and nothing old needs a grace period.
 */
export function decideRotation(
  now: Date,
  issuedAt: Date | undefined,
  namespace: string,
  policy: { intervalMs: number; gracePeriodMs: number },
): RotationDecision {
  if (!issuedAt || Number.isNaN(issuedAt.getTime())) return { action: 'mint', reason: 'no credential yet' };
  const dueAt = rotationDueAt(issuedAt, policy.intervalMs, namespace);
  if (now < dueAt) return { action: 'keep', dueAt };
  return { action: 'rotate', dueAt, oldNotAfter: new Date(now.getTime() + policy.gracePeriodMs) };
}

/**
 * A rotation that keeps failing is reported (Degraded) once it is overdue by a tenth of the grace
 * period, well before anything would stop working.
 */
export function rotationOverdue(now: Date, dueAt: Date, gracePeriodMs: number): boolean {
  return now.getTime() - dueAt.getTime() > gracePeriodMs / 10;
}
