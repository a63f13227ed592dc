// How many worker processes the token service runs by default: one per CPU it may use. That is
// the smaller of the CPUs it may be scheduled on (os.availableParallelism(): the affinity mask,
// a cpuset) and its CPU limit (the cgroup's CFS quota, which Kubernetes sets from
// `resources.limits.cpu`), rounded down and at least one. Rounding down, like Go's automaxprocs:
// a worker more than the quota allows gets throttled in bursts, which shows as tail latency.

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

/** The default number of workers for `availableParallelism` CPUs under an optional CPU limit. */
export function defaultWorkerCount(availableParallelism: number, cpuLimit: number | undefined): number {
  const byLimit = cpuLimit === undefined ? Number.POSITIVE_INFINITY : Math.floor(cpuLimit);
  return Math.max(1, Math.min(Math.floor(availableParallelism), byLimit));
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
