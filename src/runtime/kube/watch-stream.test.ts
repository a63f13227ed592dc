import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { KubeApiError } from './api-error.ts';
import { encodeBody, requestHeaders } from './client.ts';
import { readWatchResponse, splitLines, watchEventError } from './watch-stream.ts';

describe('splitLines', () => {
  test.each([
    ['nothing', '', [], ''],
    ['a partial line waits', '{"type":"ADD', [], '{"type":"ADD'],
    ['one line', 'a\n', ['a'], ''],
    ['lines and a rest', 'a\nb\nc', ['a', 'b'], 'c'],
    ['blank lines skipped', '\n  \na\n\n', ['a'], ''],
  ])('%s', (_what, buffered, lines, rest) => {
    expect(splitLines(buffered)).toEqual({ lines, rest });
  });
});

describe('watchEventError', () => {
  const url = new URL('https://api.example/api/v1/pods?watch=1');
  test('an ordinary event is no error', () => {
    expect(watchEventError({ type: 'ADDED', object: {} }, '{}', url)).toBeUndefined();
  });
  test.each([
    [
      '410 Gone',
      { code: 410, message: 'too old resource version' },
      410,
      'WATCH /api/v1/pods: 410: too old resource version',
    ],
    ['no code', { message: 'odd' }, 500, 'WATCH /api/v1/pods: undefined: odd'],
  ])('ERROR with %s', (_what, object, code, message) => {
    const err = watchEventError({ type: 'ERROR', object }, 'the line', url);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ code, message, body: 'the line' });
  });
});

describe('request bodies and headers', () => {
  test.each([
    ['none', undefined, undefined],
    ['a string as is', 'a: b', 'a: b'],
    ['an object as JSON', { a: 1 }, '{"a":1}'],
  ])('%s', (_what, body, encoded) => {
    expect(encodeBody(body)).toBe(encoded);
  });
  test.each([
    ['no body', undefined, undefined, { authorization: 'x', accept: 'application/json' }],
    [
      'a JSON body',
      '{"a":1}',
      undefined,
      {
        authorization: 'x',
        accept: 'application/json',
        'content-type': 'application/json',
        'content-length': '7',
      },
    ],
    [
      'an apply patch, length in bytes',
      'é',
      'application/apply-patch+yaml',
      {
        authorization: 'x',
        accept: 'application/json',
        'content-type': 'application/apply-patch+yaml',
        'content-length': '2',
      },
    ],
  ])('%s', (_what, body, contentType, expected) => {
    expect(requestHeaders({ authorization: 'x', accept: '*/*' }, body, contentType)).toEqual(expected);
  });
});

describe('readWatchResponse', () => {
  const url = new URL('https://api/apis/berth.dev/v1alpha1/registries?watch=1');
  const start = () => {
    const res = Object.assign(new PassThrough(), { statusCode: 200 }) as unknown as IncomingMessage;
    const events: unknown[] = [];
    const ended: { failed?: Error; resolved?: boolean } = {};
    readWatchResponse(res, url, (e) => events.push(e), {
      resolve: () => (ended.resolved = true),
      reject: (err) => (ended.failed = err),
      fail: (err) => (ended.failed = err),
      aborted: () => false,
    });
    return { res: res as unknown as PassThrough, events, ended };
  };

  test('events across chunks, in order', () => {
    const { res, events, ended } = start();
    res.write('{"type":"ADDED","object":{"a":1}}\n{"type":"MOD');
    res.write('IFIED","object":{"a":2}}\n');
    expect(events).toEqual([
      { type: 'ADDED', object: { a: 1 } },
      { type: 'MODIFIED', object: { a: 2 } },
    ]);
    expect(ended.failed).toBeUndefined();
  });

  test('a line that is not JSON ends the watch with an error, and nothing throws', () => {
    const { res, events, ended } = start();
    expect(() =>
      res.write('{"type":"ADDED","object":{}}\n<html>502 Bad Gateway</html>\n{"type":"ADDED","object":{}}\n'),
    ).not.toThrow();
    expect(events).toHaveLength(1);
    expect(ended.failed?.message).toMatch(/not JSON/);
    expect(ended.failed?.message).not.toContain('Bad Gateway'); // the line's size, not its text
  });
});
