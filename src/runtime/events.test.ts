import { describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { FakeClock } from './clock.ts';
import { eventObject, KubeEventRecorder, seriesKey } from './events.ts';
import type { KubeClient } from './kube/client.ts';

interface Call {
  verb: 'create' | 'patch';
  path: string;
  body: Record<string, unknown>;
}

/** A client that records what the recorder sends (the recorder's only collaborator). */
function recordingClient(calls: Call[]): KubeClient {
  return {
    create: async (path: string, body: Record<string, unknown>) => {
      calls.push({ verb: 'create', path, body });
      return body;
    },
    mergePatch: async (path: string, body: Record<string, unknown>) => {
      calls.push({ verb: 'patch', path, body });
      return body;
    },
  } as unknown as KubeClient;
}

const logger = winston.createLogger({ silent: true });
const registry = {
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'Registry',
  metadata: { name: 'main', namespace: 'ns', uid: 'u1' },
};

describe('KubeEventRecorder', () => {
  it('creates one Event for repeats and updates its series at most once per interval', async () => {
    const clock = new FakeClock();
    const calls: Call[] = [];
    const rec = new KubeEventRecorder({
      client: recordingClient(calls),
      clock,
      logger,
      controller: 'berth.dev/operator',
      instance: 'test',
      minUpdateIntervalMs: 30_000,
    });
    for (let i = 0; i < 5; i++) {
      rec.event(registry, 'Warning', 'StorageSecretMissing', 'Reconcile', 'Secret s3 does not exist');
      clock.advance(1000);
    }
    await rec.flush();
    expect(calls.map((c) => c.verb)).toEqual(['create']);
    expect(calls[0]?.path).toBe('/apis/events.k8s.io/v1/namespaces/ns/events');
    expect(calls[0]?.body).toMatchObject({
      reason: 'StorageSecretMissing',
      type: 'Warning',
      regarding: { uid: 'u1' },
    });
    clock.advance(30_000);
    await rec.flush();
    expect(calls.map((c) => c.verb)).toEqual(['create', 'patch']);
    expect(calls[1]?.body).toMatchObject({ series: { count: 5 } });
    expect(calls[1]?.path).toBe(
      `/apis/events.k8s.io/v1/namespaces/ns/events/${String((calls[0]?.body.metadata as { name: string }).name)}`,
    );
  });

  it('starts a new Event for another reason, and for a repeat after the series window', async () => {
    const clock = new FakeClock();
    const calls: Call[] = [];
    const rec = new KubeEventRecorder({
      client: recordingClient(calls),
      clock,
      logger,
      controller: 'c',
      instance: 'i',
      seriesWindowMs: 60_000,
    });
    rec.event(registry, 'Warning', 'A', 'Reconcile', 'x');
    rec.event(registry, 'Warning', 'B', 'Reconcile', 'x');
    clock.advance(61_000);
    rec.event(registry, 'Warning', 'A', 'Reconcile', 'x');
    await rec.flush();
    expect(calls.filter((c) => c.verb === 'create').map((c) => c.body.reason)).toEqual(['A', 'B', 'A']);
  });
});

describe('seriesKey', () => {
  const pod = (meta: Record<string, string>) => ({ metadata: meta });
  it.each([
    ['the same object and words', pod({ uid: 'u1', name: 'a' }), pod({ uid: 'u1', name: 'b' }), true],
    ['another uid', pod({ uid: 'u1' }), pod({ uid: 'u2' }), false],
    [
      'no uid: by namespace/name',
      pod({ namespace: 'ns', name: 'a' }),
      pod({ namespace: 'ns', name: 'a' }),
      true,
    ],
    ['no uid, another name', pod({ namespace: 'ns', name: 'a' }), pod({ namespace: 'ns', name: 'b' }), false],
  ])('%s', (_what, a, b, same) => {
    expect(
      seriesKey(a, 'Warning', 'R', 'Reconcile', 'n') === seriesKey(b, 'Warning', 'R', 'Reconcile', 'n'),
    ).toBe(same);
  });
  it('another note is another series', () => {
    expect(seriesKey(registry, 'Warning', 'R', 'Reconcile', 'a')).not.toBe(
      seriesKey(registry, 'Warning', 'R', 'Reconcile', 'b'),
    );
  });
});

describe('eventObject', () => {
  it('is an events.k8s.io/v1 Event regarding the object, instance and note cut to size', () => {
    const now = Date.parse('2025-06-01T12:00:00.000Z');
    const e = eventObject(
      { ...registry, metadata: { ...registry.metadata, resourceVersion: '7' } },
      {
        name: 'main.abc',
        namespace: 'ns',
        now,
        type: 'Warning',
        reason: 'Bad',
        action: 'Reconcile',
        note: 'x'.repeat(2000),
      },
      { controller: 'berth.dev/operator', instance: 'i'.repeat(200) },
    );
    expect(e).toStrictEqual({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: 'main.abc', namespace: 'ns' },
      eventTime: '2025-06-01T12:00:00.000000Z',
      reportingController: 'berth.dev/operator',
      reportingInstance: 'i'.repeat(128),
      action: 'Reconcile',
      reason: 'Bad',
      note: 'x'.repeat(1024),
      type: 'Warning',
      regarding: {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Registry',
        name: 'main',
        namespace: 'ns',
        uid: 'u1',
        resourceVersion: '7',
      },
    });
  });
});
