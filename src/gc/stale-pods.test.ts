import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { stalePods } from './stale-pods.ts';

const pod = (
  name: string,
  checksum: string | undefined,
  over: { phase?: string; terminating?: boolean } = {},
) =>
  ({
    metadata: {
      name,
      ...(checksum ? { annotations: { 'berth.dev/config-checksum': checksum } } : {}),
      ...(over.terminating ? { deletionTimestamp: new Date('2030-01-01T00:00:00Z') } : {}),
    },
    status: { phase: over.phase ?? 'Running' },
  }) as k8s.V1Pod;

describe('stalePods', () => {
  it.each<[string, k8s.V1Pod[], string[]]>([
    ['every pod runs the current configuration', [pod('a', 'ro'), pod('b', 'ro')], []],
    ['none at all', [], []],
    ['an old pod still running', [pod('a', 'ro'), pod('old', 'rw')], ['old']],
    [
      'an old pod terminating (the Deployment no longer counts it)',
      [pod('a', 'ro'), pod('old', 'rw', { terminating: true })],
      ['old (terminating)'],
    ],
    ['an old pod not started yet', [pod('old', 'rw', { phase: 'Pending' })], ['old']],
    ['a pod without the annotation', [pod('x', undefined)], ['x']],
    [
      'finished pods do not serve',
      [pod('done', 'rw', { phase: 'Succeeded' }), pod('evicted', 'rw', { phase: 'Failed' })],
      [],
    ],
    ['a terminating pod of the current configuration', [pod('a', 'ro', { terminating: true })], []],
  ])('%s', (_name, pods, stale) => expect(stalePods(pods, 'ro')).toEqual(stale));
});
