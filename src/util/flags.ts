// Subcommand flags: `--name=value` (node:util parseArgs, strict), each string flag falling back to
// its environment variable, and a typed error for bad usage (exit code 2).
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Flags<F extends string> {
  /** The flag's value, else its environment variable's, else undefined (empty counts as unset). */
  get(flag: F): string | undefined;
  /** Like get, but a missing value is a UsageError naming the flag and the variable. */
  required(flag: F): string;
  /** A boolean flag (`--cleanup`); undefined when absent. */
  bool(flag: string): boolean | undefined;
}

/** Parses `argv` for the string flags of `table` (flag → environment variable) and `booleans`. */
export function readFlags<F extends string>(
  argv: string[],
  env: Record<string, string | undefined>,
  table: Record<F, string>,
  booleans: string[] = [],
): Flags<F> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(Object.keys(table).map((k) => [k, { type: 'string' as const }])),
        ...Object.fromEntries(booleans.map((k) => [k, { type: 'boolean' as const }])),
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const get = (flag: F): string | undefined => {
    const v = values[flag];
    return typeof v === 'string' && v !== '' ? v : env[table[flag]] || undefined;
  };
  return {
    get,
    required: (flag) => {
      const v = get(flag);
      if (v === undefined) throw new UsageError(`--${flag} (or ${table[flag]}) is required`);
      return v;
    },
    bool: (flag) => (typeof values[flag] === 'boolean' ? (values[flag] as boolean) : undefined),
  };
}
