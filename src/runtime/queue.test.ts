import { describe, expect, it } from '@jest/globals';
import { FakeClock } from './clock.ts';
import { WorkQueue, type RateLimitOptions } from './queue.ts';

const noJitter: Partial<RateLimitOptions> = { jitter: 0 };

function newQueue(rateLimit: Partial<RateLimitOptions> = noJitter) {
  const clock = new FakeClock();
  const seen = { adds: 0, retries: 0, depth: 0, waits: [] as number[] };
  const queue = new WorkQueue({
    clock,
    rateLimit,
    metrics: {
      added: () => void seen.adds++,
      retried: () => void seen.retries++,
      depth: (n) => void (seen.depth = n),
      waited: (s) => void seen.waits.push(s),
    },
  });
  return { clock, queue, seen };
}

/** Takes the next key if one is ready now, without waiting (an abandoned get() would keep its place). */
async function tryGet(queue: WorkQueue): Promise<string | undefined> {
  return queue.length > 0 ? queue.get() : undefined;
}

describe('WorkQueue', () => {
  it('merges adds of a key that is already queued', async () => {
    const { queue, seen } = newQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.length).toBe(2);
    expect(seen.adds).toBe(3);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
  });

  it('never hands a key that is being processed to a second worker, and requeues it when done', async () => {
    const { queue } = newQueue();
    queue.add('a');
    expect(await queue.get()).toBe('a');
    queue.add('a');
    queue.add('a');
    expect(await tryGet(queue)).toBeUndefined();
    queue.done('a');
    expect(await tryGet(queue)).toBe('a');
    queue.done('a');
    expect(queue.length).toBe(0);
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const { queue } = newQueue();
    const pending = queue.get();
    queue.add('x');
    expect(await pending).toBe('x');
  });

  it('backs off per key exponentially up to the cap, and forgets on success', () => {
    const { queue, seen } = newQueue({ jitter: 0, baseDelayMs: 100, maxDelayMs: 1000, qps: 0 });
    const delays = [1, 2, 3, 4, 5, 6].map(() => queue.addRateLimited('k'));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(queue.numRequeues('k')).toBe(6);
    expect(seen.retries).toBe(6);
    queue.forget('k');
    expect(queue.numRequeues('k')).toBe(0);
    expect(queue.addRateLimited('k')).toBe(100);
    // another key has its own backoff
    expect(queue.addRateLimited('other')).toBe(100);
  });

  it('adds jitter of at most the configured fraction', () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({
      clock,
      random: () => 0.999,
      rateLimit: { baseDelayMs: 1000, maxDelayMs: 60_000, jitter: 0.1, qps: 0 },
    });
    const d = queue.addRateLimited('k');
    expect(d).toBeGreaterThan(1000);
    expect(d).toBeLessThanOrEqual(1100);
  });

  it('delays a rate-limited key until its backoff has passed', async () => {
    const { queue, clock } = newQueue({ jitter: 0, baseDelayMs: 100, maxDelayMs: 1000, qps: 0 });
    queue.addRateLimited('k');
    expect(await tryGet(queue)).toBeUndefined();
    clock.advance(99);
    expect(await tryGet(queue)).toBeUndefined();
    clock.advance(1);
    expect(await tryGet(queue)).toBe('k');
  });

  it('applies an overall rate limit across keys once the burst is spent', () => {
    const { queue } = newQueue({ jitter: 0, baseDelayMs: 1, maxDelayMs: 60_000, qps: 2, burst: 3 });
    const delays = ['a', 'b', 'c', 'd', 'e'].map((k) => queue.addRateLimited(k));
    expect(delays).toEqual([1, 1, 1, 500, 1000]);
  });

  it('requeues after a delay, and the earliest pending time wins', async () => {
    const { queue, clock } = newQueue();
    queue.addAfter('k', 5000);
    queue.addAfter('k', 1000);
    queue.addAfter('k', 8000);
    expect(queue.delayed).toBe(1);
    clock.advance(999);
    expect(await tryGet(queue)).toBeUndefined();
    clock.advance(1);
    expect(await tryGet(queue)).toBe('k');
    queue.done('k');
    clock.advance(10_000);
    expect(await tryGet(queue)).toBeUndefined();
  });

  it('records how long a key waited in the queue', async () => {
    const { queue, clock, seen } = newQueue();
    queue.add('k');
    clock.advance(1500);
    await queue.get();
    expect(seen.waits).toEqual([1.5]);
    expect(seen.depth).toBe(0);
  });

  it('on shutdown: hands out nothing more, ignores adds, cancels timers, releases waiting workers', async () => {
    const { queue, clock } = newQueue();
    const waitingWorker = queue.get();
    queue.shutDown();
    expect(await waitingWorker).toBeUndefined();
    queue.add('a');
    queue.addAfter('b', 10);
    expect(queue.length).toBe(0);
    expect(clock.pending()).toBe(0);
    expect(await queue.get()).toBeUndefined();
  });

  it('drains: waits for in-flight keys to be done, within a deadline', async () => {
    const { queue, clock } = newQueue();
    queue.add('a');
    queue.add('b');
    await queue.get();
    await queue.get();
    const drained = queue.drain(30_000);
    let result: boolean | undefined;
    void drained.then((r) => (result = r));
    queue.done('a');
    await Promise.resolve();
    expect(result).toBeUndefined();
    queue.done('b');
    expect(await drained).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it('drain gives up at the deadline when a key never finishes', async () => {
    const { queue, clock } = newQueue();
    queue.add('stuck');
    await queue.get();
    const drained = queue.drain(1000);
    clock.advance(1000);
    expect(await drained).toBe(false);
  });

  it('does not requeue a dirty key after shutdown', async () => {
    const { queue } = newQueue();
    queue.add('a');
    await queue.get();
    queue.add('a');
    queue.shutDown();
    queue.done('a');
    expect(queue.length).toBe(0);
  });
});
