import { describe, expect, test } from '@jest/globals';
import { RecheckQueue } from './recheck-queue.ts';

const drain = (q: RecheckQueue, isCurrent = () => true) => {
  const out: string[] = [];
  for (let r = q.peek(isCurrent); r; r = q.peek(isCurrent)) out.push(`${q.pop()!.namespace}@${r.at}`);
  return out;
};

describe('RecheckQueue: recheck times, soonest first', () => {
  test.each([
    ['empty', [], []],
    ['one', [[5, 'a']], ['a@5']],
    [
      'in order of time, whatever the order pushed',
      [
        [30, 'c'],
        [10, 'a'],
        [20, 'b'],
        [5, 'z'],
        [25, 'y'],
      ],
      ['z@5', 'a@10', 'b@20', 'y@25', 'c@30'],
    ],
    [
      'equal times are all kept',
      [
        [10, 'a'],
        [10, 'b'],
        [5, 'c'],
      ],
      ['c@5', expect.stringMatching(/@10$/), expect.stringMatching(/@10$/)],
    ],
  ] as [string, [number, string][], unknown[]][])('%s', (_name, pushed, want) => {
    const q = new RecheckQueue();
    for (const [at, ns] of pushed) q.push(at, ns);
    expect(drain(q)).toEqual(want);
  });

  test('peek drops the stale entries above the soonest current one', () => {
    const q = new RecheckQueue();
    q.push(1, 'old');
    q.push(2, 'moved');
    q.push(3, 'kept');
    q.push(4, 'moved');
    const current = (r: { at: number; namespace: string }) => r.namespace === 'kept' || r.at === 4;
    expect(q.peek(current)).toEqual({ at: 3, namespace: 'kept' });
    expect(q.size).toBe(2);
    expect(drain(q, current as () => boolean)).toEqual(['kept@3', 'moved@4']);
  });

  test('rebuild replaces every entry', () => {
    const q = new RecheckQueue();
    for (let i = 0; i < 10; i++) q.push(i, `n${i}`);
    q.rebuild([
      { at: 7, namespace: 'x' },
      { at: 3, namespace: 'y' },
    ]);
    expect(drain(q)).toEqual(['y@3', 'x@7']);
  });

  test('many random times come out sorted', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const q = new RecheckQueue();
    const times = Array.from({ length: 500 }, () => rand() % 1000);
    times.forEach((t, i) => q.push(t, `n${i}`));
    const out: number[] = [];
    for (let r = q.pop(); r; r = q.pop()) out.push(r.at);
    expect(out).toEqual([...times].sort((a, b) => a - b));
  });
});
