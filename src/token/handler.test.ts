import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import winston from 'winston';
import { hashSecret } from '../credentials/secret.ts';
import { compileCredentialStore, type CredentialEntry } from '../credentials/store.ts';
import { createSigningKey } from '../pki/certificates.ts';
import { handleTokenRequest, type TokenRequest } from './handler.ts';
import { createTokenMetrics } from './metrics.ts';
import { TokenSigner } from './signer.ts';
import type { ReviewOutcome, TokenReviewer } from './token-review.ts';
import { capturingLogger } from '../runtime/logger.ts';

const now = new Date('2026-11-24T09:00:00.400Z');
const settings = { issuer: 'berth/registry-system/main', service: 'main.registry-system', ttlMs: 300_000 };
const secrets = { admin: 'admin-Secret-1', team: 'team-Secret-2', old: 'old-Secret-3' };
const entries: CredentialEntry[] = [
  {
    username: 'admin',
    secretHash: hashSecret(secrets.admin),
    grants: [{ repositories: ['**'], actions: ['*'] }],
    catalog: true,
  },
  {
    username: 'team',
    secretHash: hashSecret(secrets.team),
    grants: [{ repositories: ['team-a/*'], actions: ['pull'] }],
  },
  {
    username: 'team',
    secretHash: hashSecret(secrets.old),
    grants: [{ repositories: ['team-a/*'], actions: ['pull'] }],
    notAfter: '2026-11-24T08:00:00Z',
  },
];

async function setup(anonymousPull = false) {
  const { logger, lines } = capturingLogger();
  const metrics = createTokenMetrics();
  const store = compileCredentialStore({ version: 1, anonymousPull, credentials: entries });
  const signer = new TokenSigner((await createSigningKey()).privateKeyPem);
  const deps = { clock: { now: () => now.getTime() }, signer, store: () => store, logger, metrics };
  const call = (req: Partial<TokenRequest> & { params?: URLSearchParams }) =>
    handleTokenRequest({ method: 'GET', params: new URLSearchParams(), ...req }, settings, deps);
  return { call, lines, metrics, signer };
}

