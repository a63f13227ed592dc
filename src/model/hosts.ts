// Pure: which host names are a Registry's own, for the node agents and the Ingress.
//
// A Registry's Service names (`<svc>.<namespace>.svc`, `…svc.cluster.local`) are its own by
// construction: a namespace and name are unique. The one other host berth acts on is
// `spec.expose.ingress.host`: berth routes it to the Registry (an Ingress) and, with node access,
// tells every node's containerd to send that host's pulls to the Registry's cluster IP. That host is
// the Registry's own only when
//   - no older Registry (creationTimestamp, then namespace/name) has the same Ingress host, and it
//     is not another Registry's Service name: two Registries never claim one host; the younger
//     gets `Ready=False`, reason HostConflict, and berth configures that host for it nowhere (no
//     Ingress, no certs.d folder);
// and the node agents configure it only when, besides,
//   - it is not a cluster Service name (`*.svc`, `*.svc.<domain>`) and not a public registry that
//     clusters pull from (docker.io, registry.k8s.io, ghcr.io, …; `publicRegistryHosts`), which
//     no Registry may take over on the nodes;
//   - it matches the install's `--node-agent-allowed-hosts` patterns (default `*`).
// `spec.tls.dnsNames` only adds names to the serving certificate: a certificate from berth's CA
// takes nothing from anyone (nodes trust that CA per host folder, for the hosts above only), so
// dnsNames are not claims, and many Registries may name `localhost`.
import type { Registry } from '../api/index.ts';
import { serviceHostNames, type RegistryRef } from './names.ts';
import { servicePort } from './registry.ts';

/** Registries that clusters pull their system and public images from: never redirected on nodes. */
export const publicRegistryHosts: readonly string[] = [
  'docker.io',
  '*.docker.io',
  'registry.hub.docker.com',
  'registry.k8s.io',
  '*.registry.k8s.io',
  'k8s.gcr.io',
  'gcr.io',
  '*.gcr.io',
  '*.pkg.dev',
  'ghcr.io',
  'quay.io',
  '*.quay.io',
  'public.ecr.aws',
  '*.amazonaws.com',
  'mcr.microsoft.com',
  '*.azurecr.io',
  'registry.gitlab.com',
  'nvcr.io',
  'cgr.dev',
  'docker.elastic.co',
  'registry.redhat.io',
  'registry.access.redhat.com',
];

export interface RegistryHosts {
  /** `<namespace>/<name>` */
  key: string;
  /** RFC 3339, as the API server sets it; undefined sorts last. */
  created?: string;
  /** Its Service names (always its own). */
  service: string[];
  /** spec.expose.ingress.host, lower-cased; undefined when there is no Ingress. */
  ingress?: string;
}

export function registryHosts(registry: Registry): RegistryHosts {
  const ref = { name: registry.metadata?.name ?? '', namespace: registry.metadata?.namespace ?? '' };
  const ts = registry.metadata?.creationTimestamp as unknown;
  const created = ts instanceof Date ? ts.toISOString() : typeof ts === 'string' ? ts : undefined;
  const ingress = registry.spec.expose?.ingress?.host?.toLowerCase();
  return {
    key: `${ref.namespace}/${ref.name}`,
    ...(created ? { created } : {}),
    service: serviceHostNames(ref).slice(0, 2),
    ...(ingress ? { ingress } : {}),
  };
}

/** True when `a` claimed first: older creationTimestamp, then namespace/name. */
export function claimsFirst(a: RegistryHosts, b: RegistryHosts): boolean {
  const ta = a.created ? Date.parse(a.created) : Number.POSITIVE_INFINITY;
  const tb = b.created ? Date.parse(b.created) : Number.POSITIVE_INFINITY;
  if (ta !== tb) return ta < tb;
  return a.key < b.key;
}

/** `*.example.com` matches one or more labels before `.example.com`; `*` matches every host. */
export function matchesHostPattern(host: string, pattern: string): boolean {
  const h = host.toLowerCase();
  const p = pattern.trim().toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*.')) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
  return h === p;
}

export interface HostPolicy {
  /** Patterns of hosts besides the Service names that node agents may configure (default `*`). */
  allowedHosts: readonly string[];
}

export const defaultHostPolicy: HostPolicy = { allowedHosts: ['*'] };

export type IngressHostVerdict =
  | { kind: 'none' }
  | { kind: 'own'; host: string; nodes: true }
  /** Its own (Ingress created), but the node agents leave it out. */
  | { kind: 'own'; host: string; nodes: false; reason: 'HostNotAllowed'; message: string }
  | { kind: 'conflict'; host: string; reason: 'HostConflict'; message: string; with: string };

