import { describe, expect, it } from '@jest/globals';
import { FencedError, isWrite, writeRefusal, type FenceState } from './fence.ts';

const deadline = 10_000;
const t0 = Date.UTC(2030, 0, 1);

describe('writeRefusal', () => {
  const cases: { name: string; state: FenceState; now: number; refused: RegExp | undefined }[] = [
    { name: 'not leading', state: { leading: false, renewedAt: t0 }, now: t0, refused: /does not hold/ },
    {
      name: 'leading but never renewed',
      state: { leading: true, renewedAt: undefined },
      now: t0,
      refused: /does not hold/,
    },
    { name: 'just renewed', state: { leading: true, renewedAt: t0 }, now: t0, refused: undefined },
    {
      name: 'one retry period after renewal',
      state: { leading: true, renewedAt: t0 },
      now: t0 + 2_000,
      refused: undefined,
    },
    {
      name: 'a millisecond before the renew deadline',
      state: { leading: true, renewedAt: t0 },
      now: t0 + deadline - 1,
      refused: undefined,
    },
    {
      name: 'at the renew deadline',
      state: { leading: true, renewedAt: t0 },
      now: t0 + deadline,
      refused: /10000 ms ago/,
    },
    {
      name: 'frozen past the lease (SIGSTOP)',
      state: { leading: true, renewedAt: t0 },
      now: t0 + 40_000,
      refused: /40000 ms ago, not within the renew deadline of 10000 ms/,
    },
    {
      name: 'clock moved back',
      state: { leading: true, renewedAt: t0 },
      now: t0 - 1,
      refused: /clock moved back/,
    },
  ];
  it.each(cases)('$name', ({ state, now, refused }) => {
    const got = writeRefusal(state, now, deadline);
    if (refused === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(refused);
  });
});

describe('isWrite', () => {
  it.each([
    ['GET', false],
    ['POST', true],
    ['PUT', true],
    ['PATCH', true],
    ['DELETE', true],
    ['delete', true],
    ['HEAD', false],
  ])('%s → %s', (method, write) => expect(isWrite(method)).toBe(write));
  it('FencedError is an Error with its name', () => {
    expect(new FencedError('x')).toBeInstanceOf(Error);
    expect(new FencedError('x').name).toBe('FencedError');
  });
});

describe('classifyError', () => {
  it('classifies a refused write, also when a controller wrapped it, as fenced', async () => {
    const { classifyError } = await import('./errors.ts');
    expect(classifyError(new FencedError('POST /x: not sent')).kind).toBe('fenced');
    expect(classifyError(new Error('fan-out failed', { cause: new FencedError('x') })).kind).toBe('fenced');
    expect(classifyError(new Error('other')).kind).toBe('error');
  });
});
