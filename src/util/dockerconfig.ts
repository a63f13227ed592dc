// The `.dockerconfigjson` document of kubernetes.io/dockerconfigjson Secrets.

export interface DockerConfig {
  auths: Record<string, { username: string; password: string; auth: string }>;
}

/** A docker config granting `username`/`password` on every host in `hosts`. */
export function dockerConfigJson(hosts: string[], username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const auths = Object.fromEntries([...new Set(hosts)].sort().map((h) => [h, { username, password, auth }]));
  return JSON.stringify({ auths } satisfies DockerConfig);
}

/** One entry of a docker config, its `auth` decoded when it names no username and password. */
export interface DockerConfigEntry {
  host: string;
  username?: string;
  password?: string;
}

/** Every entry of a docker config (in the document's order); undefined when it is not one. Never throws. */
export function dockerConfigEntries(text: string | undefined): DockerConfigEntry[] | undefined {
  if (!text) return undefined;
  let parsed: Partial<DockerConfig>;
  try {
    parsed = JSON.parse(text) as Partial<DockerConfig>;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  return Object.entries(parsed.auths ?? {}).map(([host, entry]) => {
    let { username, password } = entry ?? {};
    if ((!username || !password) && typeof entry?.auth === 'string') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) {
        username = decoded.slice(0, i);
        password = decoded.slice(i + 1);
      }
    }
    return { host, ...(username ? { username } : {}), ...(password ? { password } : {}) };
  });
}

/** The credentials in a docker config (its first entry's), if it is one; never throws. */
export function parseDockerConfig(
  text: string | undefined,
): { hosts: string[]; username: string; password: string } | undefined {
  const entries = dockerConfigEntries(text);
  const first = entries?.[0];
  if (!first?.username || !first.password) return undefined;
  return { hosts: entries!.map((e) => e.host).sort(), username: first.username, password: first.password };
}