/** What berth may do with `self`'s Ingress host, given every Registry it knows (self included or not). */
export function decideIngressHost(
  self: RegistryHosts,
  all: readonly RegistryHosts[],
  policy: HostPolicy = defaultHostPolicy,
): IngressHostVerdict {
  const host = self.ingress;
  if (!host) return { kind: 'none' };
  const others = all.filter((r) => r.key !== self.key);
  const service = others.find((r) => r.service.includes(host));
  if (service)
    return {
      kind: 'conflict',
      host,
      with: service.key,
      reason: 'HostConflict',
      message: `spec.expose.ingress.host ${host} is the Service name of Registry ${service.key}: berth configures it for that Registry only`,
    };
  const older = others
    .filter((r) => r.ingress === host && claimsFirst(r, self))
    .sort((a, b) => (claimsFirst(a, b) ? -1 : 1))[0];
  if (older)
    return {
      kind: 'conflict',
      host,
      with: older.key,
      reason: 'HostConflict',
      message: `spec.expose.ingress.host ${host} is already claimed by Registry ${older.key} (the older claim wins): this Registry gets no Ingress and no node configuration for it`,
    };
  const refuse = (why: string): IngressHostVerdict => ({
    kind: 'own',
    host,
    nodes: false,
    reason: 'HostNotAllowed',
    message: `the node agents do not configure spec.expose.ingress.host ${host}: ${why}; they configure the Service names only`,
  });
  if (/\.svc(\.|$)/.test(host)) return refuse('it is a cluster Service name that is not this Registry’s');
  const pub = publicRegistryHosts.find((p) => matchesHostPattern(host, p));
  if (pub) return refuse(`it is a public registry (${pub}) that no Registry may take over on the nodes`);
  if (!policy.allowedHosts.some((p) => matchesHostPattern(host, p)))
    return refuse(
      `it matches none of the hosts this installation allows (${policy.allowedHosts.join(', ') || 'none'}; operator flag --node-agent-allowed-hosts, chart value nodeAgent.allowedHosts)`,
    );
  return { kind: 'own', host, nodes: true };
}

/** Parses `--node-agent-allowed-hosts`: host names or `*.domain` patterns, or `*`. */
export function parseHostPatterns(value: string): { patterns: string[]; invalid: string[] } {
  const patterns: string[] = [];
  const invalid: string[] = [];
  const label = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
  const re = new RegExp(`^(?:\\*|(?:\\*\\.)?${label}(?:\\.${label})*)$`);
  for (const raw of value.split(',')) {
    const p = raw.trim().toLowerCase();
    if (!p) continue;
    if (re.test(p)) {
      if (!patterns.includes(p)) patterns.push(p);
    } else invalid.push(raw.trim());
  }
  return { patterns, invalid };
}

interface RegistryLike {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: unknown };
  spec?: unknown;
  status?: unknown;
}

/**
 * The Registries to reconcile again when `changed` changes (or goes): the others whose Ingress
 * host is its Ingress host or one of its Service names, and every Registry in HostConflict (the
 * host it waits for may just have been released). Pure, for the controller's watch.
 */
export function hostClaimants(registries: readonly RegistryLike[], changed: RegistryLike): string[] {
  const key = (r: RegistryLike) => `${r.metadata?.namespace}/${r.metadata?.name}`;
  const self = key(changed);
  const mine = registryHosts(changed as Registry);
  const claimed = new Set([...mine.service, ...(mine.ingress ? [mine.ingress] : [])]);
  const out: string[] = [];
  for (const r of registries) {
    const k = key(r);
    if (k === self) continue;
    const ingress = (r as Registry).spec?.expose?.ingress?.host?.toLowerCase();
    const conditions = ((r.status as { conditions?: { type?: string; reason?: string }[] } | undefined)
      ?.conditions ?? []) as { type?: string; reason?: string }[];
    const waiting = conditions.some((c) => c.type === 'Ready' && c.reason === 'HostConflict');
    if ((ingress && claimed.has(ingress)) || waiting) out.push(k);
  }
  return out;
}

/** The hosts that clients name the registry by: what the admin and pull Secrets carry. */
export function clientHosts(ref: RegistryRef, registry: Registry): string[] {
  const port = servicePort(registry);
  const hosts = serviceHostNames(ref)
    .slice(0, 2)
    .map((h) => `${h}:${port}`);
  if (port === 443) hosts.push(...serviceHostNames(ref).slice(0, 2));
  const ingress = registry.spec.expose?.ingress?.host;
  if (ingress) hosts.push(ingress);
  return hosts;
}

/** The URL the verify Job reaches the registry at: its Service, by the in-cluster name. */
export function registryURL(ref: RegistryRef, registry: Registry): string {
  const tls = registry.spec.tls?.mode !== 'Disabled';
  const port = registry.spec.expose?.service?.port ?? 443;
  const host = serviceHostNames(ref)[0]!;
  return `${tls ? 'https' : 'http'}://${host}${port === (tls ? 443 : 80) ? '' : `:${port}`}`;
}
