// What the operator tells the node agents, and how they read it. The operator renders one
// ConfigMap per Registry (`<registry>-node-access`) holding `config.json` (this shape) and
// `ca.crt`; the DaemonSet mounts it, so the agents need no Kubernetes API access.

export const configKeys = { config: 'config.json', ca: 'ca.crt' } as const;

export interface NodeAccessConfig {
  version: 1;
  /** `<namespace>/<name>` of the Registry: the agent refuses a configuration for another one. */
  registry: string;
  /** Where containerd connects: `https://<cluster IP>:<port>` (or http:// with TLS disabled). */
  server: string;
  /** The registry host names, as containerd looks them up: one `certs.d` folder each. */
  hosts: string[];
  /** Lines for the node's hosts file, so the token realm's host resolves on the node. */
  aliases?: { ip: string; names: string[] };
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

const hostPattern =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/;
const ipPattern = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]+)$/;

/** A folder name under certs.d that is a plain host[:port], never a path. */
export function isHostName(value: string): boolean {
  return value.length <= 260 && hostPattern.test(value);
}

/** Parses `config.json`; every string that becomes a path or a hosts line is checked. */
export function parseNodeAccessConfig(text: string): ParseResult<NodeAccessConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `config.json is not JSON: ${(err as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null) return { ok: false, error: 'config.json is not an object' };
  const c = raw as Record<string, unknown>;
  if (c.version !== 1) return { ok: false, error: `config.json version ${String(c.version)} is not 1` };
  if (typeof c.registry !== 'string' || !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(c.registry))
    return { ok: false, error: 'config.json registry must be "<namespace>/<name>"' };
  if (typeof c.server !== 'string' || !/^https?:\/\/(?:\[[0-9a-fA-F:]+\]|[0-9.]+):\d{1,5}$/.test(c.server))
    return { ok: false, error: 'config.json server must be http(s)://<ip>:<port>' };
  if (!Array.isArray(c.hosts) || !c.hosts.every((h) => typeof h === 'string' && isHostName(h)))
    return { ok: false, error: 'config.json hosts must be a list of host[:port] names' };
  const config: NodeAccessConfig = {
    version: 1,
    registry: c.registry,
    server: c.server,
    hosts: [...new Set(c.hosts as string[])],
  };
  if (c.aliases !== undefined) {
    const a = c.aliases as { ip?: unknown; names?: unknown };
    if (
      typeof a !== 'object' ||
      a === null ||
      typeof a.ip !== 'string' ||
      !ipPattern.test(a.ip) ||
      !Array.isArray(a.names) ||
      !a.names.every((n) => typeof n === 'string' && isHostName(n) && !n.includes(':'))
    )
      return { ok: false, error: 'config.json aliases must be {ip, names: [host names]}' };
    config.aliases = { ip: a.ip, names: a.names as string[] };
  }
  return { ok: true, value: config };
}

/** Renders `config.json` (stable key order, so an unchanged Registry renders the same bytes). */
export function renderNodeAccessConfig(config: NodeAccessConfig): string {
  const out: NodeAccessConfig = {
    version: 1,
    registry: config.registry,
    server: config.server,
    hosts: config.hosts,
  };
  if (config.aliases) out.aliases = { ip: config.aliases.ip, names: config.aliases.names };
  return `${JSON.stringify(out, null, 2)}\n`;
}
