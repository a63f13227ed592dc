import { serialWithRerun } from './serial.ts';

/** A run that waits until released, counting how many started. */
function gated() {
  let started = 0;
  const releases: (() => void)[] = [];
  const run = () =>
    new Promise<number>((resolve) => {
      started++;
      const n = started;
      releases.push(() => resolve(n));
    });
  return { run, started: () => started, release: () => releases.shift()?.() };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('serialWithRerun', () => {
  test('concurrent calls share the run; calls during it cost one more run, not one each', async () => {
    const g = gated();
    const call = serialWithRerun(g.run);
    const a = call();
    const b = call();
    const c = call();
    expect(g.started()).toBe(1);
    g.release();
    expect(await a).toBe(1);
    expect(await b).toBe(1);
    expect(await c).toBe(1);
    await tick();
    expect(g.started()).toBe(2); // the rerun asked for by b and c
    g.release();
    await tick();
    expect(g.started()).toBe(2);
  });

  test('a call when idle starts a run at once', async () => {
    const g = gated();
    const call = serialWithRerun(g.run);
    const first = call();
    g.release();
    await first;
    await tick();
    const second = call();
    expect(g.started()).toBe(2);
    g.release();
    expect(await second).toBe(2);
  });

  test('a failed run rejects its callers and does not stop the next', async () => {
    let n = 0;
    const call = serialWithRerun(async () => {
      n++;
      if (n === 1) throw new Error('first fails');
      return n;
    });
    await expect(call()).rejects.toThrow('first fails');
    expect(await call()).toBe(2);
  });

  test('idle resolves once no run is under way, the rerun included', async () => {
    const g = gated();
    const call = serialWithRerun(g.run);
    void call();
    void call();
    let idle = false;
    const waiting = call.idle().then(() => (idle = true));
    g.release();
    await tick();
    expect(idle).toBe(false); // the rerun runs
    g.release();
    await waiting;
    expect(g.started()).toBe(2);
  });
});
