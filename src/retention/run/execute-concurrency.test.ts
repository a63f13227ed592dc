// executeDeletions with several deletions in flight per repository, and with a registry that
// answers "busy" (429/503, Retry-After): the bound holds, an index still goes before its children,
// and a retried delete is checked again against the tags after the pause. The runtime's Clock injected
// (its timers are the retries' waits).
import { describe, expect, test } from '@jest/globals';
import { deleteRetry, executeDeletions } from './execute.ts';
import type { Deletion } from './model.ts';
import { RegistryError } from '../../distribution/client.ts';
import { FakeClock, type Clock } from '../../runtime/clock.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const manifest = 'application/vnd.oci.image.manifest.v1+json';

/**
 * One repository in memory. Deletes wait until `release()` lets them finish, so a test sees how
 * many are in flight at once; `failNext` makes the next deletes throw.
 */
function slowRegistry(tags: Record<string, string>) {
  const log: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let waiting: (() => void)[] = [];
  const failures: unknown[] = [];
  return {
    log,
    get maxInFlight() {
      return maxInFlight;
    },
    failNext: (...errors: unknown[]) => failures.push(...errors),
    /** Lets every delete waiting so far finish. */
    release: () => {
      const w = waiting;
      waiting = [];
      for (const r of w) r();
      return w.length;
    },
    tags: async () => Object.keys(tags),
    head: async (_repo: string, tag: string) => {
      const d = tags[tag];
      return d ? { digest: d, mediaType: manifest } : undefined;
    },
    deleteManifest: async (_repo: string, d: string) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      log.push(`start ${d.slice(-2)}`);
      await new Promise<void>((r) => waiting.push(r));
      inFlight--;
      const failure = failures.shift();
      if (failure) {
        log.push(`busy ${d.slice(-2)}`);
        throw failure;
      }
      for (const [t, x] of Object.entries(tags)) if (x === d) delete tags[t];
      log.push(`done ${d.slice(-2)}`);
      return 'deleted' as const;
    },
  };
}

/** Releases waiting deletes until the run ends. */
async function drive(registry: { release(): number }, run: Promise<unknown>): Promise<void> {
  let finished = false;
  void run.finally(() => (finished = true));
  while (!finished) {
    await new Promise((r) => setImmediate(r));
    registry.release();
  }
}

describe('deleteRetry', () => {
  const policy = { attempts: 3, baseMs: 200, maxMs: 60_000 };
  test.each<[string, unknown, number, number | undefined]>([
    [
      '429 with Retry-After: at once (the client waits out its pause)',
      new RegistryError('x', 429, 2000),
      1,
      0,
    ],
    ['503 with Retry-After', new RegistryError('x', 503, 1000), 2, 0],
    ['429 without Retry-After: backoff', new RegistryError('x', 429), 1, 200],
    ['500, second attempt: backoff doubled', new RegistryError('x', 500), 2, 400],
    ['a refused connection (no status): backoff', new Error('ECONNREFUSED'), 1, 200],
    ['the last attempt: give up', new RegistryError('x', 429, 1000), 3, undefined],
    ['403: final', new RegistryError('x', 403), 1, undefined],
    ['405 (deletes disabled): final', new RegistryError('x', 405), 1, undefined],
  ])('%s', (_name, err, attempt, expected) => expect(deleteRetry(err, attempt, policy, 1)).toBe(expected));
});

