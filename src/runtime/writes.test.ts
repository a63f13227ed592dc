import { describe, expect, it } from '@jest/globals';
import { containsFields } from './objects.ts';
import { ownsOnly } from './writes.ts';

const desired = { metadata: { name: 'x', labels: { a: '1' } }, data: { k: 'v' } };

describe('skipping an apply that would change nothing', () => {
  it.each([
    ['identical fields', { metadata: { name: 'x', labels: { a: '1' }, uid: 'u' }, data: { k: 'v' } }, true],
    [
      'extra fields owned by others',
      { metadata: { name: 'x', labels: { a: '1', b: '2' } }, data: { k: 'v', o: 'w' } },
      true,
    ],
    ['a changed value', { metadata: { name: 'x', labels: { a: '1' } }, data: { k: 'changed' } }, false],
    ['a missing field', { metadata: { name: 'x' }, data: { k: 'v' } }, false],
  ])('containsFields: %s', (_name, actual, want) => {
    expect(containsFields(actual, desired)).toBe(want);
  });

  it('compares lists as a whole', () => {
    expect(containsFields({ l: [1, 2, 3] }, { l: [1, 2] })).toBe(false);
    expect(containsFields({ l: [{ a: 1, b: 2 }] }, { l: [{ a: 1 }] })).toBe(true);
  });

  it('applies when berth owns a field that it no longer wants (so the API server removes it)', () => {
    const managed = (fields: Record<string, unknown>) => ({
      metadata: { name: 'x', managedFields: [{ manager: 'berth', operation: 'Apply', fieldsV1: fields }] },
    });
    expect(ownsOnly(managed({ 'f:data': { 'f:k': {} } }), desired)).toBe(true);
    expect(ownsOnly(managed({ 'f:data': { 'f:k': {}, 'f:old': {} } }), desired)).toBe(false);
    expect(
      ownsOnly(managed({ 'f:metadata': { 'f:ownerReferences': { 'k:{"uid":"1"}': {} } } }), {
        metadata: { ownerReferences: [] },
      }),
    ).toBe(true);
    // fields of other managers do not matter
    expect(
      ownsOnly(
        {
          metadata: {
            managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
          },
        },
        desired,
      ),
    ).toBe(true);
  });
});
