// Write fencing: a replica that may have lost the leader Lease must stop writing before another
// replica can take it over. Another replica takes the Lease only once it has seen the record
// unchanged for leaseDuration, measured from when it saw the last renewal, which cannot be
// earlier than when the renewal attempt started. So a replica refuses every write once
// renewDeadline has passed since the start of its last successful renewal: its writes end at
// least leaseDuration − renewDeadline before anyone else's term can begin. The client checks
// this before each write (src/runtime/kube/client.ts), so no controller can forget it.

export interface FenceState {
  /** The elector thinks it leads (acquired and not yet given up). */
  leading: boolean;
  /** Clock time at which the last successful acquire or renew attempt started. */
  renewedAt: number | undefined;
}

/** Why a write must not be sent now, or undefined when it may. Pure: the caller passes the time. */
export function writeRefusal(state: FenceState, now: number, renewDeadlineMs: number): string | undefined {
  if (!state.leading || state.renewedAt === undefined) return 'this replica does not hold the leader Lease';
  const age = now - state.renewedAt;
  if (age < 0) return 'the clock moved back since the leader Lease was last renewed';
  if (age >= renewDeadlineMs)
    return `the leader Lease was last renewed ${age} ms ago, not within the renew deadline of ${renewDeadlineMs} ms`;
  return undefined;
}

/** A write the client refused to send because this replica may no longer lead; nothing reached the API server. */
export class FencedError extends Error {
  override name = 'FencedError';
}

/** Returns why writes are refused right now, or undefined when they may be sent. */
export type WriteGate = () => string | undefined;

const writeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const isWrite = (method: string): boolean => writeMethods.has(method.toUpperCase());
