// The token endpoint's decisions as pure functions: which refusal a request earns before any
// credential is checked (service, grant, credentials' form, scopes), who is asking, and the
// answers' bodies and headers. handler.ts adds the effects (signing, metrics, logs).
import { authenticate } from '../credentials/authenticate.ts';
import type { AccessDecision, Principal, Scope } from '../credentials/scope.ts';
import { parseScopes } from '../credentials/scope.ts';
import { serviceAccountKey, type CompiledStore } from '../credentials/store.ts';
import type { RefusalReason } from './metrics.ts';
import { serviceAccountUsername } from './service-account-token.ts';
import type { SignedToken } from './signer.ts';
import type { ReviewOutcome } from './token-review.ts';

/** A request's method, Authorization header and parameters (query or form). */
export interface TokenRequestInput {
  method: 'GET' | 'POST';
  authorization?: string | undefined;
  params: URLSearchParams;
}

/** An answer of the endpoint (its body is JSON). */
export interface TokenAnswer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface Refusal {
  status: number;
  reason: RefusalReason;
  code: string;
  oauthError: string;
  message: string;
}

const refusals: Record<RefusalReason, Omit<Refusal, 'reason'>> = {
  'no-credentials': {
    status: 401,
    code: 'UNAUTHORIZED',
    oauthError: 'invalid_client',
    message: 'authentication required: this registry does not allow anonymous pulls',
  },
  'unknown-user': {
    status: 401,
    code: 'UNAUTHORIZED',
    oauthError: 'invalid_grant',
    message: 'invalid username or password',
  },
  'wrong-secret': {
    status: 401,
    code: 'UNAUTHORIZED',
    oauthError: 'invalid_grant',
    message: 'invalid username or password',
  },
  expired: {
    status: 401,
    code: 'UNAUTHORIZED',
    oauthError: 'invalid_grant',
    message: 'this credential has expired or was revoked (rotated); use the current pull or push secret',
  },
  'not-yet-valid': {
    status: 401,
    code: 'UNAUTHORIZED',
    oauthError: 'invalid_grant',
    message: 'this credential is not valid yet',
  },
  'bad-request': {
    status: 400,
    code: 'DENIED',
    oauthError: 'invalid_request',
    message: 'malformed token request',
  },
  'unknown-service': {
    status: 400,
    code: 'DENIED',
    oauthError: 'invalid_request',
    message: 'unknown service',
  },
  'unsupported-grant': {
    status: 400,
    code: 'UNSUPPORTED',
    oauthError: 'unsupported_grant_type',
    message: 'only grant_type=password is supported',
  },
  'invalid-token': {
    status: 401,
    code: 'UNAUTHORIZED',
    oauthError: 'invalid_grant',
    message: 'the ServiceAccount token was refused',
  },
  'review-unavailable': {
    status: 503,
    code: 'UNAVAILABLE',
    oauthError: 'temporarily_unavailable',
    message:
      'cannot verify the ServiceAccount token now: the Kubernetes API server did not answer; try again later',
  },
};

/** What a client is told when its ServiceAccount token is refused, by the reviewer's reason. */
const tokenRefusals: Record<Exclude<ReviewOutcome, { ok: true }>['reason'] | 'disabled', string> = {
  disabled:
    'this registry does not accept ServiceAccount tokens (spec.auth.serviceAccountTokens.enabled is false)',
  'not-a-token': `the password of username "${serviceAccountUsername}" must be a Kubernetes ServiceAccount token (a JWT)`,
  expired: 'the ServiceAccount token has expired; request a new one',
  'wrong-audience':
    'the ServiceAccount token is not for this registry: request one with the audience AUDIENCE',
  unauthenticated:
    'the Kubernetes API server refused the ServiceAccount token (expired, revoked, or its ServiceAccount or Pod was deleted)',
  'not-a-service-account': 'the token does not belong to a ServiceAccount',
  unavailable: '',
};

/**
 * Who a reviewed ServiceAccount token is (with the grants the store gives its ServiceAccount,
 * possibly none), or the refusal: `review-unavailable` (503) when the API server did not answer,
 * else `invalid-token` (401) saying why. `outcome` undefined: the registry takes no such tokens.
 */
export function serviceAccountPrincipal(
  store: CompiledStore,
  outcome: ReviewOutcome | undefined,
  audience: string,
): { principal: Principal } | { refusal: Refusal; subject?: string } {
  if (outcome === undefined) return { refusal: refusal('invalid-token', tokenRefusals.disabled) };
  if (!outcome.ok) {
    if (outcome.reason === 'unavailable') return { refusal: refusal('review-unavailable') };
    const message = tokenRefusals[outcome.reason].replace('AUDIENCE', JSON.stringify(audience));
    return { refusal: refusal('invalid-token', message), subject: serviceAccountUsername };
  }
  const { namespace, name } = outcome.serviceAccount;
  return {
    principal: {
      kind: 'serviceAccount',
      subject: `system:serviceaccount:${namespace}:${name}`,
      grants: store.serviceAccounts?.get(serviceAccountKey(namespace, name)) ?? [],
    },
  };
}

