// The report encoded one entry at a time: the inline/gzipped boundary is exact, entries are read in
// one pass from any iterable (a generator: nothing is collected first), and a large report fills
// its parts (series of gzip members) up to the limit, reading back to the same entries.
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, test } from '@jest/globals';
import type { PlanEntry } from './model.ts';
import { encodeEntries, GzipParts, inlineReportLimit } from './report.ts';

const entry = (i: number, reason = 'x'): PlanEntry => ({
  repository: `team-${i % 50}/app-${i % 1000}`,
  tag: `main-${i}`,
  digest: `sha256:${createHash('sha256').update(String(i)).digest('hex')}`,
  decision: i % 4 ? 'keep' : 'delete',
  rule: 'ci',
  reason,
});

function* generate(n: number, seen: { count: number }): Generator<PlanEntry> {
  for (let i = 0; i < n; i++) {
    seen.count++;
    yield entry(i, `number ${i} by push time, beyond the 10 most recent`);
  }
}

const decoded = (parts: Buffer[]) =>
  parts.flatMap((p) => JSON.parse(gunzipSync(p).toString()) as PlanEntry[]);

describe('encodeEntries', () => {
  const some = Array.from({ length: 50 }, (_, i) => entry(i, 'x'.repeat(100)));
  const text = JSON.stringify(some);
  test.each<[string, number, 'inline' | 'gzipped']>([
    ['exactly the limit: inline', Buffer.byteLength(text), 'inline'],
    ['one byte less than the text: gzipped', Buffer.byteLength(text) - 1, 'gzipped'],
  ])('%s', (_name, limit, kind) => {
    const encoded = encodeEntries(some, limit);
    expect(Object.keys(encoded)).toEqual([kind]);
    if ('inline' in encoded) expect(encoded.inline).toBe(text);
    else expect(decoded(encoded.gzipped)).toEqual(some);
  });

  test('no entries: an empty inline array', () => expect(encodeEntries([])).toEqual({ inline: '[]' }));

  test('100,000 entries from a generator, read once, into full parts under the limit', () => {
    const seen = { count: 0 };
    const encoded = encodeEntries(generate(100_000, seen));
    expect(seen.count).toBe(100_000);
    if (!('gzipped' in encoded)) throw new Error('expected gzipped parts');
    const parts = encoded.gzipped;
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(inlineReportLimit);
    const total = parts.reduce((n, p) => n + p.length, 0);
    expect(parts.length).toBeLessThanOrEqual(Math.ceil(total / (inlineReportLimit * 0.9)));
    const back = decoded(parts);
    expect(back).toHaveLength(100_000);
    expect(back[99_999]).toEqual(entry(99_999, 'number 99999 by push time, beyond the 10 most recent'));
  });
});

describe('GzipParts', () => {
  test('a part is several gzip members that read as one JSON array', () => {
    const parts = new GzipParts(64 * 1024);
    for (let i = 0; i < 5000; i++) parts.add(entry(i));
    const out = parts.finish();
    expect(out.length).toBeGreaterThan(1);
    // gzip members each start with the magic bytes 1f 8b: more than one per part
    const members = (b: Buffer) => b.toString('hex').match(/1f8b0800/g)?.length ?? 0;
    expect(members(out[0] ?? Buffer.alloc(0))).toBeGreaterThan(2);
    expect(decoded(out)).toEqual(Array.from({ length: 5000 }, (_, i) => entry(i)));
  });

  test('an entry larger than a part on its own is refused', () => {
    const random = Array.from({ length: 100 }, (_, i) =>
      createHash('sha512').update(`r${i}`).digest('base64'),
    ).join('');
    const parts = new GzipParts(1024);
    expect(() => {
      parts.add(entry(1, random));
      parts.finish();
    }).toThrow(/one report entry is larger than 1024 bytes gzipped/);
  });
});
