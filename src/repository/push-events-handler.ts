// The operator's endpoint for registry notifications: POST /registry-events/<ns>/<name> with
// `Authorization: Bearer <events-token>`. The token is checked in constant time against the one
// in the Registry's configuration Secret (informer cache); the envelope becomes Repository status
// updates (push-events.ts), written through the status subresource only when the time moves
// forward. Only the leader writes: another replica answers 503 and the registry retries the same
// events with backoff (Distribution keeps them queued in memory), so behind a Service in front of
// every replica the events reach the leader after a retry or two.
import { createHash, timingSafeEqual } from 'node:crypto';
import express from 'express';
import { Counter } from 'prom-client';
import type * as k8sTypes from '@kubernetes/client-node';
import type { Repository } from '../api/index.ts';
import { names } from '../model/names.ts';
import { resources } from '../model/resources.ts';
import type { Deps } from '../runtime/deps.ts';
import { errorMessage, statusCodeOf } from '../runtime/errors.ts';
import type { Cache } from '../runtime/informer.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { secretText } from '../util/secrets.ts';
import { registryKeyOf, resolveClaims } from '../model/claims.ts';
import { parseEnvelope, pushTimeUpdates, type PushTimeUpdate } from './push-events.ts';

export interface PushEventCaches {
  repositories: Cache<Repository>;
  /** berth's own Secrets (managed-by label): the Registry's configuration Secret is among them. */
  secrets: Cache<k8sTypes.V1Secret>;
}

export interface PushEventOptions {
  /** True while this replica leads (it alone writes). */
  isLeader(): boolean;
  /** True once the caches have synced (before that, a missing Secret proves nothing). */
  synced(): boolean;
}

type HandlerDeps = Pick<Deps, 'client' | 'logger' | 'registry'>;

/** Compares two secrets in constant time (hashes first, so unequal lengths leak nothing either). */
export function sameSecret(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** Answers a request in plain text and counts it by result. */
type Answer = (res: express.Response, status: number, result: string, message: string) => void;

/**
 * Before the body is read: 503 until the caches have synced, 401 unless the caller presents this
 * Registry's events token (configuration Secret), 503 unless this replica leads.
 */
function authenticator(
  deps: HandlerDeps,
  caches: PushEventCaches,
  options: PushEventOptions,
  answer: Answer,
): express.RequestHandler {
  return (req, res, next) => {
    const namespace = String(req.params.namespace);
    const name = String(req.params.name);
    if (!options.synced()) return answer(res, 503, 'not_ready', 'not ready: caches are syncing');
    const config = caches.secrets.get(names.configSecret({ namespace, name }), namespace);
    const expected = secretText(config, 'events-token');
    const presented = bearer(req.get('authorization'));
    if (!expected || !presented || !sameSecret(presented, expected)) {
      deps.logger.warn('Refused registry events: no valid bearer token', {
        registry: `${namespace}/${name}`,
      });
      return answer(res, 401, 'unauthorized', 'unauthorized');
    }
    if (!options.isLeader()) return answer(res, 503, 'not_leader', 'not the leader: retry');
    next();
  };
}

/** The push-time updates an envelope sent for Registry `key` brings to the Repositories holding their paths; throws on an invalid envelope. */
function updatesOf(caches: PushEventCaches, key: string, body: unknown): PushTimeUpdate[] {
  const envelope = parseEnvelope(body);
  const claims = resolveClaims(caches.repositories.list().filter((r) => registryKeyOf(r) === key));
  return pushTimeUpdates(envelope, claims.winners);
}

/** After authentication: 400 for an invalid envelope, else the push times written (200) or 503 to be retried. */
function pushTimeHandler(
  deps: HandlerDeps,
  caches: PushEventCaches,
  answer: Answer,
  written: Counter,
): express.RequestHandler {
  return async (req, res) => {
    const registry = `${String(req.params.namespace)}/${String(req.params.name)}`;
    let updates: PushTimeUpdate[];
    try {
      updates = updatesOf(caches, registry, req.body);
    } catch (err) {
      return answer(res, 400, 'invalid', `invalid envelope: ${errorMessage(err)}`);
    }
    try {
      let applied = 0;
      for (const update of updates) if (await writePushTime(deps, caches, update)) applied++;
      written.inc(applied);
      if (applied)
        deps.logger.info('Recorded push times', {
          registry,
          repositories: updates.map((u) => `${u.namespace}/${u.name}=${u.lastPushTime}`),
        });
      answer(res, 200, 'applied', `applied ${applied}`);
    } catch (err) {
      deps.logger.error('Failed to record push times', { registry, error: errorMessage(err) });
      answer(res, 503, 'error', 'could not write status: retry');
    }
  };
}

export function pushEventsRouter(
  deps: HandlerDeps,
  caches: PushEventCaches,
  options: PushEventOptions,
): express.Router {
  const requests = new Counter({
    name: 'berth_registry_events_requests_total',
    help: 'Registry notification requests, by result (applied, unauthorized, not_leader, not_ready, invalid, error)',
    labelNames: ['result'],
    registers: [deps.registry],
  });
  const written = new Counter({
    name: 'berth_repository_push_time_updates_total',
    help: 'Repository status.lastPushTime writes from registry push events',
    registers: [deps.registry],
  });
  const answer: Answer = (res, status, result, message) => {
    requests.inc({ result });
    res.status(status).type('text/plain').send(message);
  };

  const router = express.Router();
  router.post(
    '/registry-events/:namespace/:name',
    authenticator(deps, caches, options, answer),
    express.json({ type: () => true, limit: '1mb' }),
    pushTimeHandler(deps, caches, answer, written),
  );
  // a body that is not JSON (or too large): a short answer, no stack trace
  router.use(((err, _req, res, next) => {
    if (res.headersSent) return next(err);
    answer(res, 400, 'invalid', `invalid request: ${errorMessage(err)}`);
  }) as express.ErrorRequestHandler);
  return router;
}

/**
 * Moves one Repository's lastPushTime forward: a merge patch of the status subresource with the
 * resourceVersion the decision was made on; on a conflict (the cache was behind) the live object
 * is read and the decision made again.
 */
async function writePushTime(
  deps: HandlerDeps,
  caches: PushEventCaches,
  update: PushTimeUpdate,
): Promise<boolean> {
  const path = objectPath(resources.repositories, update.name, update.namespace);
  let current = caches.repositories.get(update.name, update.namespace);
  for (let attempt = 0; attempt < 4 && current; attempt++) {
    const had = Date.parse(current.status?.lastPushTime ?? '');
    if (Number.isFinite(had) && had >= Date.parse(update.lastPushTime)) return false;
    try {
      await deps.client.mergePatch(`${path}/status`, {
        metadata: { resourceVersion: current.metadata?.resourceVersion },
        status: { lastPushTime: update.lastPushTime },
      });
      return true;
    } catch (err) {
      const code = statusCodeOf(err);
      if (code === 404) return false;
      if (code !== 409) throw err;
      current = await deps.client.find<Repository>(path);
    }
  }
  if (current) throw new Error(`Repository ${update.namespace}/${update.name} kept changing`);
  return false;
}
