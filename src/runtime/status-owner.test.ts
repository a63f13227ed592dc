import { ownedPart, samePart, statusWrites, type StatusOwner } from './status-owner.ts';

const owner: StatusOwner = { manager: 'berth-x', fields: ['endpoint', 'caConfigMap'], conditions: ['Ready'] };
const ready = (status: string, message = 'm') => ({
  type: 'Ready',
  status,
  reason: 'R',
  message,
  lastTransitionTime: '2026-01-01T00:00:00Z',
});
const other = {
  type: 'PullSecretsReady',
  status: 'True',
  reason: 'R',
  message: 'm',
  lastTransitionTime: 't',
};

describe('ownedPart', () => {
  it.each([
    [
      'only the owner fields and conditions',
      { endpoint: 'e', pullSecrets: {}, conditions: [other, ready('True')] },
      { endpoint: 'e', conditions: [ready('True')] },
    ],
    ['nothing owned', { pullSecrets: {}, conditions: [other] }, {}],
    ['garbage status', 'not an object', {}],
    ['undefined fields left out', { endpoint: undefined, caConfigMap: 'ca' }, { caConfigMap: 'ca' }],
  ])('%s', (_name, status, want) => {
    expect(ownedPart(status, owner)).toEqual(want);
  });
});

describe('samePart', () => {
  it('compares conditions by type, not by order', () => {
    const two: StatusOwner = { ...owner, conditions: ['Ready', 'Degraded'] };
    const degraded = { ...ready('False'), type: 'Degraded' };
    expect(
      samePart(
        ownedPart({ conditions: [ready('True'), degraded] }, two),
        ownedPart({ conditions: [degraded, ready('True')] }, two),
      ),
    ).toBe(true);
    expect(samePart({ conditions: [ready('True')] }, { conditions: [ready('False')] })).toBe(false);
  });
});

describe('statusWrites', () => {
  it.each([
    {
      name: 'nothing to write when the object holds the part (others fields ignored)',
      status: { endpoint: 'e', pullSecrets: { x: 1 }, conditions: [other, ready('True')] },
      desired: { endpoint: 'e', conditions: [ready('True')] },
      want: { removals: [] },
    },
    {
      name: 'an apply of the part when a value changed',
      status: { endpoint: 'e', conditions: [ready('True')] },
      desired: { endpoint: 'e', conditions: [ready('False')] },
      want: { removals: [], apply: { endpoint: 'e', conditions: [ready('False')] } },
    },
    {
      name: 'a dropped field is removed by a tested JSON patch, no apply when the rest holds',
      status: { endpoint: 'e', caConfigMap: 'ca' },
      desired: { endpoint: 'e' },
      want: {
        removals: [
          { op: 'test', path: '/status/caConfigMap', value: 'ca' },
          { op: 'remove', path: '/status/caConfigMap' },
        ],
      },
    },
    {
      name: 'a dropped condition is removed at its index; another owner’s stays',
      status: { conditions: [other, ready('True')] },
      desired: {},
      want: {
        removals: [
          { op: 'test', path: '/status/conditions/1', value: ready('True') },
          { op: 'remove', path: '/status/conditions/1' },
        ],
      },
    },
    {
      name: 'an empty part on an empty status writes nothing',
      status: undefined,
      desired: {},
      want: { removals: [] },
    },
    {
      name: 'a first write applies the part',
      status: undefined,
      desired: { endpoint: 'e' },
      want: { removals: [], apply: { endpoint: 'e' } },
    },
  ])('$name', ({ status, desired, want }) => {
    expect(statusWrites({ status }, owner, desired)).toEqual(want);
  });

  it('removes several dropped conditions from the highest index down', () => {
    const two: StatusOwner = { ...owner, conditions: ['Ready', 'NodesReady'] };
    const nodes = { ...ready('True'), type: 'NodesReady' };
    const { removals } = statusWrites({ status: { conditions: [nodes, other, ready('True')] } }, two, {});
    expect(removals.filter((op) => op.op === 'remove').map((op) => op.path)).toEqual([
      '/status/conditions/2',
      '/status/conditions/0',
    ]);
  });
});
