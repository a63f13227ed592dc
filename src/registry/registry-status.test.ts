import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import type { Observed } from '../model/status.ts';
import { nextRegistryStatus } from './registry-status.ts';

const ref = { name: 'main', namespace: 'ns' };
const nodes = { type: 'NodesReady', status: 'True' as const, reason: 'AgentsReady', message: 'm' };
const reg = (status: object): Registry =>
  ({
    metadata: { name: 'main', namespace: 'ns', generation: 4 },
    spec: { storage: { emptyDir: {} } },
    status,
  }) as unknown as Registry;
const cond = (type: string, status: string, reason: string) => ({
  type,
  status,
  reason,
  message: '',
  lastTransitionTime: '2020-01-01T00:00:00Z',
});
const observed = (o: Partial<Observed> = {}): Observed => ({
  certificate: { ok: true },
  storage: { ok: true },
  ...o,
});
const types = (s: Record<string, unknown>) => (s.conditions as { type: string }[]).map((c) => c.type).sort();

describe('nextRegistryStatus', () => {
  it.each([
    { name: 'with a CA', hasCA: true, caConfigMap: true },
    { name: 'without one: the old name goes', hasCA: false, caConfigMap: false },
  ])('caConfigMap: $name', (c) => {
    const s = nextRegistryStatus(reg({ caConfigMap: 'old', extra: 1 }), ref, observed(), c.hasCA, 0);
    expect('caConfigMap' in s).toBe(c.caConfigMap);
    expect(s).toMatchObject({
      extra: 1,
      observedGeneration: 4,
      adminSecret: expect.any(String),
      endpoint: expect.any(String),
    });
  });

  it.each([
    { name: 'node access on: NodesReady', nodes, want: ['NodesReady'] },
    { name: 'node access off: NodesReady goes', nodes: undefined, want: [] },
  ])('$name', (c) => {
    const s = nextRegistryStatus(
      reg({ conditions: [cond('NodesReady', 'False', 'CleaningUp')] }),
      ref,
      observed({ nodes: c.nodes }),
      false,
      0,
    );
    expect(types(s).filter((t) => t === 'NodesReady')).toEqual(c.want);
  });

  it.each([
    {
      name: 'an overdue rotation degrades',
      pull: cond('PullSecretsReady', 'False', 'RotationOverdue'),
      want: 'RotationOverdue',
    },
    { name: 'a ready one does not', pull: cond('PullSecretsReady', 'True', 'Ready'), want: 'AsExpected' },
  ])('PullSecretsReady is read back and kept: $name', (c) => {
    const s = nextRegistryStatus(reg({ conditions: [c.pull] }), ref, observed(), false, 0);
    const all = s.conditions as { type: string; reason: string }[];
    expect(all.find((x) => x.type === 'Degraded')?.reason).toBe(c.want);
    expect(all.find((x) => x.type === 'PullSecretsReady')?.reason).toBe(c.pull.reason);
  });
});
