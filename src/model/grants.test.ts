import { describe, expect, it } from '@jest/globals';
import type { Repository } from '../api/index.ts';
import { pullablePaths } from './grants.ts';

const repo = (ns: string, name: string, pull?: Repository['spec']['pull']): Repository => ({
  metadata: { namespace: ns, name },
  spec: { registryRef: { name: 'main' }, ...(pull ? { pull } : {}) },
});

const repos = [
  repo('team-a', 'web'),
  repo('team-a', 'api', { namespaces: ['team-a-staging'] }),
  repo('team-b', 'web'),
  repo('team-c', 'base', { namespaceSelector: { matchLabels: { tier: 'prod' } } }),
  repo('team-d', 'public', { namespaceSelector: {} }),
];

describe('pullablePaths', () => {
  it.each([
    { ns: 'team-a', labels: {}, want: ['team-a/api', 'team-a/web', 'team-d/public'] },
    { ns: 'team-a-staging', labels: {}, want: ['team-a/api', 'team-d/public'] },
    { ns: 'team-b', labels: { tier: 'prod' }, want: ['team-b/web', 'team-c/base', 'team-d/public'] },
    { ns: 'elsewhere', labels: {}, want: ['team-d/public'] },
  ])('$ns', ({ ns, labels, want }) =>
    expect(pullablePaths(ns, labels as Record<string, string>, repos)).toEqual(want),
  );

  it('grants nothing for a Repository whose path is outside its namespace', () => {
    const rogue: Repository = {
      metadata: { namespace: 'team-b', name: 'steal' },
      spec: { registryRef: { name: 'main' }, path: 'team-a/web', pull: { namespaceSelector: {} } },
    };
    expect(pullablePaths('team-b', {}, [rogue])).toEqual([]);
    expect(pullablePaths('team-a', {}, [rogue])).toEqual([]);
  });

  it('grants nothing without Repositories', () => expect(pullablePaths('team-a', {}, [])).toEqual([]));
});
