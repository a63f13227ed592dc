import { describe, expect, it } from '@jest/globals';
import { racyMarginMs, unchangedSince, type FileStamp, type StampRecord } from './store-stamps.ts';

const readAtMs = 1_000_000;
const old: FileStamp = { key: 'd:1:10:a:a', changedAtMs: readAtMs - racyMarginMs - 1 };
const record = (stamps: [string, FileStamp | undefined][]): StampRecord => ({
  readAtMs,
  stamps: new Map(stamps),
});

describe('unchangedSince', () => {
  it.each<[string, StampRecord | undefined, [string, FileStamp | undefined][], boolean]>([
    ['nothing read yet', undefined, [['a', old]], false],
    [
      'the same stamps, changed well before the read',
      record([
        ['a', old],
        ['b', old],
      ]),
      [
        ['a', old],
        ['b', old],
      ],
      true,
    ],
    [
      'another stamp (a write, a new inode)',
      record([['a', old]]),
      [['a', { ...old, key: 'd:2:10:b:b' }]],
      false,
    ],
    [
      'the same stamp, but changed within the margin before the read (a second write may share it)',
      record([['a', { ...old, changedAtMs: readAtMs - racyMarginMs + 1 }]]),
      [['a', { ...old, changedAtMs: readAtMs - racyMarginMs + 1 }]],
      false,
    ],
    [
      'the same stamp, changed exactly the margin before the read',
      record([['a', { ...old, changedAtMs: readAtMs - racyMarginMs }]]),
      [['a', { ...old, changedAtMs: readAtMs - racyMarginMs }]],
      true,
    ],
    [
      'missing then and now',
      record([
        ['a', old],
        ['b', undefined],
      ]),
      [
        ['a', old],
        ['b', undefined],
      ],
      true,
    ],
    ['missing then, there now (a shard appeared)', record([['b', undefined]]), [['b', old]], false],
    ['there then, missing now', record([['a', old]]), [['a', undefined]], false],
    ['another set of files', record([['a', old]]), [['b', old]], false],
    [
      'more files now',
      record([['a', old]]),
      [
        ['a', old],
        ['b', old],
      ],
      false,
    ],
  ])('%s', (_name, before, now, expected) => {
    expect(unchangedSince(before, new Map(now))).toBe(expected);
  });
});
