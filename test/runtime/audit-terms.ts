// Reads an API server audit log (JSON lines, metadata level) and checks leadership from it: the
// terms of each replica come from the leader Lease's writes (a replica's term begins with its first
// successful write of the Lease after another replica's, and ends when the next replica's begins),
// and every other successful write of a replica must lie inside one of its own terms (received
// after the term began, completed before the next term began). Pure: the tests and the table
// below feed it events.
import { readFileSync } from 'node:fs';

export interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

export interface Term {
  user: string;
  start: number;
  /** Start of the next replica's term; Infinity for the last one. */
  end: number;
}

export interface Write {
  user: string;
  verb: string;
  object: string;
  received: number;
  completed: number;
  code: number;
}

export interface TermReport {
  terms: Term[];
  writes: Write[];
  /** Successful writes of a replica outside its own terms. */
  violations: Write[];
  /** Objects that more than one replica wrote (each in its own terms when violations is empty). */
  sharedObjects: string[];
  writesByUser: Record<string, number>;
}

const mutating = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
/** Audit timestamps carry microseconds; milliseconds with a fraction keep their order. */
const time = (s: string): number => Date.parse(s) + Number(/\.\d{3}(\d*)Z$/.exec(s)?.[1] || 0) / 1000;

export function readAuditLog(file: string): AuditEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

export function analyseTerms(
  events: AuditEvent[],
  lease: { namespace: string; name: string },
  users: string[],
): TermReport {
  const done = events.filter(
    (e) =>
      e.stage === 'ResponseComplete' &&
      users.includes(e.user.username) &&
      mutating.has(e.verb) &&
      (e.responseStatus?.code ?? 0) < 400,
  );
  const isLease = (e: AuditEvent) =>
    e.objectRef?.resource === 'leases' &&
    e.objectRef.namespace === lease.namespace &&
    e.objectRef.name === lease.name;
  const leaseWrites = done.filter(isLease).sort((a, b) => time(a.stageTimestamp) - time(b.stageTimestamp));
  const terms: Term[] = [];
  for (const e of leaseWrites) {
    const last = terms.at(-1);
    if (last?.user === e.user.username) continue;
    const start = time(e.requestReceivedTimestamp);
    if (last) last.end = start;
    terms.push({ user: e.user.username, start, end: Infinity });
  }
  const writes: Write[] = done
    .filter((e) => !isLease(e))
    .map((e) => {
      const r = e.objectRef ?? {};
      return {
        user: e.user.username,
        verb: e.verb,
        object: [r.apiGroup || 'core', r.resource, r.namespace ?? '', r.name ?? '', r.subresource ?? '']
          .join('/')
          .replace(/\/$/, ''),
        received: time(e.requestReceivedTimestamp),
        completed: time(e.stageTimestamp),
        code: e.responseStatus?.code ?? 0,
      };
    });
  const violations = writes.filter(
    (w) => !terms.some((t) => t.user === w.user && t.start <= w.received && w.completed <= t.end),
  );
  const writers = new Map<string, Set<string>>();
  for (const w of writes) writers.set(w.object, (writers.get(w.object) ?? new Set()).add(w.user));
  const writesByUser: Record<string, number> = Object.fromEntries(users.map((u) => [u, 0]));
  for (const w of writes) writesByUser[w.user] = (writesByUser[w.user] ?? 0) + 1;
  return {
    terms,
    writes,
    violations,
    sharedObjects: [...writers].filter(([, s]) => s.size > 1).map(([o]) => o),
    writesByUser,
  };
}
