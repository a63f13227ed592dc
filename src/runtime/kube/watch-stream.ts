// Reading a watch response: the stream is JSON, one event a line. A non-200 answer rejects with
// its Status; an ERROR event (410 Gone: "relist"), a line that is not JSON, or an onEvent that
// throws ends the watch.
import type { IncomingMessage } from 'node:http';
import { apiError, KubeApiError } from './api-error.ts';

/** What a watch line holds (client.ts's WatchEvent). */
interface WatchLine {
  type: string;
  object: unknown;
}

/** The complete, non-blank lines of `buffered`, and what follows the last newline. Pure. */
export function splitLines(buffered: string): { lines: string[]; rest: string } {
  const lines: string[] = [];
  let start = 0;
  for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n', start)) {
    const line = buffered.slice(start, nl);
    start = nl + 1;
    if (line.trim()) lines.push(line);
  }
  return { lines, rest: buffered.slice(start) };
}

/** The error an ERROR event carries (its Status's code, 500 without one); undefined for others. Pure. */
export function watchEventError(event: WatchLine, line: string, url: URL): KubeApiError | undefined {
  if (event.type !== 'ERROR') return undefined;
  const st = event.object as { code?: number; message?: string };
  return new KubeApiError(st.code ?? 500, `WATCH ${url.pathname}: ${st.code}: ${st.message}`, line);
}

/** How a watch ends: resolved, rejected, or failed (rejected and the request destroyed). */
export interface WatchEnd {
  resolve(): void;
  reject(err: Error): void;
  fail(err: Error): void;
  /** The watch's signal aborted: errors of the stream then end it quietly. */
  aborted(): boolean;
}

/** Reads a watch response: its events to `onEvent` until the stream ends or fails. */
export function readWatchResponse<E extends WatchLine>(
  res: IncomingMessage,
  url: URL,
  onEvent: (event: E) => void,
  end: WatchEnd,
): void {
  res.setEncoding('utf8');
  if ((res.statusCode ?? 0) !== 200) return readRefusal(res, url, end);
  let buffered = '';
  let failed = false;
  res.on('data', (chunk: string) => {
    if (failed) return;
    const { lines, rest } = splitLines(buffered + chunk);
    buffered = rest;
    for (const line of lines) {
      const err = dispatch(line, url, onEvent);
      if (err) {
        failed = true;
        return end.fail(err);
      }
    }
  });
  res.on('end', () => end.resolve());
  res.on('error', (err) => (end.aborted() ? end.resolve() : end.reject(err)));
  res.on('aborted', () =>
    end.aborted() ? end.resolve() : end.reject(new Error(`WATCH ${url.pathname}: aborted`)),
  );
}

/** One line to `onEvent`; the error that ends the watch, if it does. */
function dispatch<E extends WatchLine>(
  line: string,
  url: URL,
  onEvent: (event: E) => void,
): Error | undefined {
  let event: E;
  try {
    event = JSON.parse(line) as E;
  } catch {
    // A line that is not JSON (a proxy's error page, a cut stream) ends this watch; the informer
    // watches again from its last resourceVersion. Thrown here, it would escape the stream's data
    // handler and end the process.
    return new Error(`WATCH ${url.pathname}: a line that is not JSON (${line.length} bytes)`);
  }
  const refused = watchEventError(event, line, url);
  if (refused) return refused;
  try {
    onEvent(event);
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

/** A watch the server refused: rejects with its Status once the body is read. */
function readRefusal(res: IncomingMessage, url: URL, end: WatchEnd): void {
  let text = '';
  res.on('data', (c: string) => (text += c));
  res.on('end', () => end.reject(apiError('GET', url, res.statusCode ?? 0, text)));
  res.on('error', (err) => end.reject(err));
}
