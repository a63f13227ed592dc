import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { isPrimaryMessage, isWorkerMessage, PendingRequests } from './cluster-messages.ts';

describe('message guards', () => {
  it.each<[string, unknown, boolean, boolean]>([
    ['a worker message', { type: 'berth:ready', url: 'u', port: 1, keyId: 'k' }, true, false],
    ['a primary message', { type: 'berth:shutdown', graceMs: 1 }, false, true],
    ["node:cluster's own", { cmd: 'NODE_CLUSTER', act: 'online' }, false, false],
    ["prom-client's", { type: 'prom-client:getMetricsReq', requestId: 1 }, false, false],
    ['not an object', 'berth:ready', false, false],
    ['null', null, false, false],
  ])('%s', (_name, m, worker, primary) => {
    expect(isWorkerMessage(m)).toBe(worker);
    expect(isPrimaryMessage(m)).toBe(primary);
  });
});

describe('PendingRequests', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('delivers each answer to the request with its id', async () => {
    const pending = new PendingRequests<string>();
    const sent: number[] = [];
    const a = pending.ask((id) => sent.push(id), 1_000);
    const b = pending.ask((id) => sent.push(id), 1_000);
    expect(sent).toHaveLength(2);
    expect(pending.answer(sent[1] ?? 0, 'second')).toBe(true);
    expect(pending.answer(sent[0] ?? 0, 'first')).toBe(true);
    expect(await a).toBe('first');
    expect(await b).toBe('second');
    expect(pending.answer(sent[0] ?? 0, 'again')).toBe(false);
  });

  it('gives up after the deadline, and ignores a late answer', async () => {
    jest.useFakeTimers();
    const pending = new PendingRequests<string>();
    let id = 0;
    const a = pending.ask((i) => (id = i), 500);
    jest.advanceTimersByTime(500);
    expect(await a).toBeUndefined();
    expect(pending.answer(id, 'late')).toBe(false);
  });

  it('gives up at once when sending fails, and when abandoned', async () => {
    const pending = new PendingRequests<string>();
    const failed = pending.ask(() => {
      throw new Error('channel closed');
    }, 1_000);
    expect(await failed).toBeUndefined();
    const waiting = pending.ask(() => undefined, 1_000);
    pending.abandon();
    expect(await waiting).toBeUndefined();
  });
});
