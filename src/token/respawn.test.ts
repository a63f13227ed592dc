import { describe, expect, it } from '@jest/globals';
import { recentExits, respawnDelayMs, respawnMaxDelayMs, respawnWindowMs } from './respawn.ts';

describe('respawnDelayMs', () => {
  const now = 1_000_000;
  it.each<[string, number[], number]>([
    ['the first exit: at once', [now], 0],
    ['an exit long after the previous one: at once', [now - respawnWindowMs - 1, now], 0],
    ['a second exit within the window', [now - 5_000, now], 100],
    ['a third', [now - 9_000, now - 5_000, now], 200],
    ['a fifth', [now - 4, now - 3, now - 2, now - 1, now], 800],
    ['a crash loop is capped', Array.from({ length: 30 }, (_, i) => now - i), respawnMaxDelayMs],
  ])('%s', (_name, exits, delay) => {
    expect(respawnDelayMs(exits, now)).toBe(delay);
  });
});

describe('recentExits', () => {
  it('keeps only the exits inside the window', () => {
    expect(recentExits([1, 2, 110_000, 150_000], 160_000)).toEqual([110_000, 150_000]);
  });
});
