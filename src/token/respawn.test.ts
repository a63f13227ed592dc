import { describe, expect, it } from '@jest/globals';
import {
  nextRespawn,
  recentExits,
  respawnDelayMs,
  respawnMaxDelayMs,
  respawnWindowMs,
  workerExitDecision,
} from './respawn.ts';

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

describe('workerExitDecision', () => {
  it.each<[string, boolean, number | null, string | null, unknown]>([
    ['asked to stop: nothing', true, 0, null, { replace: false }],
    ['killed while stopping: nothing', true, null, 'SIGKILL', { replace: false }],
    ['a crash: replaced, by its exit code', false, 1, null, { replace: true, reason: 'exit 1' }],
    ['an exit 0 unasked: replaced too', false, 0, null, { replace: true, reason: 'exit 0' }],
    ['a signal: replaced, by the signal', false, null, 'SIGSEGV', { replace: true, reason: 'SIGSEGV' }],
  ])('%s', (_name, stopping, code, signal, expected) => {
    expect(workerExitDecision(stopping, code, signal)).toEqual(expected);
  });
});

describe('nextRespawn', () => {
  const now = 1_000_000;
  it.each<[string, number[], number[], number]>([
    ['the first: at once', [], [now], 0],
    ['the second within the window: after the first delay', [now - 1_000], [now - 1_000, now], 100],
    ['old exits are forgotten', [now - respawnWindowMs - 1, now - 1_000], [now - 1_000, now], 100],
  ])('%s', (_name, before, kept, delayMs) => {
    expect(nextRespawn(before, now)).toEqual({ exitTimes: kept, delayMs });
  });
});
