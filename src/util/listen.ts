// A listen address flag: HOST:PORT, [IPv6]:PORT or :PORT (all interfaces).
import { UsageError } from './flags.ts';
export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListenAddress(text: string, flag: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--${flag} must be HOST:PORT, got "${text}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
