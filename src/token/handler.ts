// The token endpoint, independent of HTTP: who is asking (basic credentials or nobody), what
// they may have of the requested scopes, and the signed token or the refusal. The decisions are
// pure (token-request.ts); this adds the signing, the metrics and the log lines.
//
// Two request forms, as clients use them:
// - `GET /token?service=&scope=&scope=&account=` with `Authorization: Basic` (docker, crane,
//   podman) or without (anonymous);
// - `POST /token` with an OAuth2 form `grant_type=password&username=&password=&scope=&service=`
//   (containerd, hence the kubelet's pulls, tries this first). Refresh tokens are not issued, so
//   `grant_type=refresh_token` is refused as unsupported.
import type { Logger } from 'winston';
import { decideAccess, principalSubject, type AccessDecision, type Principal } from '../credentials/scope.ts';
import type { CompiledStore } from '../credentials/store.ts';
import type { TokenMetrics } from './metrics.ts';
import type { SignedToken, TokenSigner } from './signer.ts';
import {
  decideRequest,
  identify,
  issuedAnswer,
  refusalAnswer,
  scopeText,
  serviceAccountPrincipal,
  type Credentials,
  type Refusal,
} from './token-request.ts';
import { serviceAccountUsername } from './service-account-token.ts';
import type { TokenReviewer } from './token-review.ts';
import type { Clock } from '../runtime/clock.ts';

export interface TokenSettings {
  issuer: string;
  /** The registry's `auth.token.service`, the token's audience. */
  service: string;
  /** Token lifetime in milliseconds. */
  ttlMs: number;
}

export interface TokenDeps {
  clock: Pick<Clock, 'now'>;
  signer: TokenSigner;
  store: () => CompiledStore;
  logger: Logger;
  metrics: TokenMetrics;
  /** Judges ServiceAccount tokens (username `serviceaccount`); absent: the registry takes none. */
  reviewer?: TokenReviewer | undefined;
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

/** The request's fields for the audit log lines (never a secret). */
function auditFields(request: TokenRequest): Record<string, string | undefined> {
  const { params } = request;
  return {
    remote: request.remoteAddress,
    method: request.method,
    service: params.get('service') ?? undefined,
    account: (request.method === 'POST' ? params.get('username') : params.get('account')) ?? undefined,
    scope: params.getAll('scope').join(' ') || undefined,
  };
}

/** Counts and logs a token issued (`token.issued`: what was granted and denied, never the token). */
function recordIssued(
  deps: TokenDeps,
  audit: Record<string, string | undefined>,
  principal: Principal,
  decision: AccessDecision,
  signed: SignedToken,
): void {
  const subject = principalSubject(principal);
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
}

/** Who asks: a ServiceAccount token (username `serviceaccount`) goes to the reviewer, the rest to the store. */
async function whoAsks(
  deps: TokenDeps,
  credentials: Credentials | undefined,
  now: Date,
): Promise<ReturnType<typeof identify>> {
  if (credentials?.username !== serviceAccountUsername) return identify(deps.store(), credentials, now);
  const outcome = deps.reviewer ? await deps.reviewer.review(credentials.password) : undefined;
  return serviceAccountPrincipal(deps.store(), outcome, deps.reviewer?.audience ?? '');
}

/**
 * Answers one token request: judges its form (decideRequest), who asks (identify), what they
 * get (decideAccess), signs the token; every outcome is counted, timed and logged.
 */
export async function handleTokenRequest(
  request: TokenRequest,
  settings: TokenSettings,
  deps: TokenDeps,
): Promise<TokenResponse> {
  const started = process.hrtime.bigint();
  const now = new Date(deps.clock.now());
  const oauth = request.method === 'POST';
  const audit = auditFields(request);
  const observe = (outcome: string) =>
    deps.metrics.duration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
  const refuse = (r: Refusal, subject?: string): TokenResponse => {
    deps.metrics.refused.inc({ reason: r.reason });
    deps.logger.warn('token refused', { event: 'token.refused', ...audit, subject, reason: r.reason });
    observe('refused');
    return refusalAnswer(r, settings.service, oauth);
  };

  const asked = decideRequest(request, settings.service);
  if ('refusal' in asked) return refuse(asked.refusal);
  const who = await whoAsks(deps, asked.credentials, now);
  if ('refusal' in who) return refuse(who.refusal, who.subject);
  const decision = decideAccess(who.principal, asked.scopes);
  const signed = await deps.signer.sign({
    issuer: settings.issuer,
    subject: principalSubject(who.principal),
    audience: settings.service,
    access: decision.access,
    issuedAt: now,
    ttlMs: settings.ttlMs,
  });
  recordIssued(deps, audit, who.principal, decision, signed);
  observe('issued');
  return issuedAnswer(signed, now, decision, oauth);
}
