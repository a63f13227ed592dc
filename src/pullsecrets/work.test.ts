import { describe, expect, test } from '@jest/globals';
import { FanoutWork, recheckRequeueMs } from './work.ts';

const reg = 'registry-system/main';
const other = 'registry-system/other';

/** A FanoutWork that has done its first (full) pass for `reg` (and `other`) at generation 1. */
function settled(): FanoutWork {
  const w = new FanoutWork();
  w.take(reg, '1', 0);
  w.take(other, '1', 0);
  return w;
}

describe('FanoutWork: which namespaces a reconcile looks at', () => {
  test.each([
    ['the first reconcile of a Registry is a full pass', (w: FanoutWork) => w, '1', true, []],
    ['a settled Registry with no event looks at nothing', () => settled(), '1', false, []],
    [
      'a ServiceAccount event marks its namespace only',
      () => {
        const w = settled();
        w.markNamespace('team-a');
        return w;
      },
      '1',
      false,
      ['team-a'],
    ],
    [
      'a pull Secret of another Registry does not concern this one',
      () => {
        const w = settled();
        w.markNamespace('team-a', other);
        return w;
      },
      '1',
      false,
      [],
    ],
    [
      'a new generation (spec change) is a full pass',
      () => {
        const w = settled();
        w.markNamespace('team-a');
        return w;
      },
      '2',
      true,
      [],
    ],
    [
      'a resync is a full pass',
      () => {
        const w = settled();
        w.markAll(reg);
        return w;
      },
      '1',
      true,
      [],
    ],
    [
      'a namespace that failed is looked at again',
      () => {
        const w = settled();
        w.retry(reg, 'team-b');
        return w;
      },
      '1',
      false,
      ['team-b'],
    ],
    [
      'a namespace whose recheck time has come is looked at (rotation, foreign Secret)',
      () => {
        const w = settled();
        w.record(reg, 'due', { ready: true, recheckAt: 50 });
        w.record(reg, 'later', { ready: true, recheckAt: 500 });
        return w;
      },
      '1',
      false,
      ['due'],
    ],
  ] as const)('%s', (_name, build, generation, full, namespaces) => {
    const batch = build(new FanoutWork()).take(reg, generation, 100);
    expect(batch.full).toBe(full);
    expect([...batch.namespaces].sort()).toEqual(namespaces);
  });

  test('a batch is taken once: the next reconcile looks at nothing new', () => {
    const w = settled();
    w.markNamespace('team-a');
    expect([...w.take(reg, '1', 0).namespaces]).toEqual(['team-a']);
    expect([...w.take(reg, '1', 0).namespaces]).toEqual([]);
  });

  test('the next recheck is the earliest of the kept outcomes; forgetting a Registry drops them', () => {
    const w = settled();
    w.record(reg, 'a', { ready: true, recheckAt: 300 });
    w.record(reg, 'b', { ready: true, recheckAt: 200 });
    w.record(reg, 'c', { ready: false });
    expect(w.nextRecheck(reg)).toBe(200);
    w.record(reg, 'b', undefined);
    expect(w.nextRecheck(reg)).toBe(300);
    w.forget(reg);
    expect(w.outcomes(reg).size).toBe(0);
    expect(w.take(reg, '1', 0).full).toBe(true);
  });
});

describe('recheckRequeueMs: the requeue at the earliest recheck', () => {
  test.each([
    ['no recheck', undefined, 10_000, undefined],
    ['a recheck ahead', 70_000, 10_000, 60_000],
    ['a recheck less than a second ahead waits a second', 10_500, 10_000, 1000],
    ['a recheck already past waits a second', 5_000, 10_000, 1000],
  ])('%s', (_name, next, now, want) => {
    expect(recheckRequeueMs(next, now)).toBe(want);
  });
});

describe('FanoutWork: the recheck queue answers as a scan of every kept outcome would', () => {
  /** The reference: what take (besides dirty namespaces) and nextRecheck were, by a scan. */
  const scanDue = (w: FanoutWork, now: number) =>
    [...w.outcomes(reg)].filter(([, o]) => o.recheckAt !== undefined && o.recheckAt <= now).map(([ns]) => ns);
  const scanNext = (w: FanoutWork) => {
    const times = [...w.outcomes(reg).values()].flatMap((o) =>
      o.recheckAt === undefined ? [] : [o.recheckAt],
    );
    return times.length ? Math.min(...times) : undefined;
  };

  test('over random records, removals and takes', () => {
    let seed = 42;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const w = settled();
    let now = 0;
    for (let i = 0; i < 5000; i++) {
      const ns = `ns-${rand(40)}`;
      const op = rand(10);
      if (op < 5) w.record(reg, ns, { ready: true, recheckAt: now + rand(200) });
      else if (op < 6) w.record(reg, ns, { ready: false });
      else if (op < 7) w.record(reg, ns, undefined);
      else if (op < 8)
        w.record(reg, ns, { ready: true, recheckAt: w.outcomes(reg).get(ns)?.recheckAt ?? now });
      else {
        now += rand(50);
        const want = scanDue(w, now).sort();
        expect([...w.take(reg, '1', now).namespaces].sort()).toEqual(want);
      }
      expect(w.nextRecheck(reg)).toBe(scanNext(w));
    }
  });

  test('a due namespace that is not written again stays due', () => {
    const w = settled();
    w.record(reg, 'a', { ready: true, recheckAt: 10 });
    expect([...w.take(reg, '1', 20).namespaces]).toEqual(['a']);
    expect([...w.take(reg, '1', 30).namespaces]).toEqual(['a']);
    expect(w.nextRecheck(reg)).toBe(10);
  });

  test('a recheck that moved is due at its new time only', () => {
    const w = settled();
    w.record(reg, 'a', { ready: true, recheckAt: 10 });
    w.record(reg, 'a', { ready: true, recheckAt: 100 });
    expect([...w.take(reg, '1', 50).namespaces]).toEqual([]);
    expect(w.nextRecheck(reg)).toBe(100);
    w.record(reg, 'a', { ready: true, recheckAt: 10 });
    expect([...w.take(reg, '1', 50).namespaces]).toEqual(['a']);
  });
});

test('FanoutWork: many moves of a recheck behind an earlier one (the queue is rebuilt) keep the answers', () => {
  const w = settled();
  w.record(reg, 'a', { ready: true, recheckAt: 1 });
  for (let i = 0; i < 500; i++) w.record(reg, 'b', { ready: true, recheckAt: 1000 + (i % 7) * 10 + i });
  w.record(reg, 'c', { ready: true, recheckAt: 5000 });
  expect(w.nextRecheck(reg)).toBe(1);
  w.record(reg, 'a', undefined);
  expect(w.nextRecheck(reg)).toBe(1000 + (499 % 7) * 10 + 499);
  expect([...w.take(reg, '1', 1600).namespaces]).toEqual(['b']);
  expect([...w.take(reg, '1', 5000).namespaces].sort()).toEqual(['b', 'c']);
});
