import { describe, expect, it } from '@jest/globals';
import {
  addPullSecret,
  managedEntriesAnnotation,
  orphanedEntries,
  removePullSecret,
  targetsServiceAccount,
  type ServiceAccountLike,
} from './service-accounts.ts';

const sa = (names: string[], managed?: string): ServiceAccountLike => ({
  metadata: { annotations: managed === undefined ? {} : { [managedEntriesAnnotation]: managed } },
  imagePullSecrets: names.map((name) => ({ name })),
});

describe('addPullSecret', () => {
  it('appends after foreign entries, keeping their order', () => {
    expect(addPullSecret(sa(['theirs', 'other']), 'main-pull')).toEqual({
      imagePullSecrets: [{ name: 'theirs' }, { name: 'other' }, { name: 'main-pull' }],
      annotation: 'main-pull',
    });
  });
  it('changes nothing when the entry is there', () => {
    expect(addPullSecret(sa(['main-pull'], 'main-pull'), 'main-pull')).toBeUndefined();
  });
  it('does not claim a same-named entry someone else added', () => {
    expect(addPullSecret(sa(['main-pull']), 'main-pull')).toBeUndefined();
  });
  it('records several registries’ entries', () => {
    expect(addPullSecret(sa(['a-pull'], 'a-pull'), 'b-pull')?.annotation).toBe('a-pull,b-pull');
  });
  it('works on a ServiceAccount without a list', () => {
    expect(addPullSecret({}, 'x')).toEqual({ imagePullSecrets: [{ name: 'x' }], annotation: 'x' });
  });
});

describe('removePullSecret', () => {
  it('removes only berth’s entry and keeps the order of the rest', () => {
    expect(removePullSecret(sa(['theirs', 'main-pull', 'other'], 'main-pull'), 'main-pull')).toEqual({
      imagePullSecrets: [{ name: 'theirs' }, { name: 'other' }],
      annotation: null,
    });
  });
  it('leaves a same-named entry that berth did not add', () => {
    expect(removePullSecret(sa(['main-pull']), 'main-pull')).toBeUndefined();
  });
  it('keeps the record of other registries’ entries', () => {
    expect(removePullSecret(sa(['a-pull', 'b-pull'], 'a-pull,b-pull'), 'a-pull')).toEqual({
      imagePullSecrets: [{ name: 'b-pull' }],
      annotation: 'b-pull',
    });
  });
});

describe('targetsServiceAccount', () => {
  it.each([
    { policy: undefined, sa: 'default', want: true },
    { policy: undefined, sa: 'builder', want: false },
    { policy: { all: true }, sa: 'builder', want: true },
    { policy: { names: ['builder'] }, sa: 'builder', want: true },
    { policy: { names: ['builder'] }, sa: 'default', want: false },
    { policy: { names: [] }, sa: 'default', want: false },
  ])('$policy → $sa: $want', ({ policy, sa: name, want }) =>
    expect(targetsServiceAccount(policy, name)).toBe(want),
  );
});

describe('orphanedEntries', () => {
  const in_ = (namespace: string, names: string[], managed?: string) => ({
    ...sa(names, managed),
    metadata: { ...sa(names, managed).metadata, namespace },
  });
  const accounts = [
    in_('selected', ['main-pull'], 'main-pull'), // still selected: attach() keeps it
    in_('left', ['theirs', 'main-pull'], 'main-pull'), // deselected, Secret gone: orphaned
    in_('foreign', ['main-pull']), // someone else's same-named entry
    in_('has-secret', ['main-pull'], 'main-pull'), // its Secret still there: the Secret's removal handles it
    in_('other-name', ['gone-pull'], 'gone-pull'), // another of berth's names
  ];
  it('finds only berth’s entries in namespaces without the selection and without the Secret', () => {
    const got = orphanedEntries(accounts, 'main-pull', new Set(['selected']), (ns) => ns === 'has-secret');
    expect(got.map((a) => a.metadata.namespace)).toEqual(['left']);
  });
  it('finds nothing when every namespace is selected', () => {
    const all = new Set(accounts.map((a) => a.metadata.namespace));
    expect(orphanedEntries(accounts, 'main-pull', all, () => false)).toEqual([]);
  });
});
