import { describe, expect, it } from '@jest/globals';
import {
  addPullSecret,
  managedEntriesAnnotation,
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
