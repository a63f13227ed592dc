import { describe, expect, it } from '@jest/globals';
import { routeOf, tokenParamsSource, type Route } from './routes.ts';

describe('routeOf', () => {
  const main = { token: true, metrics: true };
  const mainWithoutMetrics = { token: true, metrics: false };
  const health = { token: false, metrics: true };
  it.each<[string, string, { token: boolean; metrics: boolean }, Route]>([
    ['the token on the main listener', '/token', main, 'token'],
    ['no token on the health listener', '/token', health, 'not-found'],
    ['health', '/healthz', mainWithoutMetrics, 'health'],
    ['readiness is health', '/readyz', health, 'health'],
    ['metrics where served', '/metrics', main, 'metrics'],
    ['metrics elsewhere', '/metrics', mainWithoutMetrics, 'not-found'],
    ['a sub-path is not the route', '/token/x', main, 'not-found'],
    ['the root', '/', main, 'not-found'],
  ])('%s', (_name, pathname, serves, expected) => {
    expect(routeOf(pathname, serves)).toBe(expected);
  });
});

describe('tokenParamsSource', () => {
  it.each<[string, string | undefined, string | undefined, unknown]>([
    ['GET reads the query', 'GET', undefined, 'query'],
    ['GET ignores the content type', 'GET', 'text/plain', 'query'],
    ['POST of a form', 'POST', 'application/x-www-form-urlencoded', 'form'],
    [
      'POST of a form with a charset, any case',
      'POST',
      'Application/X-WWW-Form-Urlencoded ; charset=utf-8',
      'form',
    ],
    ['POST of JSON', 'POST', 'application/json', { status: 415 }],
    ['POST without a content type', 'POST', undefined, { status: 415 }],
    ['PUT', 'PUT', 'application/x-www-form-urlencoded', { status: 405, headers: { allow: 'GET, POST' } }],
    ['no method', undefined, undefined, { status: 405 }],
  ])('%s', (_name, method, contentType, expected) => {
    const source = tokenParamsSource(method, contentType);
    if (typeof expected === 'string') expect(source).toBe(expected);
    else expect(source).toMatchObject(expected as object);
  });
});
