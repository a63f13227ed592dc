// Asking the API server whether a ServiceAccount token is good (a TokenReview), with each
// decision kept for a short while (docs/identity.md).
//
// Why TokenReview and not the issuer's JWKS: only the API server knows that a bound token's Pod
// or ServiceAccount was deleted (or the ServiceAccount recreated under the same name); a JWKS check
// would accept such a token until it expires, up to an hour or more.
//
// Each decision, positive or negative, is kept under the SHA-256 of the token (never the token)
// until the token's expiry or `boundMs` (default 30 s), whichever comes first: a deleted
// ServiceAccount's token stops working within that bound. Tokens that cannot pass (not a JWT,
// expired, for another audience by their own claims) are refused without asking. Requests for
// the same token while a review is in flight share it. When the API server cannot answer, the
// request fails closed (`unavailable`), nothing is kept, and the failure is counted; the token
// never reaches a log line or an error.
import { createHash } from 'node:crypto';
import type { Logger } from 'winston';
import type { Clock } from '../runtime/clock.ts';
import type { TokenMetrics } from './metrics.ts';
import {
  judgeReview,
  keepUntil,
  precheck,
  tokenReviewBody,
  unverifiedClaims,
  type ReviewVerdict,
  type ServiceAccountRef,
} from './service-account-token.ts';

/** How long a decision is kept at most, unless configured. */
export const defaultReviewCacheMs = 30_000;
/** Decisions kept at most (the oldest go first): a flood of made-up tokens cannot grow memory. */
export const defaultReviewCacheEntries = 10_000;

export type ReviewOutcome =
  | { ok: true; serviceAccount: ServiceAccountRef }
  | {
      ok: false;
      reason:
        | 'not-a-token'
        | 'expired'
        | 'wrong-audience'
        | 'unauthenticated'
        | 'not-a-service-account'
        | 'unavailable';
    };

export interface TokenReviewerOptions {
  audience: string;
  /** Posts a TokenReview and resolves with the API server's answer; rejects when there is none. */
  post: (body: Record<string, unknown>) => Promise<unknown>;
  clock: Pick<Clock, 'now'>;
  logger: Logger;
  metrics: TokenMetrics;
  boundMs?: number;
  maxEntries?: number;
}

interface Kept {
  verdict: ReviewVerdict;
  until: number;
}

function outcomeOf(verdict: ReviewVerdict): ReviewOutcome {
  return verdict.authenticated
    ? { ok: true, serviceAccount: verdict.serviceAccount }
    : { ok: false, reason: verdict.reason };
}

/** A status code (or an error's name) for the log: never the error's text, which could quote a request. */
function failureOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number' || typeof code === 'string') return String(code);
  return err instanceof Error ? err.name : 'error';
}

export class TokenReviewer {
  readonly audience: string;
  readonly boundMs: number;
  private readonly options: TokenReviewerOptions;
  private readonly maxEntries: number;
  private readonly kept = new Map<string, Kept>();
  private readonly inFlight = new Map<string, Promise<ReviewOutcome>>();

  constructor(options: TokenReviewerOptions) {
    this.options = options;
    this.audience = options.audience;
    this.boundMs = options.boundMs ?? defaultReviewCacheMs;
    this.maxEntries = options.maxEntries ?? defaultReviewCacheEntries;
  }

  /** Decisions kept now (for tests and metrics). */
  get size(): number {
    return this.kept.size;
  }

  /** Who `token` belongs to, or why it is refused. Never throws. */
  async review(token: string): Promise<ReviewOutcome> {
    const now = this.options.clock.now();
    const claims = unverifiedClaims(token);
    const early = precheck(claims, this.audience, now);
    if (early || !claims) {
      this.options.metrics.reviews.inc({ result: 'prechecked' });
      return { ok: false, reason: early ?? 'not-a-token' };
    }
    const key = createHash('sha256').update(token).digest('hex');
    const kept = this.kept.get(key);
    if (kept && kept.until > now) {
      this.options.metrics.reviews.inc({ result: 'cached' });
      return outcomeOf(kept.verdict);
    }
    if (kept) this.kept.delete(key);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const asked = this.ask(token, key, keepUntil(claims, now, this.boundMs));
    this.inFlight.set(key, asked);
    try {
      return await asked;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async ask(token: string, key: string, until: number): Promise<ReviewOutcome> {
    const started = process.hrtime.bigint();
    let answer: unknown;
    try {
      answer = await this.options.post(tokenReviewBody(token, this.audience));
    } catch (err) {
      this.options.metrics.reviews.inc({ result: 'error' });
      this.options.logger.error('cannot review a ServiceAccount token', {
        event: 'review.failed',
        status: failureOf(err),
      });
      return { ok: false, reason: 'unavailable' };
    } finally {
      this.options.metrics.reviewDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    const verdict = judgeReview(answer, this.audience);
    this.options.metrics.reviews.inc({ result: verdict.authenticated ? 'authenticated' : 'refused' });
    this.keep(key, { verdict, until });
    return outcomeOf(verdict);
  }

  private keep(key: string, kept: Kept): void {
    this.kept.delete(key);
    this.kept.set(key, kept);
    while (this.kept.size > this.maxEntries) {
      const oldest = this.kept.keys().next().value;
      if (oldest === undefined) break;
      this.kept.delete(oldest);
    }
  }
}
