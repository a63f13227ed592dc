// The token endpoint's decisions, independent of HTTP: who is asking (basic credentials or
// nobody), what they may have of the requested scopes, and the signed token or the refusal.
//
// Two request forms, as clients use them:
// - `GET /token?service=&scope=&scope=&account=` with `Authorization: Basic` (docker, crane,
//   podman) or without (anonymous);
// - `POST /token` with an OAuth2 form `grant_type=password&username=&password=&scope=&service=`
//   (containerd, hence the kubelet's pulls, tries this first). Refresh tokens are not issued, so
//   `grant_type=refresh_token` is refused as unsupported.
import type { Logger } from 'winston';
import { authenticate } from '../credentials/authenticate.ts';
import { decideAccess, parseScopes, type Principal } from '../credentials/scope.ts';
import type { CompiledStore } from '../credentials/store.ts';
import type { RefusalReason, TokenMetrics } from './metrics.ts';
import type { TokenSigner } from './signer.ts';

export interface TokenSettings {
  issuer: string;
  /** The registry's `auth.token.service`, the token's audience. */
  service: string;
  /** Token lifetime in milliseconds. */
  ttlMs: number;
}

export interface TokenDeps {
  clock: () => Date;
  signer: TokenSigner;
  store: () => CompiledStore;
  logger: Logger;
  metrics: TokenMetrics;
}

export interface TokenRequest {
  method: 'GET' | 'POST';
  /** The `Authorization` header, if any. */
  authorization?: string | undefined;
  /** Query parameters (GET) or form fields (POST). */
  params: URLSearchParams;
  remoteAddress?: string | undefined;
}

export interface TokenResponse {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

interface Refusal {
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
};

function refusal(reason: RefusalReason, message?: string): Refusal {
  const r = refusals[reason];
  return { ...r, reason, message: message ?? r.message };
}

type Credentials = { username: string; password: string };

/**
 * Decodes `Authorization: Basic …`; undefined when absent, 'malformed' when unreadable. A header
 * that is present but blank (HTTP trims it to '') is a credential that cannot be read, not an
 * anonymous request: anonymity is never granted to a client that sent an Authorization header.
 */
function basicCredentials(header: string | undefined): Credentials | undefined | 'malformed' {
  if (header === undefined) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (scheme?.toLowerCase() !== 'basic' || !value) return 'malformed';
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return 'malformed';
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function scopeText(a: { type: string; class?: string; name: string; actions: string[] }): string {
  return `${a.type}${a.class ? `(${a.class})` : ''}:${a.name}:${a.actions.join(',')}`;
}

export async function handleTokenRequest(
  request: TokenRequest,
  settings: TokenSettings,
  deps: TokenDeps,
): Promise<TokenResponse> {
  const started = process.hrtime.bigint();
  const now = deps.clock();
  const { params } = request;
  const oauth = request.method === 'POST';
  const audit = {
    remote: request.remoteAddress,
    method: request.method,
    service: params.get('service') ?? undefined,
    account: (oauth ? params.get('username') : params.get('account')) ?? undefined,
    scope: params.getAll('scope').join(' ') || undefined,
  };
  const observe = (outcome: string) =>
    deps.metrics.duration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);

  const refuse = (r: Refusal, subject?: string): TokenResponse => {
    deps.metrics.refused.inc({ reason: r.reason });
    deps.logger.warn('token refused', { event: 'token.refused', ...audit, subject, reason: r.reason });
    observe('refused');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (r.status === 401) headers['www-authenticate'] = `Basic realm="${settings.service}"`;
    const body: Record<string, unknown> = { errors: [{ code: r.code, message: r.message }] };
    if (oauth) Object.assign(body, { error: r.oauthError, error_description: r.message });
    return { status: r.status, headers, body };
  };

  const service = params.get('service');
  if (service !== null && service !== settings.service)
    return refuse(
      refusal(
        'unknown-service',
        `unknown service "${service.slice(0, 200)}"; this token service serves "${settings.service}"`,
      ),
    );

  let credentials: Credentials | undefined;
  if (oauth) {
    const grantType = params.get('grant_type');
    if (grantType !== 'password') return refuse(refusal('unsupported-grant'));
    const username = params.get('username');
    const password = params.get('password');
    if (!username || password === null)
      return refuse(refusal('bad-request', 'username and password are required'));
    credentials = { username, password };
  } else {
    const basic = basicCredentials(request.authorization);
    if (basic === 'malformed')
      return refuse(refusal('bad-request', 'the Authorization header must be Basic credentials'));
    credentials = basic;
  }

  const { scopes, invalid } = parseScopes(params.getAll('scope'));
  if (invalid.length > 0)
    return refuse(refusal('bad-request', `malformed scope (expected type:name:actions)`));

  const store = deps.store();
  let principal: Principal;
  if (credentials) {
    const result = authenticate(store, credentials.username, credentials.password, now);
    if (!result.ok) return refuse(refusal(result.reason), credentials.username);
    principal = { kind: 'credential', entry: result.entry };
  } else {
    if (!store.anonymousPull) return refuse(refusal('no-credentials'));
    principal = { kind: 'anonymous', anonymousPull: true };
  }
  const subject = principal.kind === 'credential' ? principal.entry.entry.username : '';

  const decision = decideAccess(principal, scopes);
  const signed = await deps.signer.sign({
    issuer: settings.issuer,
    subject,
    audience: settings.service,
    access: decision.access,
    issuedAt: now,
    ttlMs: settings.ttlMs,
  });
  const deniedCount = decision.refused.reduce((n, r) => n + r.actions.length, 0);
  deps.metrics.issued.inc({ principal: principal.kind });
  if (deniedCount > 0) deps.metrics.deniedActions.inc(deniedCount);
  deps.logger.info('token issued', {
    event: 'token.issued',
    ...audit,
    subject: subject || undefined,
    anonymous: principal.kind === 'anonymous' || undefined,
    granted: decision.access.map(scopeText),
    denied:
      decision.refused.length > 0
        ? decision.refused.map((r) => `${r.scope}:${r.actions.join(',')}`)
        : undefined,
    jti: signed.jti,
    expiresAt: signed.expiresAt.toISOString(),
  });
  observe('issued');
  const expiresIn = Math.round((signed.expiresAt.getTime() - Math.floor(now.getTime() / 1000) * 1000) / 1000);
  const body: Record<string, unknown> = {
    token: signed.token,
    access_token: signed.token,
    expires_in: expiresIn,
    issued_at: new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString(),
  };
  if (oauth) body.scope = decision.access.map(scopeText).join(' ');
  return {
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
    body,
  };
}