const basic = (user: string, secret: string) =>
  `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
const q = (s: string) => new URLSearchParams(s);

describe('handleTokenRequest', () => {
  it('issues a token with the granted subset of the scopes and the Distribution claims', async () => {
    const { call, signer, lines } = await setup();
    const res = await call({
      authorization: basic('team', secrets.team),
      params: q(
        'service=main.registry-system&scope=repository:team-a/web:pull,push&scope=repository:team-b/x:pull',
      ),
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      token: expect.any(String),
      access_token: res.body.token,
      expires_in: 300,
      issued_at: '2026-11-24T09:00:00.000Z',
    });
    const token = String(res.body.token);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: signer.keyId });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      iss: settings.issuer,
      sub: 'team',
      aud: settings.service,
      iat: 1795510800,
      nbf: 1795510800,
      exp: 1795511100,
      access: [{ type: 'repository', name: 'team-a/web', actions: ['pull'] }],
    });
    const audit = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'token.issued');
    expect(audit).toMatchObject({
      subject: 'team',
      granted: ['repository:team-a/web:pull'],
      denied: ['repository:team-a/web:push', 'repository:team-b/x:pull'],
    });
  });

  it.each<[string, Partial<TokenRequest>, number, string, RegExp]>([
    [
      'a wrong secret',
      { authorization: basic('team', 'nope') },
      401,
      'wrong-secret',
      /invalid username or password/,
    ],
    [
      'an unknown user',
      { authorization: basic('mallory', 'x') },
      401,
      'unknown-user',
      /invalid username or password/,
    ],
    [
      'a rotated-out secret',
      { authorization: basic('team', secrets.old) },
      401,
      'expired',
      /expired or was revoked/,
    ],
    ['no credentials', {}, 401, 'no-credentials', /does not allow anonymous pulls/],
    ['a Bearer header', { authorization: 'Bearer abc' }, 400, 'bad-request', /must be Basic/],
    [
      'basic without a colon',
      { authorization: `Basic ${Buffer.from('x').toString('base64')}` },
      400,
      'bad-request',
      /must be Basic/,
    ],
    [
      'another service',
      { authorization: basic('admin', secrets.admin), params: q('service=other') },
      400,
      'unknown-service',
      /unknown service \\"other\\"/,
    ],
    [
      'a malformed scope',
      { authorization: basic('admin', secrets.admin), params: q('scope=nonsense') },
      400,
      'bad-request',
      /malformed scope/,
    ],
  ])('refuses %s', async (_name, req, status, reason, message) => {
    const { call, lines, metrics } = await setup();
    const res = await call(req);
    expect(res.status).toBe(status);
    expect(JSON.stringify(res.body)).toMatch(message);
    if (status === 401) expect(res.headers['www-authenticate']).toBe('Basic realm="main.registry-system"');
    expect((await metrics.refused.get()).values).toEqual([{ labels: { reason }, value: 1 }]);
    for (const secret of Object.values(secrets)) expect(lines.join('')).not.toContain(secret);
    expect(lines.join('')).toContain('"event":"token.refused"');
  });

  it('grants anonymous pulls only when the store allows them', async () => {
    const closed = await setup(false);
    expect((await closed.call({ params: q('scope=repository:team-a/web:pull') })).status).toBe(401);
    const open = await setup(true);
    const res = await open.call({
      params: q('scope=repository:team-a/web:pull,push&scope=registry:catalog:*'),
    });
    expect(res.status).toBe(200);
    const claims = decodeJwt(String(res.body.token));
    expect(claims.sub).toBe('');
    expect(claims.access).toEqual([{ type: 'repository', name: 'team-a/web', actions: ['pull'] }]);
  });

  it('still checks credentials when anonymous pulls are allowed', async () => {
    const { call } = await setup(true);
    expect((await call({ authorization: basic('team', 'nope') })).status).toBe(401);
  });

  it('never treats a blank Authorization header as anonymous (found by the endpoint fuzz test)', async () => {
    const { call } = await setup(true);
    const res = await call({ authorization: '', params: q('scope=repository:team-a/web:pull') });
    expect(res.status).toBe(400);
    expect(res.body.token).toBeUndefined();
  });

  describe('the OAuth2 password form (containerd)', () => {
    const form = (user: string, secret: string, extra = '') =>
      new URLSearchParams(
        `grant_type=password&service=main.registry-system&client_id=containerd&scope=repository:team-a/web:pull${extra}` +
          `&username=${encodeURIComponent(user)}&password=${encodeURIComponent(secret)}`,
      );

    it('issues access_token and the granted scope', async () => {
      const { call } = await setup();
      const res = await call({ method: 'POST', params: form('admin', secrets.admin, ' registry:catalog:*') });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        access_token: expect.any(String),
        expires_in: 300,
        scope: 'repository:team-a/web:pull registry:catalog:*',
      });
      expect(decodeJwt(String(res.body.access_token)).sub).toBe('admin');
    });

    it('answers OAuth2 errors', async () => {
      const { call } = await setup();
      const bad = await call({ method: 'POST', params: form('admin', 'nope') });
      expect(bad.status).toBe(401);
      expect(bad.body).toMatchObject({
        error: 'invalid_grant',
        error_description: 'invalid username or password',
      });
      const refresh = await call({ method: 'POST', params: q('grant_type=refresh_token&refresh_token=x') });
      expect(refresh.status).toBe(400);
      expect(refresh.body).toMatchObject({ error: 'unsupported_grant_type' });
      const missing = await call({ method: 'POST', params: q('grant_type=password&username=admin') });
      expect(missing.status).toBe(400);
    });
  });

  it('counts issued tokens by principal kind', async () => {
    const { call, metrics } = await setup(true);
    await call({ authorization: basic('admin', secrets.admin) });
    await call({});
    await call({});
    const values = (await metrics.issued.get()).values.map((v) => [v.labels.principal, v.value]);
    expect(values).toEqual([
      ['credential', 1],
      ['anonymous', 2],
    ]);
  });
});

describe('handleTokenRequest with a ServiceAccount token', () => {
  const audience = 'berth.dev/registry-system/main';
  // Plays the TokenReviewer: the outcome for each token.
  const outcomes: Record<string, ReviewOutcome> = {
    good: { ok: true, serviceAccount: { namespace: 'team-a', name: 'ci' } },
    nogrant: { ok: true, serviceAccount: { namespace: 'team-a', name: 'other' } },
    gone: { ok: false, reason: 'unauthenticated' },
    elsewhere: { ok: false, reason: 'wrong-audience' },
    down: { ok: false, reason: 'unavailable' },
  };
  async function saSetup(withReviewer = true) {
    const base = await setup();
    const store = compileCredentialStore({
      version: 1,
      anonymousPull: false,
      credentials: entries,
      serviceAccounts: [
        {
          namespace: 'team-a',
          name: 'ci',
          grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
        },
      ],
    });
    const reviewer = {
      audience,
      review: async (token: string) => outcomes[token] ?? { ok: false, reason: 'not-a-token' },
    } as unknown as TokenReviewer;
    const deps = {
      clock: { now: () => now.getTime() },
      signer: base.signer,
      store: () => store,
      logger: winston.createLogger({
        transports: [
          new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
        ],
      }),
      metrics: base.metrics,
      ...(withReviewer ? { reviewer } : {}),
    };
    return (token: string, scope: string) =>
      handleTokenRequest(
        { method: 'GET', authorization: basic('serviceaccount', token), params: q(`scope=${scope}`) },
        settings,
        deps,
      );
  }

  it('grants what the store gives the ServiceAccount, with its Kubernetes username as subject', async () => {
    const call = await saSetup();
    const res = await call('good', 'repository:team-a/web:pull,push');
    expect(res.status).toBe(200);
    const claims = decodeJwt(res.body.token as string);
    expect(claims.sub).toBe('system:serviceaccount:team-a:ci');
    expect(claims.access).toEqual([{ type: 'repository', name: 'team-a/web', actions: ['pull', 'push'] }]);
    const elsewhere = await call('good', 'repository:team-b/app:push');
    expect(decodeJwt(elsewhere.body.token as string).access).toEqual([]);
  });

  it('grants nothing to a ServiceAccount no Repository names', async () => {
    const res = await (await saSetup())('nogrant', 'repository:team-a/web:pull');
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.token as string).access).toEqual([]);
  });

  it.each([
    { token: 'gone', status: 401, message: /refused the ServiceAccount token/ },
    { token: 'elsewhere', status: 401, message: /audience "berth.dev\/registry-system\/main"/ },
    { token: 'not-a-jwt', status: 401, message: /must be a Kubernetes ServiceAccount token/ },
    { token: 'down', status: 503, message: /did not answer; try again later/ },
  ])('refuses $token with $status', async ({ token, status, message }) => {
    const res = await (await saSetup())(token, 'repository:team-a/web:pull');
    expect(res.status).toBe(status);
    expect((res.body.errors as { message: string }[])[0]?.message).toMatch(message);
    expect(res.body.token).toBeUndefined();
  });

  it('refuses every ServiceAccount token when the registry takes none', async () => {
    const res = await (await saSetup(false))('good', 'repository:team-a/web:pull');
    expect(res.status).toBe(401);
    expect(JSON.stringify(res.body)).toMatch(/does not accept ServiceAccount tokens/);
  });
});
