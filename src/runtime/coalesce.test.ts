import { describe, expect, it } from '@jest/globals';
import { FakeClock } from './clock.ts';
import { Coalescer, coalescedWatch } from './coalesce.ts';
import type { AnyInformer, InformerEvent, InformerHandler } from './informer.ts';
import type { KubeObject } from './kube/client.ts';

const quietMs = 1000;
const maxWaitMs = 10_000;

/** Adds `key` at each of `adds` (ms from the start); returns when each flush came. */
function flushTimes(adds: number[], until: number): number[] {
  const clock = new FakeClock(0);
  const flushed: number[] = [];
  const coalescer = new Coalescer({ clock, quietMs, maxWaitMs }, () => flushed.push(clock.now()));
  let at = 0;
  for (const t of adds) {
    clock.advance(t - at);
    at = t;
    coalescer.add('ns/registry');
  }
  clock.advance(until - at);
  return flushed;
}

describe('Coalescer', () => {
  it.each([
    { case: 'a lone event: once, quietMs later', adds: [0], flushes: [1000] },
    { case: 'two close events: once, quietMs after the last', adds: [0, 600], flushes: [1600] },
    { case: 'two events further apart than quietMs: twice', adds: [0, 2000], flushes: [1000, 3000] },
    {
      case: 'an event every 100 ms for 25 s: every maxWaitMs, and once after the end',
      adds: Array.from({ length: 250 }, (_, i) => i * 100),
      flushes: [10_000, 20_000, 25_900],
    },
    { case: 'nothing: never', adds: [], flushes: [] },
  ])('$case', ({ adds, flushes }) => {
    expect(flushTimes(adds, 60_000)).toEqual(flushes);
  });

  it('keeps keys apart, and cancel drops what it holds', () => {
    const clock = new FakeClock(0);
    const flushed: string[] = [];
    const coalescer = new Coalescer({ clock, quietMs, maxWaitMs }, (key) => flushed.push(key));
    coalescer.add('a');
    coalescer.add('b');
    coalescer.add('a');
    expect(coalescer.pending().sort()).toEqual(['a', 'b']);
    clock.advance(quietMs);
    expect(flushed.sort()).toEqual(['a', 'b']);
    coalescer.add('c');
    coalescer.cancel();
    clock.advance(maxWaitMs);
    expect(flushed).toHaveLength(2);
    expect(clock.pending()).toBe(0);
  });
});

/** An informer that only hands events to its handlers. */
function fakeInformer(): { informer: AnyInformer; send(obj: KubeObject): void; handlers(): number } {
  const handlers = new Set<InformerHandler<KubeObject>>();
  const informer = {
    name: 'secrets',
    addHandler(h: InformerHandler<KubeObject>) {
      handlers.add(h);
      return () => handlers.delete(h);
    },
  } as unknown as AnyInformer;
  return {
    informer,
    send: (obj) => handlers.forEach((h) => h('add', obj)),
    handlers: () => handlers.size,
  };
}

describe('coalescedWatch', () => {
  it('hands the controller each mapped key once per burst, and nothing for an unmapped event', () => {
    const clock = new FakeClock(0);
    const fake = fakeInformer();
    const watch = coalescedWatch(
      fake.informer,
      (obj: KubeObject) => (obj.metadata?.name?.startsWith('pull-') ? ['reg/main'] : []),
      { clock, quietMs, maxWaitMs },
    );
    const queued: string[] = [];
    const events: InformerEvent[] = [];
    const unsubscribe = watch.informer.addHandler((event, obj) => {
      events.push(event);
      queued.push(...watch.map(obj));
    });
    for (let i = 0; i < 100; i++) fake.send({ metadata: { name: `pull-${i}`, namespace: `ns-${i}` } });
    fake.send({ metadata: { name: 'other', namespace: 'ns-0' } });
    expect(queued).toEqual([]);
    clock.advance(quietMs);
    expect(queued).toEqual(['reg/main']);
    expect(events).toEqual(['update']);
    // the original objects are not keys of this watch
    expect(watch.map({ metadata: { name: 'pull-1', namespace: 'ns-1' } })).toEqual([]);

    fake.send({ metadata: { name: 'pull-1', namespace: 'ns-1' } });
    unsubscribe();
    clock.advance(maxWaitMs);
    expect(queued).toEqual(['reg/main']);
    expect(fake.handlers()).toBe(0);
  });
});
