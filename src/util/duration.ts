// Go-style durations ("2160h", "1h30m", "90s"), as the CRDs and Distribution use them.

const units: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

export class DurationError extends Error {
  override name = 'DurationError';
}

/** Parses a Go duration into milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(trimmed)) !== null) {
    total += Number(match[1]) * (units[match[2] ?? ''] ?? Number.NaN);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== trimmed.length || !Number.isFinite(total)) {
    throw new DurationError(`"${text}" is not a duration such as 720h, 1h30m or 90s`);
  }
  return total;
}

/** Formats milliseconds as a Go duration with hours, minutes and seconds ("26h0m0s" style, trimmed). */
export function formatDuration(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
