// One run at a time, and none lost: the node agent's sync and the token service's store check are
// asked for by several sources at once (a watch, a poll, a signal). A call while a run is under
// way shares that run and asks for one more after it, so a change seen during a run is always
// read by a later one, and bursts of calls cost at most two runs.

export interface Serial<T> {
  (): Promise<T>;
  /** Resolves when no run is under way (a failed run included), for a clean stop. */
  idle(): Promise<void>;
}

/** `run` wrapped: concurrent calls share the current run; a call during a run schedules one more. */
export function serialWithRerun<T>(run: () => Promise<T>): Serial<T> {
  let running: Promise<T> | undefined;
  let again = false;
  const call = (): Promise<T> => {
    if (running) {
      again = true;
      return running;
    }
    running = run().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void call().catch(() => undefined); // the rerun reports its own failures
      }
    });
    return running;
  };
  const idle = async (): Promise<void> => {
    while (running) await running.then(noop, noop);
  };
  return Object.assign(call, { idle });
}

const noop = (): void => undefined;
