// The error of a failed API request, with the HTTP status and the Status the server answered.

/** A failed API request: `code` is the HTTP status, `body` the response (a Status, as text). */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly code: number;
  readonly body: string;

  constructor(code: number, message: string, body: string) {
    super(message);
    this.code = code;
    this.body = body;
  }
}

/** The KubeApiError of a failed request, with the Status's message when the body is one. */
export function apiError(method: string, url: URL, status: number, text: string): KubeApiError {
  let message = text;
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    // not JSON
  }
  return new KubeApiError(status, `${method} ${url.pathname}: ${status}: ${message}`, text);
}
