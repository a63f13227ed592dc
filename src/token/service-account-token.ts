// Pure: Kubernetes ServiceAccount tokens presented as a password (docs/identity.md). What a token
// says about itself before anyone verified it (only to refuse cheaply, and to bound how long a
// decision is kept), how a TokenReview is asked, and how its answer is judged.
//
// Nothing here trusts a token's own claims for a grant: only the API server's TokenReview answer
// decides who the token belongs to. The unverified claims serve to refuse a token that cannot
// pass (not a JWT, expired, for another audience) without asking the API server, and to keep a
// decision no longer than the token lives.

/** The username a client presents with a ServiceAccount token as its password. */
export const serviceAccountUsername = 'serviceaccount';

/** Tokens longer than this are refused unread (a projected token is about 1 KiB). */
export const maxTokenLength = 16 * 1024;

/** The claims of a JWT as its payload states them, unverified. */
export interface UnverifiedClaims {
  /** Expiry in milliseconds since the epoch, when stated. */
  expiresAt?: number;
  audiences: string[];
}

/** The payload of a compact JWS, unverified; undefined when `token` is not one. */
export function unverifiedClaims(token: string): UnverifiedClaims | undefined {
  if (token.length > maxTokenLength) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null) return undefined;
  const { exp, aud } = payload as { exp?: unknown; aud?: unknown };
  const audiences =
    typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [];
  const claims: UnverifiedClaims = { audiences };
  if (typeof exp === 'number' && Number.isFinite(exp)) claims.expiresAt = exp * 1000;
  return claims;
}

/** Why a token is refused before the API server is asked, or undefined when it may be asked. */
export function precheck(
  claims: UnverifiedClaims | undefined,
  audience: string,
  now: number,
): 'not-a-token' | 'expired' | 'wrong-audience' | undefined {
  if (!claims) return 'not-a-token';
  if (claims.expiresAt !== undefined && claims.expiresAt <= now) return 'expired';
  if (!claims.audiences.includes(audience)) return 'wrong-audience';
  return undefined;
}

/** The TokenReview that asks the API server about `token` for `audience` (authentication.k8s.io/v1). */
export function tokenReviewBody(token: string, audience: string): Record<string, unknown> {
  return {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token, audiences: [audience] },
  };
}

/** A ServiceAccount, as a token names it. */
export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

/** The API server's verdict on a token. */
export type ReviewVerdict =
  | { authenticated: true; serviceAccount: ServiceAccountRef }
  | { authenticated: false; reason: 'unauthenticated' | 'wrong-audience' | 'not-a-service-account' };

const prefix = 'system:serviceaccount:';

/** `system:serviceaccount:<namespace>:<name>` → the ServiceAccount; undefined for any other user. */
export function serviceAccountOfUser(username: string): ServiceAccountRef | undefined {
  if (!username.startsWith(prefix)) return undefined;
  const [namespace, name, ...rest] = username.slice(prefix.length).split(':');
  if (!namespace || !name || rest.length > 0) return undefined;
  return { namespace, name };
}

/**
 * Judges a TokenReview answer: authenticated, for `audience` (the API server lists the audiences
 * the token is valid for among those asked; a token without ours is refused even if the answer
 * says authenticated), and a ServiceAccount's (any other user is no ServiceAccount of a grant).
 */
export function judgeReview(answer: unknown, audience: string): ReviewVerdict {
  const status = (answer as { status?: Record<string, unknown> } | null)?.status;
  if (!status || status.authenticated !== true) return { authenticated: false, reason: 'unauthenticated' };
  const audiences = Array.isArray(status.audiences) ? status.audiences : [];
  if (!audiences.includes(audience)) return { authenticated: false, reason: 'wrong-audience' };
  const username = (status.user as { username?: unknown } | undefined)?.username;
  const serviceAccount = typeof username === 'string' ? serviceAccountOfUser(username) : undefined;
  if (!serviceAccount) return { authenticated: false, reason: 'not-a-service-account' };
  return { authenticated: true, serviceAccount };
}

/**
 * Until when a decision about a token may be kept: never past the token's own expiry, and at most
 * `boundMs` (a deleted ServiceAccount or Pod invalidates its tokens; the next review notices).
 */
export function keepUntil(claims: UnverifiedClaims, now: number, boundMs: number): number {
  const bound = now + boundMs;
  return claims.expiresAt === undefined ? bound : Math.min(claims.expiresAt, bound);
}
