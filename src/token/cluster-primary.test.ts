import { describe, expect, it } from '@jest/globals';
import { workerExecArgv } from './cluster-primary.ts';

describe('workerExecArgv', () => {
  it.each<[string, string[], string[]]>([
    ['nothing', [], []],
    ['Node options pass', ['--enable-source-maps', '--cpu-prof'], ['--enable-source-maps', '--cpu-prof']],
    [
      'a script given with -e does not',
      ['--input-type=module', '-e', 'await import("x")', '--max-old-space-size=100'],
      ['--max-old-space-size=100'],
    ],
    ['--eval=… and -p', ['--eval=1', '-p', '2', '--trace-warnings'], ['--trace-warnings']],
  ])('%s', (_name, execArgv, expected) => {
    expect(workerExecArgv(execArgv)).toEqual(expected);
  });
});
