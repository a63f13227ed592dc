import { describe, expect, it } from '@jest/globals';
import {
  defaultWorkerCount,
  parseCgroupV1Quota,
  parseCgroupV2CpuMax,
  parseMemoryLimit,
  readCpuLimit,
  readProcessLimits,
  workerHeapMiB,
  type ProcessLimits,
} from './worker-count.ts';

const MiB = 2 ** 20;

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
  it.each<[string, number, ProcessLimits, number]>([
    ['every CPU without a limit', 8, {}, 8],
    ['the CPU limit when it is lower', 8, { cpus: 2 }, 2],
    ['rounded down', 8, { cpus: 2.5 }, 2],
    ['at least one under a fractional limit', 8, { cpus: 0.5 }, 1],
    ['the CPUs when the limit is higher', 2, { cpus: 4 }, 2],
    ['one CPU', 1, {}, 1],
    ['one under a 192 MiB memory limit (one process, as before)', 8, { memoryBytes: 192 * MiB }, 1],
    ['two in 300 MiB', 8, { memoryBytes: 300 * MiB }, 2],
    ['four in 512 MiB', 8, { memoryBytes: 512 * MiB }, 4],
    ['the smaller of the CPU and the memory bound', 8, { cpus: 3, memoryBytes: 1024 * MiB }, 3],
    ['at least one in a tiny limit', 8, { memoryBytes: 64 * MiB }, 1],
  ])('%s', (_name, available, limits, workers) => {
    expect(defaultWorkerCount(available, limits)).toBe(workers);
  });
});

describe('workerHeapMiB', () => {
  it.each<[string, number | undefined, number, number | undefined]>([
    ['no limit: V8 decides', undefined, 4, undefined],
    ['half of each worker’s share', 512 * MiB, 4, 53],
    ['never below 32 MiB', 192 * MiB, 4, 32],
  ])('%s', (_name, memory, workers, heap) => {
    expect(workerHeapMiB(memory, workers)).toBe(heap);
  });
});

describe('parseMemoryLimit', () => {
  it.each<[string, number | undefined]>([
    ['max\n', undefined],
    ['201326592\n', 192 * MiB],
    ['9223372036854771712', undefined],
    ['nope', undefined],
  ])('%j', (text, bytes) => {
    expect(parseMemoryLimit(text)).toBe(bytes);
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

describe('readProcessLimits', () => {
  it('reads cgroup v2 CPU and memory limits', () => {
    const files: Record<string, string> = {
      '/sys/fs/cgroup/cpu.max': '200000 100000',
      '/sys/fs/cgroup/memory.max': '536870912',
    };
    expect(readProcessLimits((f) => files[f])).toEqual({ cpus: 2, memoryBytes: 512 * MiB });
  });

  it('reads cgroup v1, and nothing when there is no cgroup file', () => {
    const v1: Record<string, string> = {
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712',
    };
    expect(readProcessLimits((f) => v1[f])).toEqual({ cpus: undefined, memoryBytes: undefined });
    expect(readProcessLimits(() => undefined)).toEqual({ cpus: undefined, memoryBytes: undefined });
  });
});
