// Which of the token service's routes a request is for, and how `/token` reads its parameters:
// pure decisions on the path, the method and the content type (server.ts does the I/O).

/** A JSON answer decided before any handler runs. */
export interface JsonAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type Route = 'token' | 'health' | 'metrics' | 'not-found';

/**
 * The route of `pathname` on a listener that serves `/token` (the main one) or not (the health
 * listener), and `/metrics` or not. `/readyz` is `/healthz`.
 */
export function routeOf(pathname: string, serves: { token: boolean; metrics: boolean }): Route {
  if (serves.token && pathname === '/token') return 'token';
  if (pathname === '/healthz' || pathname === '/readyz') return 'health';
  if (serves.metrics && pathname === '/metrics') return 'metrics';
  return 'not-found';
}

/**
 * Where `/token` finds its parameters: the query (GET), the OAuth2 form (POST of
 * application/x-www-form-urlencoded), or the refusal (415 for another body, 405 for another method).
 */
export function tokenParamsSource(
  method: string | undefined,
  contentType: string | undefined,
): 'query' | 'form' | JsonAnswer {
  if (method === 'GET') return 'query';
  if (method !== 'POST')
    return {
      status: 405,
      body: { errors: [{ code: 'UNSUPPORTED', message: 'use GET or POST' }] },
      headers: { allow: 'GET, POST' },
    };
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    return {
      status: 415,
      body: {
        error: 'invalid_request',
        error_description: 'expected an application/x-www-form-urlencoded form',
      },
    };
  return 'form';
}

/** The answer to a form past the size limit. */
export const formTooLarge: JsonAnswer = {
  status: 413,
  body: { error: 'invalid_request', error_description: 'request body too large' },
};
