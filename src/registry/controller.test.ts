import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { credentialElsewhere, namespaceLabelsChanged, ownNamespaceChild } from './controller.ts';

const child = (namespace: string, labels: Record<string, string>) => ({
  metadata: { name: 'x', namespace, labels },
});

describe('which children reach the Registry at once, and which coalesced', () => {
  it.each([
    {
      case: 'a child in the Registry namespace',
      obj: child('reg', { 'berth.dev/registry': 'main' }),
      own: ['reg/main'],
      elsewhere: [],
    },
    {
      case: 'a pull Secret in another namespace',
      obj: child('team-a', { 'berth.dev/registry': 'main', 'berth.dev/registry-namespace': 'reg' }),
      own: [],
      elsewhere: ['reg/main'],
    },
    {
      case: 'a pull Secret in the Registry namespace itself',
      obj: child('reg', { 'berth.dev/registry': 'main', 'berth.dev/registry-namespace': 'reg' }),
      own: ['reg/main'],
      elsewhere: [],
    },
    { case: 'not a Registry child', obj: child('reg', {}), own: [], elsewhere: [] },
    ...['main-credentials', 'main-credentials-1', 'main-credentials-15'].map((name) => ({
      case: `the store Secret ${name}: with the credentials`,
      obj: { metadata: { name, namespace: 'reg', labels: { 'berth.dev/registry': 'main' } } },
      own: [],
      elsewhere: ['reg/main'],
    })),
    {
      case: 'a Secret whose name only begins like the store’s',
      obj: {
        metadata: {
          name: 'main-credentials-extra',
          namespace: 'reg',
          labels: { 'berth.dev/registry': 'main' },
        },
      },
      own: ['reg/main'],
      elsewhere: [],
    },
  ])('$case', ({ obj, own, elsewhere }) => {
    expect(ownNamespaceChild(obj)).toEqual(own);
    expect(credentialElsewhere(obj)).toEqual(elsewhere);
  });
});

describe('namespaceLabelsChanged', () => {
  const ns = (name: string, labels?: Record<string, string>, terminating = false): k8s.V1Namespace => ({
    metadata: {
      name,
      ...(labels ? { labels } : {}),
      ...(terminating ? { deletionTimestamp: new Date() } : {}),
    },
  });

  it('is true for a namespace first seen and for a label change, false for anything else', () => {
    const changed = namespaceLabelsChanged();
    const steps: [k8s.V1Namespace, boolean][] = [
      [ns('a', { team: 'x' }), true], // first seen
      [ns('a', { team: 'x' }), false], // status or annotation update, resync
      [ns('a', { team: 'y' }), true], // value changed
      [ns('a', { team: 'y', pull: 'on' }), true], // label added
      [ns('a', { pull: 'on' }), true], // label removed
      [ns('a', { pull: 'on' }), false],
      [ns('b'), true],
      [ns('b', {}), false], // no labels and empty labels are the same
      [ns('a', { pull: 'on' }, true), false], // terminating: its Secrets go as Secret events
      [ns('a', { pull: 'on' }), true], // created again
    ];
    expect(steps.map(([obj]) => changed(obj))).toEqual(steps.map(([, expected]) => expected));
  });
});
