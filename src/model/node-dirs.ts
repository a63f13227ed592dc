// Pure: whether a Registry's `spec.nodeAccess.certsDir` lies under a folder the install allows the
// node agent to write (`--node-agent-allowed-dirs`, chart value `nodeAgent.allowedDirs`). The
// DaemonSet mounts certsDir read-write from every node, so a Registry must not pick `/etc` or `/`.
export const defaultAllowedDirs = ['/etc/containerd/certs.d'];

/**
 * An absolute path in one spelling (no `.`, no empty segments, no trailing slash), or undefined
 * when it is relative or climbs with `..`.
 */
export function normalizeDir(path: string): string | undefined {
  if (!path.startsWith('/')) return undefined;
  const parts: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return undefined;
    parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

export type DirCheck =
  { ok: true; dir: string } | { ok: false; reason: 'CertsDirNotAllowed'; message: string };

/** certsDir must be one of `allowed`, or a folder below one of them. */
export function checkCertsDir(certsDir: string, allowed: readonly string[]): DirCheck {
  const dir = normalizeDir(certsDir);
  const roots = allowed.map(normalizeDir).filter((d): d is string => d !== undefined);
  const list = roots.length ? roots.join(', ') : '(none)';
  if (dir === undefined)
    return {
      ok: false,
      reason: 'CertsDirNotAllowed',
      message: `spec.nodeAccess.certsDir "${certsDir}" is not an absolute path without '..'; the node agents may write only under ${list}`,
    };
  const under = roots.some((root) => dir === root || dir.startsWith(root === '/' ? '/' : `${root}/`));
  if (under) return { ok: true, dir };
  return {
    ok: false,
    reason: 'CertsDirNotAllowed',
    message: `spec.nodeAccess.certsDir ${dir} is outside the folders this installation lets the node agents write (${list}; operator flag --node-agent-allowed-dirs, chart value nodeAgent.allowedDirs): no node agent runs for this Registry`,
  };
}

/** Parses the comma-separated flag value; every entry must be an absolute path without `..`. */
export function parseAllowedDirs(value: string): { dirs: string[]; invalid: string[] } {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const dirs: string[] = [];
  const invalid: string[] = [];
  for (const e of entries) {
    const d = normalizeDir(e);
    if (d === undefined) invalid.push(e);
    else if (!dirs.includes(d)) dirs.push(d);
  }
  return { dirs, invalid };
}
