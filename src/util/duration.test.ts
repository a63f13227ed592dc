import { describe, expect, it } from '@jest/globals';
import { formatDuration, parseDuration } from './duration.ts';

describe('parseDuration', () => {
  it.each([
    ['2160h', 2160 * 3_600_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    ['0', 0],
    ['1h0m0s', 3_600_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'h', '10', '10d', '1h 30m', '-1h', 'abc'])('rejects %j', (text) =>
    expect(() => parseDuration(text)).toThrow(/not a duration/),
  );
});

describe('formatDuration', () => {
  it.each([
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [90_000, '1m30s'],
    [0, '0s'],
  ])('%d', (ms, text) => expect(formatDuration(ms)).toBe(text));
});
