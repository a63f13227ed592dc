import { describe, expect, it } from '@jest/globals';
import { createTokenMetrics } from './metrics.ts';
import { TokenReviewer } from './token-review.ts';
import { capturingLogger } from '../runtime/logger.ts';

const audience = 'berth.dev/registry-system/main';
const jwt = (payload: unknown) =>
  ['{"alg":"RS256"}', JSON.stringify(payload), 'sig']
    .map((p) => Buffer.from(p).toString('base64url'))
    .join('.');

function setup(options: { maxEntries?: number } = {}) {
  let now = 1_800_000_000_000;
  const { logger, lines } = capturingLogger();
  const asked: Record<string, unknown>[] = [];
  // Plays the API server: the ServiceAccounts in `accounts` exist; `down` makes it fail.
  const server = { accounts: new Set(['team-a/ci']), down: false };
  const post = async (body: Record<string, unknown>) => {
    asked.push(body);
    if (server.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const token = (body.spec as { token: string }).token;
    const sub = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).sub as string;
    const [, , ns, name] = sub.split(':');
    return server.accounts.has(`${ns}/${name}`)
      ? { status: { authenticated: true, audiences: [audience], user: { username: sub } } }
      : { status: { authenticated: false, error: 'service account deleted' } };
  };
  const metrics = createTokenMetrics();
  const reviewer = new TokenReviewer({
    audience,
    post,
    clock: { now: () => now },
    logger,
    metrics,
    boundMs: 30_000,
    ...options,
  });
  const token = (sa: string, lifetimeS = 3600) =>
    jwt({
      aud: [audience],
      exp: Math.floor(now / 1000) + lifetimeS,
      sub: `system:serviceaccount:${sa.replace('/', ':')}`,
    });
  return { reviewer, asked, server, lines, metrics, token, advance: (ms: number) => (now += ms) };
}

describe('TokenReviewer', () => {
  it('asks the API server for our audience and keeps the decision for the bound', async () => {
    const { reviewer, asked, token, advance } = setup();
    const t = token('team-a/ci');
    expect(await reviewer.review(t)).toEqual({
      ok: true,
      serviceAccount: { namespace: 'team-a', name: 'ci' },
    });
    expect(asked).toEqual([
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token: t, audiences: [audience] },
      },
    ]);
    advance(29_999);
    await reviewer.review(t);
    expect(asked).toHaveLength(1);
    advance(1);
    await reviewer.review(t);
    expect(asked).toHaveLength(2);
  });

  it('notices a deleted ServiceAccount once the bound has passed', async () => {
    const { reviewer, server, token, advance } = setup();
    const t = token('team-a/ci');
    expect((await reviewer.review(t)).ok).toBe(true);
    server.accounts.delete('team-a/ci');
    expect((await reviewer.review(t)).ok).toBe(true); // kept decision
    advance(30_000);
    expect(await reviewer.review(t)).toEqual({ ok: false, reason: 'unauthenticated' });
  });

  it('keeps a decision no longer than the token lives', async () => {
    const { reviewer, asked, token, advance } = setup();
    const t = token('team-a/ci', 10);
    await reviewer.review(t);
    advance(10_000);
    expect(await reviewer.review(t)).toEqual({ ok: false, reason: 'expired' });
    expect(asked).toHaveLength(1);
  });

  it('keeps negative decisions too', async () => {
    const { reviewer, asked, token } = setup();
    const t = token('team-z/gone');
    expect(await reviewer.review(t)).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(await reviewer.review(t)).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(asked).toHaveLength(1);
  });

  it('refuses what cannot pass without asking', async () => {
    const { reviewer, asked, advance } = setup();
    expect(await reviewer.review('not-a-jwt')).toEqual({ ok: false, reason: 'not-a-token' });
    expect(await reviewer.review(jwt({ aud: ['https://kubernetes.default.svc'], exp: 2e9 }))).toEqual({
      ok: false,
      reason: 'wrong-audience',
    });
    advance(0);
    expect(await reviewer.review(jwt({ aud: [audience], exp: 1 }))).toEqual({ ok: false, reason: 'expired' });
    expect(asked).toHaveLength(0);
  });

  it('fails closed when the API server does not answer, keeps nothing, counts it and never logs the token', async () => {
    const { reviewer, server, asked, token, lines, metrics } = setup();
    const t = token('team-a/ci');
    server.down = true;
    expect(await reviewer.review(t)).toEqual({ ok: false, reason: 'unavailable' });
    server.down = false;
    expect((await reviewer.review(t)).ok).toBe(true);
    expect(asked).toHaveLength(2);
    expect(lines.join('')).toContain('"status":"ECONNREFUSED"');
    expect(lines.join('')).not.toContain(t.split('.')[1]);
    expect(await metrics.registry.getSingleMetricAsString('berth_token_reviews_total')).toContain(
      'berth_token_reviews_total{result="error"} 1',
    );
  });

  it('shares one review between concurrent requests for the same token', async () => {
    const { reviewer, asked, token } = setup();
    const t = token('team-a/ci');
    const all = await Promise.all([reviewer.review(t), reviewer.review(t), reviewer.review(t)]);
    expect(all.every((o) => o.ok)).toBe(true);
    expect(asked).toHaveLength(1);
  });

  it('keeps at most maxEntries decisions, dropping the oldest', async () => {
    const { reviewer, asked, token } = setup({ maxEntries: 2 });
    const [a, b, c] = ['team-a/a', 'team-a/b', 'team-a/c'].map((sa) => token(sa));
    for (const t of [a, b, c]) await reviewer.review(t as string);
    expect(reviewer.size).toBe(2);
    await reviewer.review(c as string);
    expect(asked).toHaveLength(3);
    await reviewer.review(a as string);
    expect(asked).toHaveLength(4);
  });
});