describe('executeDeletions with several in flight per repository', () => {
  const tagsOf = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, digest(i)]));
  const planOf = (n: number): Deletion[] =>
    Array.from({ length: n }, (_, i) => ({
      repository: 'app',
      digest: digest(i),
      tags: [`t${i}`],
      after: [],
    }));
  const known = (n: number) => new Map([['app', new Set(Object.keys(tagsOf(n)))]]);

  test.each([1, 3, 8])('at most %d deletes in flight, and every one done', async (perRepository) => {
    const registry = slowRegistry(tagsOf(20));
    const run = executeDeletions(planOf(20), known(20), registry, { perRepository, clock: new FakeClock(0) });
    await drive(registry, run);
    const res = await run;
    expect(registry.maxInFlight).toBe(perRepository);
    expect([...res.outcomes.values()].filter((o) => o.status === 'deleted')).toHaveLength(20);
  });

  test("an index's children start only after the index is deleted, and are skipped when it is not", async () => {
    const index = digest(0xa0);
    const plan: Deletion[] = [
      { repository: 'app', digest: index, tags: ['multi'], after: [] },
      { repository: 'app', digest: digest(0xc1), tags: [], after: [index] },
      { repository: 'app', digest: digest(0xc2), tags: [], after: [index] },
      { repository: 'app', digest: digest(0x0b), tags: ['other'], after: [] },
    ];
    const tags = { multi: index, other: digest(0x0b) };
    const knownTags = new Map([['app', new Set(Object.keys(tags))]]);
    const registry = slowRegistry({ ...tags });
    const run = executeDeletions(plan, knownTags, registry, { perRepository: 8, clock: new FakeClock(0) });
    await drive(registry, run);
    await run;
    const at = (e: string) => registry.log.indexOf(e);
    expect(at('start c1')).toBeGreaterThan(at('done a0'));
    expect(at('start c2')).toBeGreaterThan(at('done a0'));
    expect(at('start 0b')).toBeLessThan(at('done a0')); // unrelated: in parallel with the index

    const failing = slowRegistry({ ...tags });
    failing.failNext(new RegistryError('DELETE: HTTP 403', 403));
    const run2 = executeDeletions(plan, knownTags, failing, { perRepository: 8, clock: new FakeClock(0) });
    await drive(failing, run2);
    const res = await run2;
    expect(res.outcomes.get(`app@${index}`)).toEqual({ status: 'failed', reason: 'DELETE: HTTP 403' });
    for (const child of [digest(0xc1), digest(0xc2)])
      expect(res.outcomes.get(`app@${child}`)).toMatchObject({ status: 'skipped' });
    expect(failing.log.filter((e) => e.startsWith('start c'))).toEqual([]);
  });

  test('a busy registry: the retry comes after the pause and is checked again against fresh tags', async () => {
    const clock = new FakeClock(0);
    // A Retry-After is waited out by the client (ready), never by a timer of the run's.
    const noTimers: Clock = {
      now: () => clock.now(),
      setTimeout: () => {
        throw new Error('a Retry-After is waited out by the client, not slept again');
      },
    };
    const tags: Record<string, string> = { keep: digest(1), t3: digest(3) };
    const registry = slowRegistry(tags);
    let readyCalls = 0;
    const client = {
      ...registry,
      // The client's Retry-After pause, before the second attempt: meanwhile a kept tag is moved
      // onto the doomed digest (a rollback) and 5 s pass, so the tags seen before are stale.
      ready: async () => {
        if (++readyCalls === 2) {
          tags.keep = digest(3);
          clock.advance(5_000);
        }
      },
    };
    registry.failNext(new RegistryError('DELETE: HTTP 429', 429, 5_000));
    const run = executeDeletions(
      [{ repository: 'app', digest: digest(3), tags: ['t3'], after: [] }],
      new Map([['app', new Set(['keep', 't3'])]]),
      client,
      {
        refreshMs: 2_000,
        clock: noTimers,
      },
    );
    await drive(registry, run);
    const res = await run;
    expect(readyCalls).toBe(2);
    expect(registry.log).toEqual(['start 03', 'busy 03']);
    expect(res.outcomes.get(`app@${digest(3)}`)).toEqual({
      status: 'skipped',
      reason: 'tag keep, which the plan kept, now points to it',
    });
  });

  test('a busy registry with Retry-After and nothing moved: deleted on the retry', async () => {
    const registry = slowRegistry(tagsOf(1));
    registry.failNext(new RegistryError('DELETE: HTTP 503', 503, 1_000));
    let readyCalls = 0;
    const client = { ...registry, ready: async () => void readyCalls++ };
    const run = executeDeletions(planOf(1), known(1), client, { clock: new FakeClock(0) });
    await drive(registry, run);
    const res = await run;
    expect(readyCalls).toBe(2);
    expect(res.outcomes.get(`app@${digest(0)}`)).toEqual({ status: 'deleted' });
  });

  test("a busy registry without Retry-After: backoff on the injected clock's timers, then given up", async () => {
    const registry = slowRegistry(tagsOf(1));
    const busy = () => new RegistryError('DELETE: HTTP 503', 503);
    registry.failNext(busy(), busy(), busy());
    const sleeps: number[] = [];
    // Each wait is recorded and over at once.
    const clock: Clock = {
      now: () => 0,
      setTimeout: (fn, ms) => {
        sleeps.push(ms);
        fn();
        return { cancel: () => undefined };
      },
    };
    const run = executeDeletions(planOf(1), known(1), registry, {
      clock,
      retry: { attempts: 3 },
      random: () => 1,
    });
    await drive(registry, run);
    const res = await run;
    expect(sleeps).toEqual([200, 400]);
    expect(res.outcomes.get(`app@${digest(0)}`)).toEqual({ status: 'failed', reason: 'DELETE: HTTP 503' });
  });
});
