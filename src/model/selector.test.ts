import { describe, expect, it } from '@jest/globals';
import { matchesSelector, SelectorError, type LabelSelector } from './selector.ts';

const labels = { team: 'a', 'berth.dev/pull': 'main', tier: 'prod' };

describe('matchesSelector', () => {
  it.each<{ name: string; selector: LabelSelector | undefined; want: boolean }>([
    { name: 'no selector', selector: undefined, want: true },
    { name: 'empty selector', selector: {}, want: true },
    { name: 'matchLabels hit', selector: { matchLabels: { 'berth.dev/pull': 'main' } }, want: true },
    { name: 'matchLabels miss', selector: { matchLabels: { 'berth.dev/pull': 'other' } }, want: false },
    { name: 'matchLabels absent key', selector: { matchLabels: { nope: 'x' } }, want: false },
    {
      name: 'In',
      selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['prod', 'dev'] }] },
      want: true,
    },
    {
      name: 'In miss',
      selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['dev'] }] },
      want: false,
    },
    {
      name: 'NotIn',
      selector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['dev'] }] },
      want: true,
    },
    {
      name: 'NotIn absent key',
      selector: { matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['dev'] }] },
      want: true,
    },
    { name: 'Exists', selector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, want: true },
    {
      name: 'DoesNotExist',
      selector: { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
      want: false,
    },
    {
      name: 'labels and expressions are ANDed',
      selector: {
        matchLabels: { team: 'a' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['dev'] }],
      },
      want: false,
    },
  ])('$name', ({ selector, want }) => expect(matchesSelector(selector, labels)).toBe(want));

  it('rejects an unknown operator', () =>
    expect(() => matchesSelector({ matchExpressions: [{ key: 'a', operator: 'Gt' }] }, labels)).toThrow(
      SelectorError,
    ));
});
