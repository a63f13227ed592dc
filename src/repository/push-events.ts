// Pure: from a Distribution notification envelope and the winning Repository claims of the
// Registry that sent it, the Repository status updates it calls for. Each manifest push moves the
// `lastPushTime` of the Repository owning `target.repository` forward to the event's timestamp;
// pulls, blob pushes, unknown repositories and older (re-delivered, out-of-order) events change
// nothing. Distribution delivers events at least once and in no guaranteed order, so the result
// only ever moves forward.
import type { Repository } from '../api/index.ts';
import { blobMediaTypes } from '../model/media-types.ts';

/** One event of the envelope, as Distribution v3 sends it (only the fields berth reads). */
export interface RegistryEvent {
  id?: string;
  timestamp?: string;
  action?: string;
  target?: {
    mediaType?: string;
    digest?: string;
    repository?: string;
    tag?: string;
  };
}

export interface EventEnvelope {
  events: RegistryEvent[];
}

export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
}

/** Checks the shape of a request body: `{"events": [...]}` with objects inside. */
export function parseEnvelope(body: unknown): EventEnvelope {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new EnvelopeError('the body is not a JSON object');
  const events = (body as { events?: unknown }).events;
  if (!Array.isArray(events)) throw new EnvelopeError('the body has no "events" list');
  if (!events.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e)))
    throw new EnvelopeError('an event is not a JSON object');
  return { events: events as RegistryEvent[] };
}

export interface PushTimeUpdate {
  namespace: string;
  name: string;
  /** RFC 3339 with milliseconds, UTC. */
  lastPushTime: string;
  /** What the Repository had before (absent: never set). */
  previous?: string;
}

const blobTypes = new Set<string>(blobMediaTypes);

/** True for an event that records a manifest (image, index) being pushed. */
export function isManifestPush(event: RegistryEvent): boolean {
  if (event.action !== 'push') return false;
  const mediaType = event.target?.mediaType;
  if (!mediaType || blobTypes.has(mediaType)) return false;
  // OCI image manifests and indexes, Docker schema 2 manifests and manifest lists (and schema 1)
  return /manifest|index/i.test(mediaType);
}

function timeOf(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The updates an envelope calls for. `winners` maps a repository path to the Repository that owns
 * it in this Registry (src/model/claims.ts `resolveClaims(...).winners`). At most one update
 * per Repository, with the newest timestamp, and only when it is newer than its status says.
 */
export function pushTimeUpdates(envelope: EventEnvelope, winners: Map<string, Repository>): PushTimeUpdate[] {
  const newest = new Map<Repository, number>();
  for (const event of envelope.events) {
    if (!isManifestPush(event)) continue;
    const owner = winners.get(event.target?.repository ?? '');
    const at = timeOf(event.timestamp);
    if (!owner || at === undefined) continue;
    if (at > (newest.get(owner) ?? -Infinity)) newest.set(owner, at);
  }
  const updates: PushTimeUpdate[] = [];
  for (const [repo, at] of newest) {
    const previous = repo.status?.lastPushTime;
    const current = timeOf(previous);
    if (current !== undefined && at <= current) continue;
    updates.push({
      namespace: repo.metadata?.namespace ?? '',
      name: repo.metadata?.name ?? '',
      lastPushTime: new Date(at).toISOString(),
      ...(previous ? { previous } : {}),
    });
  }
  return updates.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}
