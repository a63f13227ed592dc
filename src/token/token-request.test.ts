import { describe, expect, it } from '@jest/globals';
import { hashSecret } from '../credentials/secret.ts';
import { compileCredentialStore } from '../credentials/store.ts';
import {
  basicCredentials,
  decideRequest,
  identify,
  issuedAnswer,
  refusal,
  refusalAnswer,
  type TokenRequestInput,
} from './token-request.ts';

const service = 'main.registry-system';
const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
const get = (query: string, authorization?: string): TokenRequestInput => ({
  method: 'GET',
  params: new URLSearchParams(query),
  ...(authorization === undefined ? {} : { authorization }),
});
const post = (form: string): TokenRequestInput => ({ method: 'POST', params: new URLSearchParams(form) });

describe('decideRequest', () => {
  it.each<[string, TokenRequestInput, string | { username: string; password: string } | undefined]>([
    ['anonymous, no service named', get('scope=repository:a/b:pull'), undefined],
    ['Basic credentials', get(`service=${service}`, basic('u:p:q')), { username: 'u', password: 'p:q' }],
    ['another service', get('service=other', basic('u:p')), 'unknown-service'],
    ['a service refused before malformed credentials', get('service=other', 'Bearer x'), 'unknown-service'],
    ['not Basic', get('', 'Bearer x'), 'bad-request'],
    ['a blank Authorization header is not anonymous', get('', ''), 'bad-request'],
    ['Basic without a colon', get('', basic('user')), 'bad-request'],
    ['Basic with an empty username', get('', basic(':p')), 'bad-request'],
    ['a malformed scope', get('scope=nonsense', basic('u:p')), 'bad-request'],
    [
      'OAuth2 password grant',
      post('grant_type=password&username=u&password='),
      { username: 'u', password: '' },
    ],
    ['OAuth2 refresh grant', post('grant_type=refresh_token&refresh_token=x'), 'unsupported-grant'],
    ['OAuth2 without a username', post('grant_type=password&password=p'), 'bad-request'],
    ['OAuth2 without a password', post('grant_type=password&username=u'), 'bad-request'],
    [
      'OAuth2 ignores the Basic header',
      { ...post('grant_type=password&username=u&password=p'), authorization: 'x' },
      { username: 'u', password: 'p' },
    ],
  ])('%s', (_name, request, expected) => {
    const d = decideRequest(request, service);
    if (typeof expected === 'string') expect('refusal' in d && d.refusal.reason).toBe(expected);
    else expect(d).toMatchObject({ credentials: expected });
  });

  it('names both services when refusing another one, the asked one cut short', () => {
    const d = decideRequest(get(`service=${'x'.repeat(300)}`), service);
    expect('refusal' in d && d.refusal.message).toBe(
      `unknown service "${'x'.repeat(200)}"; this token service serves "${service}"`,
    );
  });
});

describe('identify', () => {
  const now = new Date('2026-11-24T09:00:00Z');
  const store = (anonymousPull: boolean) =>
    compileCredentialStore({
      version: 1,
      anonymousPull,
      credentials: [
        { username: 'team', secretHash: hashSecret('s'), grants: [] },
        { username: 'old', secretHash: hashSecret('o'), grants: [], notAfter: '2026-11-24T08:00:00Z' },
      ],
    });
  it.each<[string, boolean, { username: string; password: string } | undefined, string, string | undefined]>([
    ['the right secret', false, { username: 'team', password: 's' }, 'credential', undefined],
    ['the wrong secret', false, { username: 'team', password: 'x' }, 'wrong-secret', 'team'],
    ['an unknown user', false, { username: 'nobody', password: 's' }, 'unknown-user', 'nobody'],
    ['an expired credential', false, { username: 'old', password: 'o' }, 'expired', 'old'],
    [
      'credentials are checked even where anonymous pulls are allowed',
      true,
      { username: 'team', password: 'x' },
      'wrong-secret',
      'team',
    ],
    ['nobody, anonymous pulls allowed', true, undefined, 'anonymous', undefined],
    ['nobody, anonymous pulls not allowed', false, undefined, 'no-credentials', undefined],
  ])('%s', (_name, anonymousPull, credentials, expected, subject) => {
    const who = identify(store(anonymousPull), credentials, now);
    if ('principal' in who) expect(who.principal.kind).toBe(expected);
    else expect({ reason: who.refusal.reason, subject: who.subject }).toEqual({ reason: expected, subject });
  });
});

describe('refusalAnswer', () => {
  it.each<[string, ReturnType<typeof refusal>, boolean, Record<string, unknown>]>([
    [
      '401 asks for Basic credentials',
      refusal('wrong-secret'),
      false,
      {
        status: 401,
        headers: { 'content-type': 'application/json', 'www-authenticate': `Basic realm="${service}"` },
        body: { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] },
      },
    ],
    [
      '400 for OAuth2 adds error and error_description',
      refusal('unsupported-grant'),
      true,
      {
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: {
          errors: [{ code: 'UNSUPPORTED', message: 'only grant_type=password is supported' }],
          error: 'unsupported_grant_type',
          error_description: 'only grant_type=password is supported',
        },
      },
    ],
  ])('%s', (_name, r, oauth, expected) => {
    expect(refusalAnswer(r, service, oauth)).toEqual(expected);
  });
});

describe('issuedAnswer', () => {
  const now = new Date('2026-11-24T09:00:00.400Z');
  const signed = { token: 't', jti: 'j', expiresAt: new Date('2026-11-24T09:05:00Z') };
  const decision = { access: [{ type: 'repository', name: 'a/b', actions: ['pull', 'push'] }], refused: [] };
  it.each<[string, boolean, Record<string, unknown>]>([
    [
      'Distribution',
      false,
      { token: 't', access_token: 't', expires_in: 300, issued_at: '2026-11-24T09:00:00.000Z' },
    ],
    [
      'OAuth2 with the granted scope',
      true,
      {
        token: 't',
        access_token: 't',
        expires_in: 300,
        issued_at: '2026-11-24T09:00:00.000Z',
        scope: 'repository:a/b:pull,push',
      },
    ],
  ])('%s', (_name, oauth, body) => {
    expect(issuedAnswer(signed, now, decision, oauth)).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
      body,
    });
  });
});

describe('basicCredentials', () => {
  it.each<[string, string | undefined, unknown]>([
    ['absent', undefined, undefined],
    ['lower-case scheme', `basic ${Buffer.from('u:p').toString('base64')}`, { username: 'u', password: 'p' }],
    ['no value', 'Basic', 'malformed'],
  ])('%s', (_name, header, expected) => {
    expect(basicCredentials(header)).toEqual(expected);
  });
});
