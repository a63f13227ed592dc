// A concurrency limit: at most `n` of the functions given to it run at once.

export type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export function createLimit(n: number): Limit {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`a concurrency limit must be at least 1, got ${n}`);
  let active = 0;
  const waiting: (() => void)[] = [];
  // A finishing call hands its slot straight to the next waiter, so no newcomer can slip in between.
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      release();
    }
  };
}

/** Maps `items` through `fn` with at most `n` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const limit = createLimit(n);
  return Promise.all(items.map((item) => limit(() => fn(item))));
}
