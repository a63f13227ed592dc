import { describe, expect, it } from '@jest/globals';
import { defaultWorkerCount, parseCgroupV1Quota, parseCgroupV2CpuMax, readCpuLimit } from './worker-count.ts';

describe('parseCgroupV2CpuMax', () => {
  it.each<[string, string, number | undefined]>([
    ['no limit', 'max 100000\n', undefined],
    ['two CPUs', '200000 100000\n', 2],
    ['half a CPU', '50000 100000', 0.5],
    ['another period', '150000 50000', 3],
    ['garbage', 'lots', undefined],
    ['empty', '', undefined],
  ])('%s', (_name, text, cpus) => {
    expect(parseCgroupV2CpuMax(text)).toBe(cpus);
  });
});

describe('parseCgroupV1Quota', () => {
  it.each<[string, string, string, number | undefined]>([
    ['no limit', '-1\n', '100000\n', undefined],
    ['1.5 CPUs', '150000\n', '100000\n', 1.5],
    ['a zero period', '100000', '0', undefined],
  ])('%s', (_name, quota, period, cpus) => {
    expect(parseCgroupV1Quota(quota, period)).toBe(cpus);
  });
});

describe('defaultWorkerCount', () => {
  it.each<[string, number, number | undefined, number]>([
    ['every CPU without a limit', 8, undefined, 8],
    ['the limit when it is lower', 8, 2, 2],
    ['rounded down', 8, 2.5, 2],
    ['at least one under a fractional limit', 8, 0.5, 1],
    ['the CPUs when the limit is higher', 2, 4, 2],
    ['one CPU', 1, undefined, 1],
  ])('%s', (_name, available, limit, workers) => {
    expect(defaultWorkerCount(available, limit)).toBe(workers);
  });
});

describe('readCpuLimit', () => {
  const files =
    (contents: Record<string, string>) =>
    (file: string): string | undefined =>
      contents[file];

  it.each<[string, Record<string, string>, number | undefined]>([
    ['cgroup v2', { '/sys/fs/cgroup/cpu.max': '300000 100000' }, 3],
    ['cgroup v2 without a limit', { '/sys/fs/cgroup/cpu.max': 'max 100000' }, undefined],
    [
      'cgroup v1',
      { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' },
      2,
    ],
    ['neither', {}, undefined],
  ])('%s', (_name, contents, cpus) => {
    expect(readCpuLimit(files(contents))).toBe(cpus);
  });
});
