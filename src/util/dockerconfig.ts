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

/** The credentials in a docker config, if it is one; never throws. */
export function parseDockerConfig(
  text: string | undefined,
): { hosts: string[]; username: string; password: string } | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<DockerConfig>;
    const entries = Object.entries(parsed.auths ?? {});
    const first = entries[0]?.[1];
    if (!first) return undefined;
    let { username, password } = first;
    if ((!username || !password) && first.auth) {
      const decoded = Buffer.from(first.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      username = decoded.slice(0, i);
      password = decoded.slice(i + 1);
    }
    if (!username || !password) return undefined;
    return { hosts: entries.map(([h]) => h).sort(), username, password };
  } catch {
    return undefined;
  }
}
