// How many worker processes the token service runs by default: one per CPU it may use, as many
// as its memory allows. The CPUs are the smaller of those it may be scheduled on
// (os.availableParallelism(): the affinity mask, a cpuset) and its CPU limit (the cgroup's CFS
// quota, which Kubernetes sets from `resources.limits.cpu`), rounded down like Go's automaxprocs
// (a worker more than the quota allows is throttled in bursts: tail latency). The memory is the
// cgroup's limit (`resources.limits.memory`): every worker is a V8 heap of its own, so under a
// limit each one needs `memoryPerWorkerMiB` beside `memoryReserveMiB` for the primary and the
// shared code pages, and gets a V8 old space of half its share (V8 sizes a heap from the whole
// container's limit, not from a share of it). Always at least one.

/** A CPU limit in CPUs from cgroup v2's `cpu.max` ("max 100000" or "150000 100000"). */
export function parseCgroupV2CpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return cpus(Number(quota), Number(period ?? 100_000));
}

/** A CPU limit in CPUs from cgroup v1's `cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us`. */
export function parseCgroupV1Quota(quotaText: string, periodText: string): number | undefined {
  return cpus(Number(quotaText.trim()), Number(periodText.trim()));
}

function cpus(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

/** Measured (RssAnon under load, old space capped): a worker ~64–96 MiB, the primary ~24 MiB, code ~53 MiB. */
export const memoryPerWorkerMiB = 96;
export const memoryReserveMiB = 88;
const MiB = 2 ** 20;

export interface ProcessLimits {
  /** CPUs from the cgroup's quota, if any. */
  cpus?: number | undefined;
  /** Bytes from the cgroup's memory limit, if any. */
  memoryBytes?: number | undefined;
}

/** The default number of workers for `availableParallelism` CPUs under the process's limits. */
export function defaultWorkerCount(availableParallelism: number, limits: ProcessLimits = {}): number {
  const byCpu = limits.cpus === undefined ? Number.POSITIVE_INFINITY : Math.floor(limits.cpus);
  const byMemory =
    limits.memoryBytes === undefined
      ? Number.POSITIVE_INFINITY
      : Math.floor((limits.memoryBytes / MiB - memoryReserveMiB) / memoryPerWorkerMiB);
  return Math.max(1, Math.min(Math.floor(availableParallelism), byCpu, byMemory));
}

/** The V8 old space for each of `workers` workers under a memory limit (MiB); none without one. */
export function workerHeapMiB(memoryBytes: number | undefined, workers: number): number | undefined {
  if (memoryBytes === undefined) return undefined;
  return Math.max(32, Math.floor((memoryBytes / MiB - memoryReserveMiB) / workers / 2));
}

/** A memory limit in bytes from cgroup v2's `memory.max` ("max") or v1's `memory.limit_in_bytes`. */
export function parseMemoryLimit(text: string): number | undefined {
  const n = Number(text.trim());
  // cgroup v1 says "no limit" with a number near 2^63.
  if (!Number.isFinite(n) || n <= 0 || n >= 2 ** 60) return undefined;
  return n;
}

/** Reads this process's CPU and memory limits (cgroup v2, else v1). */
export function readProcessLimits(readText: (file: string) => string | undefined): ProcessLimits {
  const memory =
    readText('/sys/fs/cgroup/memory.max') ?? readText('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  return {
    cpus: readCpuLimit(readText),
    memoryBytes: memory === undefined ? undefined : parseMemoryLimit(memory),
  };
}

/** Reads this process's CPU limit (cgroup v2, else v1); undefined when there is none or it is unreadable. */
export function readCpuLimit(readText: (file: string) => string | undefined): number | undefined {
  const v2 = readText('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) return parseCgroupV2CpuMax(v2);
  const quota = readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  const period = readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us');
  if (quota === undefined || period === undefined) return undefined;
  return parseCgroupV1Quota(quota, period);
}
