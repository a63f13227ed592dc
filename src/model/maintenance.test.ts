import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import { maintenanceOf } from './maintenance.ts';

const registry = (phase?: string, message?: string): Registry =>
  ({
    metadata: { name: 'main', namespace: 'registry-system' },
    spec: { storage: { persistentVolumeClaim: { size: '1Gi' } } },
    status: phase ? { garbageCollection: { phase, ...(message ? { message } : {}) } } : {},
  }) as Registry;

describe('maintenanceOf', () => {
  it.each([
    [undefined, false],
    ['Pending', false],
    ['ReadOnly', true],
    ['Collecting', true],
    ['Restarting', true],
    ['ReadWrite', false],
    ['Verifying', false],
    ['Succeeded', false],
  ])('phase %s: read-only %s, no problem', (phase, readOnly) => {
    expect(maintenanceOf(registry(phase))).toEqual({ readOnly });
  });

  it('after a failure: read-only, with a problem that says how to retry', () => {
    const m = maintenanceOf(registry('Failed', 'CollectFailed: the Job failed'));
    expect(m.readOnly).toBe(true);
    expect(m.problem).toMatchObject({ ok: false, reason: 'GarbageCollectionFailed' });
    expect(m.problem && !m.problem.ok && m.problem.message).toMatch(
      /CollectFailed: the Job failed.*read-only.*berth.dev\/gc-requested-at/,
    );
  });
});
