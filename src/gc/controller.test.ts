import { describe, expect, it } from '@jest/globals';
import { names } from '../model/names.ts';
import { mapNamed } from './controller.ts';

const owned = (namespace: string, name: string, extra: Record<string, string> = {}) => ({
  metadata: { name, namespace, labels: { 'berth.dev/registry': 'main', ...extra } },
});

describe('mapNamed: the GC controller reconciles on its Registry’s workload and config only', () => {
  it.each([
    { case: 'the config Secret', obj: owned('reg', 'main-registry-config'), keys: ['reg/main'] },
    { case: 'another Secret of the Registry', obj: owned('reg', 'main-tls'), keys: [] },
    {
      case: 'a pull Secret in another namespace',
      obj: owned('team-a', 'main-registry-config', { 'berth.dev/registry-namespace': 'reg' }),
      keys: [],
    },
    {
      case: 'not a Registry child',
      obj: { metadata: { name: 'main-registry-config', namespace: 'reg' } },
      keys: [],
    },
  ])('$case', ({ obj, keys }) => {
    expect(mapNamed(obj, names.configSecret)).toEqual(keys);
  });

  it('maps the workload Deployment, not the token service’s', () => {
    expect(mapNamed(owned('reg', 'main-registry'), names.workload)).toEqual(['reg/main']);
    expect(mapNamed(owned('reg', 'main-token'), names.workload)).toEqual([]);
  });
});
