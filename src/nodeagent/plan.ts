// Pure: what the node agent must change on a node, from what it wants and what is there.
//
// Ownership is explicit, so nothing berth did not write is ever touched: every certs.d folder the
// agent writes holds a marker file (`.berth-node-agent`, ignored by containerd) naming the
// Registry and the files the agent wrote there. A folder without that marker, or with another
// Registry's, is someone else's: the agent reports a conflict and leaves it alone. In the hosts
// file the agent owns exactly the lines between its BEGIN and END lines.
import type { NodeAccessConfig } from '../model/node-access-config.ts';

export const markerFile = '.berth-node-agent';
export const hostsTomlFile = 'hosts.toml';
export const caFile = 'ca.crt';

export interface Marker {
  registry: string;
  files: string[];
}

export interface FolderState {
  /** The parsed marker, `null` when the folder has none (or one that is not berth's). */
  marker: Marker | null;
  /** Contents of the files of interest that exist (marker-listed and the ones the agent writes). */
  files: Record<string, string>;
}

export interface NodeState {
  /** Folders directly under certs.d, by name. */
  folders: Record<string, FolderState>;
  /** The hosts file's content; undefined when the agent does not manage a hosts file. */
  hostsFile?: string;
}

export interface Desired {
  registry: string;
  /** undefined: clean up (the Registry is gone or nodeAccess is off). */
  config?: NodeAccessConfig;
  caPem?: string;
  /** certs.d as containerd sees it (hosts.toml names its CA by this absolute path). */
  hostCertsDir: string;
}

export type Action =
  | { kind: 'mkdir'; folder: string }
  | { kind: 'write'; folder: string; file: string; content: string }
  | { kind: 'remove'; folder: string; file: string }
  | { kind: 'rmdir'; folder: string }
  | { kind: 'hosts'; content: string };

export interface Plan {
  actions: Action[];
  /** Folders the agent wants but may not touch, with why. */
  conflicts: { folder: string; reason: string }[];
}

export function parseMarker(text: string | undefined): Marker | null {
  if (text === undefined) return null;
  try {
    const m = JSON.parse(text) as { registry?: unknown; files?: unknown };
    if (typeof m.registry !== 'string' || !Array.isArray(m.files)) return null;
    const files = m.files.filter((f): f is string => typeof f === 'string' && /^[A-Za-z0-9._-]+$/.test(f));
    return { registry: m.registry, files: files.filter((f) => f !== markerFile && f !== '.' && f !== '..') };
  } catch {
    return null;
  }
}

export function renderMarker(marker: Marker): string {
  return `${JSON.stringify({ registry: marker.registry, files: marker.files, writtenBy: 'berth node-agent' })}\n`;
}

function tomlString(value: string): string {
  return JSON.stringify(value); // a TOML basic string: the same escapes as JSON for these values
}

/** containerd's hosts.toml for one registry host name. */
export function renderHostsToml(
  config: NodeAccessConfig,
  host: string,
  hostCertsDir: string,
  withCA: boolean,
): string {
  const lines = [
    `# Written by the berth node agent for Registry ${config.registry}; it is rewritten, do not edit.`,
    `# containerd reaches ${host} at the Service's cluster IP and verifies TLS with berth's CA.`,
    `server = ${tomlString(config.server)}`,
    `capabilities = ["pull", "resolve"]`,
  ];
  if (withCA) lines.push(`ca = ${tomlString(`${hostCertsDir.replace(/\/+$/, '')}/${host}/${caFile}`)}`);
  return `${lines.join('\n')}\n`;
}

export function hostsBlockMarkers(registry: string): { begin: string; end: string } {
  return {
    begin: `# BEGIN berth node agent ${registry} (managed: do not edit)`,
    end: `# END berth node agent ${registry}`,
  };
}

/**
 * The hosts file with the agent's block set to `entries` (or removed when there are none). Every
 * other line stays as it is, in place; a block that exists is replaced where it stands.
 */
export function mergeHostsFile(current: string, registry: string, entries: string[]): string {
  const { begin, end } = hostsBlockMarkers(registry);
  const lines = current.split('\n');
  const trailingNewline = current.endsWith('\n');
  if (trailingNewline) lines.pop();
  const start = lines.indexOf(begin);
  const stop = start >= 0 ? lines.indexOf(end, start + 1) : -1;
  const block = entries.length ? [begin, ...entries, end] : [];
  let out: string[];
  if (start >= 0 && stop >= 0) out = [...lines.slice(0, start), ...block, ...lines.slice(stop + 1)];
  else if (start >= 0)
    out = [...lines.slice(0, start), ...block, ...lines.slice(start + 1)]; // a damaged block: only its header line was ours
  else out = [...lines, ...block];
  if (out.length === 0) return '';
  return `${out.join('\n')}${trailingNewline || block.length ? '\n' : ''}`;
}

/** The hosts lines the configuration asks for. */
export function hostsEntries(config: NodeAccessConfig | undefined): string[] {
  const a = config?.aliases;
  return a && a.names.length ? [`${a.ip} ${a.names.join(' ')}`] : [];
}

/** Files the agent writes into one host folder. */
function desiredFiles(d: Desired, config: NodeAccessConfig, host: string): Record<string, string> {
  const files: Record<string, string> = {};
  if (d.caPem) files[caFile] = d.caPem.endsWith('\n') ? d.caPem : `${d.caPem}\n`;
  files[hostsTomlFile] = renderHostsToml(config, host, d.hostCertsDir, !!d.caPem);
  return files;
}

export function planNode(d: Desired, state: NodeState): Plan {
  const actions: Action[] = [];
  const conflicts: Plan['conflicts'] = [];
  const wanted = new Set(d.config?.hosts ?? []);

  for (const host of [...wanted].sort()) {
    const files = desiredFiles(d, d.config!, host);
    const names = Object.keys(files).sort();
    const folder = state.folders[host];
    if (folder && folder.marker?.registry !== d.registry) {
      conflicts.push({
        folder: host,
        reason: folder.marker
          ? `written by the node agent of Registry ${folder.marker.registry}`
          : 'not written by berth (no .berth-node-agent marker): left alone',
      });
      continue;
    }
    if (!folder) actions.push({ kind: 'mkdir', folder: host });
    const marker = renderMarker({ registry: d.registry, files: names });
    // The marker goes first, so a folder the agent started to fill is always known to be its own.
    if (folder?.files[markerFile] !== marker)
      actions.push({ kind: 'write', folder: host, file: markerFile, content: marker });
    for (const name of names) {
      if (folder?.files[name] !== files[name])
        actions.push({ kind: 'write', folder: host, file: name, content: files[name]! });
    }
    for (const old of folder?.marker?.files ?? []) {
      if (!(old in files) && old in folder!.files) actions.push({ kind: 'remove', folder: host, file: old });
    }
  }

  for (const name of Object.keys(state.folders).sort()) {
    const folder = state.folders[name]!;
    if (wanted.has(name) || folder.marker?.registry !== d.registry) continue;
    for (const file of folder.marker.files)
      if (file in folder.files) actions.push({ kind: 'remove', folder: name, file });
    actions.push({ kind: 'remove', folder: name, file: markerFile });
    actions.push({ kind: 'rmdir', folder: name });
  }

  if (state.hostsFile !== undefined) {
    const next = mergeHostsFile(state.hostsFile, d.registry, hostsEntries(d.config));
    if (next !== state.hostsFile) actions.push({ kind: 'hosts', content: next });
  }
  return { actions, conflicts };
}