export function refusal(reason: RefusalReason, message?: string): Refusal {
  const r = refusals[reason];
  return { ...r, reason, message: message ?? r.message };
}

export type Credentials = { username: string; password: string };

/**
 * Decodes `Authorization: Basic …`; undefined when absent, 'malformed' when unreadable. A header
 * that is present but blank (HTTP trims it to '') is a credential that cannot be read, not an
 * anonymous request: anonymity is never granted to a client that sent an Authorization header.
 */
export function basicCredentials(header: string | undefined): Credentials | undefined | 'malformed' {
  if (header === undefined) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (scheme?.toLowerCase() !== 'basic' || !value) return 'malformed';
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return 'malformed';
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function scopeText(a: { type: string; class?: string; name: string; actions: string[] }): string {
  return `${a.type}${a.class ? `(${a.class})` : ''}:${a.name}:${a.actions.join(',')}`;
}

/** What a request asks for, or the refusal it earns before any credential is checked. */
export type RequestDecision =
  { refusal: Refusal } | { credentials: Credentials | undefined; scopes: Scope[] };

/**
 * Judges a request's form, in this order: the service (when named, it must be ours), then the
 * credentials (OAuth2: grant_type=password with a username and a password; else Basic or none),
 * then the scopes. Reads nothing but the request.
 */
export function decideRequest(request: TokenRequestInput, service: string): RequestDecision {
  const { params } = request;
  const asked = params.get('service');
  if (asked !== null && asked !== service)
    return {
      refusal: refusal(
        'unknown-service',
        `unknown service "${asked.slice(0, 200)}"; this token service serves "${service}"`,
      ),
    };
  const credentials = requestCredentials(request);
  if (credentials === 'malformed' || (credentials !== undefined && 'refusal' in credentials))
    return {
      refusal:
        credentials === 'malformed'
          ? refusal('bad-request', 'the Authorization header must be Basic credentials')
          : credentials.refusal,
    };
  const { scopes, invalid } = parseScopes(params.getAll('scope'));
  if (invalid.length > 0)
    return { refusal: refusal('bad-request', `malformed scope (expected type:name:actions)`) };
  return { credentials, scopes };
}

/** The credentials of a request: the OAuth2 form's (POST), else the Basic header's, else none. */
function requestCredentials(
  request: TokenRequestInput,
): Credentials | undefined | 'malformed' | { refusal: Refusal } {
  if (request.method !== 'POST') return basicCredentials(request.authorization);
  const { params } = request;
  if (params.get('grant_type') !== 'password') return { refusal: refusal('unsupported-grant') };
  const username = params.get('username');
  const password = params.get('password');
  if (!username || password === null)
    return { refusal: refusal('bad-request', 'username and password are required') };
  return { username, password };
}

/**
 * Who is asking, by `store` at `now`: the credential the username and password match, anonymous
 * (no credentials, and the store allows anonymous pulls), or the refusal (with the username
 * refused, for the log).
 */
export function identify(
  store: CompiledStore,
  credentials: Credentials | undefined,
  now: Date,
): { principal: Principal } | { refusal: Refusal; subject?: string } {
  if (credentials) {
    const result = authenticate(store, credentials.username, credentials.password, now);
    if (!result.ok) return { refusal: refusal(result.reason), subject: credentials.username };
    return { principal: { kind: 'credential', entry: result.entry } };
  }
  if (!store.anonymousPull) return { refusal: refusal('no-credentials') };
  return { principal: { kind: 'anonymous', anonymousPull: true } };
}

/** A refusal's answer: Distribution's `errors`, and OAuth2's `error` for the form (POST). */
export function refusalAnswer(r: Refusal, service: string, oauth: boolean): TokenAnswer {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (r.status === 401) headers['www-authenticate'] = `Basic realm="${service}"`;
  const body: Record<string, unknown> = { errors: [{ code: r.code, message: r.message }] };
  if (oauth) Object.assign(body, { error: r.oauthError, error_description: r.message });
  return { status: r.status, headers, body };
}

/** A token's answer: the token (twice, as both dialects name it), its lifetime, and for OAuth2 the scope. */
export function issuedAnswer(
  signed: SignedToken,
  now: Date,
  decision: AccessDecision,
  oauth: boolean,
): TokenAnswer {
  const issuedAt = Math.floor(now.getTime() / 1000) * 1000;
  const body: Record<string, unknown> = {
    token: signed.token,
    access_token: signed.token,
    expires_in: Math.round((signed.expiresAt.getTime() - issuedAt) / 1000),
    issued_at: new Date(issuedAt).toISOString(),
  };
  if (oauth) body.scope = decision.access.map(scopeText).join(' ');
  return {
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
    body,
  };
}
