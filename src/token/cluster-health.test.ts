import { describe, expect, it } from '@jest/globals';
import { clusterHealth, type WorkerHealthAnswer } from './cluster-health.ts';

const ok = (credentials: number, storeLoadedAt: string): WorkerHealthAnswer => ({
  status: 200,
  body: { status: 'ok', credentials, storeLoadedAt },
});
const noStore: WorkerHealthAnswer = { status: 503, body: { status: 'no credential store loaded' } };

describe('clusterHealth', () => {
  it.each<[string, WorkerHealthAnswer[], number, boolean, number, Record<string, unknown>]>([
    [
      'every worker serves the same store',
      [ok(3, '2026-12-02T04:00:00.000Z'), ok(3, '2026-12-02T04:00:00.100Z')],
      2,
      false,
      200,
      { status: 'ok', workers: '2/2', credentials: 3, storeLoadedAt: '2026-12-02T04:00:00.000Z' },
    ],
    [
      'a worker being replaced: the others serve',
      [ok(3, '2026-12-02T04:00:00.000Z')],
      2,
      false,
      200,
      { status: 'ok', workers: '1/2' },
    ],
    [
      'mid-reload: the oldest store and the largest count',
      [ok(3, '2026-12-02T04:00:00.000Z'), ok(4, '2026-12-02T04:05:00.000Z')],
      2,
      false,
      200,
      { credentials: 4, storeLoadedAt: '2026-12-02T04:00:00.000Z' },
    ],
    [
      'a worker that does not answer',
      [ok(3, '2026-12-02T04:00:00.000Z'), undefined],
      2,
      false,
      503,
      { status: 'a worker does not answer or has no credential store', unhealthy: 1, workers: '2/2' },
    ],
    ['a worker without a store', [noStore], 1, false, 503, { unhealthy: 1 }],
    ['no worker serving', [], 2, false, 503, { status: 'no worker serving', workers: '0/2' }],
    ['stopping', [ok(3, '2026-12-02T04:00:00.000Z')], 1, true, 503, { status: 'stopping' }],
  ])('%s', (_name, answers, configured, stopping, status, body) => {
    const h = clusterHealth(answers, configured, stopping);
    expect(h.status).toBe(status);
    expect(h.body).toMatchObject(body);
  });
});
