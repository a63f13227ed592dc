import { liveObject } from './objects.ts';

describe('liveObject', () => {
  const obj = (deleting: boolean) => ({
    metadata: {
      name: 'a',
      namespace: 'n',
      ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: { x: 1 },
  });
  test.each([
    ['missing: nothing to do', undefined, false],
    ['being deleted: nothing to do', obj(true), false],
    ['live: the cached object and a copy', obj(false), true],
  ])('%s', (_name, cached, live) => {
    const got = liveObject({ get: () => cached }, { name: 'a', namespace: 'n' });
    expect(got !== undefined).toBe(live);
    if (got) {
      expect(got.object).toEqual(got.cached);
      expect(got.object).not.toBe(got.cached);
    }
  });
});
