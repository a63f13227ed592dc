import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { functionSizes, sourceFunctionSizes } from './function-sizes.ts';

describe('functionSizes', () => {
  test('counts every kind of function from its first line to its last, nested ones too', () => {
    const text = [
      'export function outer(a: number): number {', // 1
      '  const inner = (b: number) => {', // 2
      '    return b + 1;', // 3
      '  };', // 4
      '  return inner(a);', // 5
      '}', // 6
      'class C {', // 7
      '  method(): void {}', // 8
      '  constructor() {', // 9
      '    void 0;', // 10
      '  }', // 11
      '}', // 12
      'const f = function () {', // 13
      '  return 1;', // 14
      '};', // 15
      'declare function bodiless(): void;', // 16
    ].join('\n');
    expect(functionSizes('x.ts', text).map((s) => [s.name, s.line, s.lines])).toEqual([
      ['outer', 1, 6],
      ['inner', 2, 3],
      ['method', 8, 1],
      ['constructor', 9, 3],
      ['f', 13, 3],
    ]);
  });

  test('src/ holds no function longer than 60 lines (npm run check says the same)', () => {
    const sizes = sourceFunctionSizes(path.resolve(import.meta.dirname, '../src'));
    expect(sizes.length).toBeGreaterThan(500);
    expect(
      sizes.filter((s) => s.lines > 60).map((s) => `src/${s.file}:${s.line} ${s.name} ${s.lines}`),
    ).toEqual([]);
  });
});
