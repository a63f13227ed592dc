// Names of the objects berth creates for a Registry, in one place so every controller, the node
// agent and the tests agree on them.

export interface RegistryRef {
  name: string;
  namespace: string;
}

export const managedByLabels = { 'app.kubernetes.io/managed-by': 'berth' } as const;

/** Labels on everything berth creates for one Registry. */
export function registryLabels(reg: RegistryRef, component: string): Record<string, string> {
  return {
    ...managedByLabels,
    'app.kubernetes.io/name': 'berth-registry',
    'app.kubernetes.io/instance': reg.name,
    'app.kubernetes.io/component': component,
    'berth.dev/registry': reg.name,
  };
}

/** The label selector of one component's pods. */
export function selectorLabels(reg: RegistryRef, component: string): Record<string, string> {
  return { 'berth.dev/registry': reg.name, 'app.kubernetes.io/component': component };
}

export const names = {
  /** The Service that fronts the registry (and, on a second port, its token service). */
  service: (r: RegistryRef) => r.name,
  workload: (r: RegistryRef) => `${r.name}-registry`,
  configSecret: (r: RegistryRef) => `${r.name}-registry-config`,
  pvc: (r: RegistryRef) => `${r.name}-data`,
  caSecret: (r: RegistryRef) => `${r.name}-ca`,
  caConfigMap: (r: RegistryRef) => `${r.name}-ca`,
  tlsSecret: (r: RegistryRef) => `${r.name}-tls`,
  certificate: (r: RegistryRef) => `${r.name}-tls`,
  tokenDeployment: (r: RegistryRef) => `${r.name}-token`,
  tokenKeySecret: (r: RegistryRef) => `${r.name}-token-key`,
  credentialStore: (r: RegistryRef) => `${r.name}-credentials`,
  adminSecret: (r: RegistryRef) => `${r.name}-admin`,
  networkPolicy: (r: RegistryRef) => `${r.name}-registry`,
  pdb: (r: RegistryRef) => `${r.name}-registry`,
  ingress: (r: RegistryRef) => r.name,
  serviceAccount: (r: RegistryRef) => `${r.name}-registry`,
} as const;

/** The in-cluster host names of the registry's Service, shortest first. */
export function serviceHostNames(r: RegistryRef, clusterDomain = 'cluster.local'): string[] {
  const svc = names.service(r);
  return [
    `${svc}.${r.namespace}.svc`,
    `${svc}.${r.namespace}.svc.${clusterDomain}`,
    `${svc}.${r.namespace}`,
    svc,
  ];
}

/** Ports of the registry Service and its containers. */
export const ports = {
  registryContainer: 5000,
  debugContainer: 5001,
  tokenContainer: 5443,
  tokenHealthContainer: 8080,
  /** The token service's port on the registry's Service (same host name as the registry). */
  tokenService: 5443,
} as const;

/** Path of a Registry's push-event endpoint on the operator's event listener. */
export function registryEventsPath(r: RegistryRef): string {
  return `/registry-events/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`;
}

/** The URL a Registry sends its push notifications to, from `--registry-events-url`. */
export function registryEventsUrl(base: string, r: RegistryRef): string {
  return `${base.replace(/\/+$/, '')}${registryEventsPath(r)}`;
}
