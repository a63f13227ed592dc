import { describe, expect, it } from '@jest/globals';
import {
  judgeReview,
  keepUntil,
  precheck,
  serviceAccountOfUser,
  unverifiedClaims,
} from './service-account-token.ts';

const jwt = (payload: unknown) =>
  ['{"alg":"RS256"}', JSON.stringify(payload), 'sig']
    .map((p) => Buffer.from(p).toString('base64url'))
    .join('.');
const audience = 'berth.dev/registry-system/main';
const now = 1_800_000_000_000;

describe('unverifiedClaims and precheck', () => {
  it.each([
    { name: 'a token for us', token: jwt({ aud: [audience], exp: now / 1000 + 600 }), want: undefined },
    { name: 'a single audience string', token: jwt({ aud: audience, exp: now / 1000 + 1 }), want: undefined },
    {
      name: 'another audience',
      token: jwt({ aud: ['https://kubernetes.default.svc'], exp: now / 1000 + 600 }),
      want: 'wrong-audience',
    },
    { name: 'no audience', token: jwt({ exp: now / 1000 + 600 }), want: 'wrong-audience' },
    { name: 'expired', token: jwt({ aud: [audience], exp: now / 1000 }), want: 'expired' },
    { name: 'a password', token: 'hunter2', want: 'not-a-token' },
    { name: 'a payload that is not JSON', token: 'a.b.c', want: 'not-a-token' },
    {
      name: 'a payload that is JSON but no object',
      token: jwt(42).replace(/^[^.]+/, 'e30'),
      want: 'not-a-token',
    },
    { name: 'too long', token: jwt({ aud: [audience], pad: 'x'.repeat(20_000) }), want: 'not-a-token' },
  ])('$name', ({ token, want }) => expect(precheck(unverifiedClaims(token), audience, now)).toBe(want));
});

describe('judgeReview', () => {
  const answer = (status: unknown) => ({ kind: 'TokenReview', status });
  it.each([
    {
      name: 'authenticated for our audience',
      status: {
        authenticated: true,
        audiences: [audience],
        user: { username: 'system:serviceaccount:team-a:ci' },
      },
      want: { authenticated: true, serviceAccount: { namespace: 'team-a', name: 'ci' } },
    },
    {
      name: 'authenticated, but not for our audience',
      status: {
        authenticated: true,
        audiences: ['other'],
        user: { username: 'system:serviceaccount:team-a:ci' },
      },
      want: { authenticated: false, reason: 'wrong-audience' },
    },
    {
      name: 'authenticated without audiences',
      status: { authenticated: true, user: { username: 'system:serviceaccount:team-a:ci' } },
      want: { authenticated: false, reason: 'wrong-audience' },
    },
    {
      name: 'a person, not a ServiceAccount',
      status: { authenticated: true, audiences: [audience], user: { username: 'alice' } },
      want: { authenticated: false, reason: 'not-a-service-account' },
    },
    {
      name: 'unauthenticated',
      status: { authenticated: false, error: 'token has been invalidated' },
      want: { authenticated: false, reason: 'unauthenticated' },
    },
    { name: 'no status', status: undefined, want: { authenticated: false, reason: 'unauthenticated' } },
  ])('$name', ({ status, want }) => expect(judgeReview(answer(status), audience)).toEqual(want));

  it('judges garbage as unauthenticated', () => {
    expect(judgeReview(null, audience)).toEqual({ authenticated: false, reason: 'unauthenticated' });
    expect(judgeReview('x', audience)).toEqual({ authenticated: false, reason: 'unauthenticated' });
  });
});

describe('serviceAccountOfUser', () => {
  it.each([
    ['system:serviceaccount:team-a:ci', { namespace: 'team-a', name: 'ci' }],
    ['system:serviceaccount:team-a', undefined],
    ['system:serviceaccount:team-a:ci:x', undefined],
    ['system:serviceaccount::ci', undefined],
    ['system:node:n1', undefined],
  ])('%s', (user, want) => expect(serviceAccountOfUser(user)).toEqual(want));
});

describe('keepUntil', () => {
  it('keeps a decision until the bound, or the expiry when it comes first', () => {
    expect(keepUntil({ audiences: [], expiresAt: now + 3600_000 }, now, 30_000)).toBe(now + 30_000);
    expect(keepUntil({ audiences: [], expiresAt: now + 5_000 }, now, 30_000)).toBe(now + 5_000);
    expect(keepUntil({ audiences: [] }, now, 30_000)).toBe(now + 30_000);
  });
});
