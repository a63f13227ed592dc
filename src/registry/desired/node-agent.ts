// The node agent of a Registry (spec.nodeAccess): the ConfigMap that tells the agents what to
// write, the DaemonSet that runs them, and the NodesReady condition read from that DaemonSet.
//
// Neither object has an owner reference: a Registry with node access holds the finalizer
// `berth.dev/node-access`, and the operator deletes them itself only after every agent has
// removed its files (cleanup mode). Garbage collection (which, with foreground deletion, would
// delete the DaemonSet first) could not wait for that.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../../api/index.ts';
import { configKeys, renderNodeAccessConfig, type NodeAccessConfig } from '../../model/node-access-config.ts';
import { registryLabels, selectorLabels, serviceHostNames, type RegistryRef } from '../../model/names.ts';
import { servicePort } from '../../model/registry.ts';

export const nodeAccessFinalizer = 'berth.dev/node-access';
export const nodeAgentModeAnnotation = 'berth.dev/node-agent-mode';
export type NodeAgentMode = 'sync' | 'cleanup';

export const nodeAgentNames = {
  daemonSet: (r: RegistryRef) => `${r.name}-node-agent`,
  configMap: (r: RegistryRef) => `${r.name}-node-access`,
} as const;

export const nodeAgentPaths = {
  config: '/etc/berth/node-access',
  certsDir: '/host/certs.d',
  hostsFile: '/host/etc/hosts',
} as const;

export const nodeAgentPort = 9402;
export const defaultCertsDir = '/etc/containerd/certs.d';

export function certsDirOf(registry: Registry): string {
  return registry.spec.nodeAccess?.certsDir ?? defaultCertsDir;
}

/**
 * The registry host names containerd looks up: the Service names (always the Registry's own) and
 * the Ingress host. `ingressOnNodes` is the decision of src/model/hosts.ts: false leaves the
 * Ingress host out (claimed by an older Registry, a public registry, or not allowed by the install).
 */
export function nodeAccessHosts(ref: RegistryRef, registry: Registry, ingressOnNodes = true): string[] {
  const port = servicePort(registry);
  const names = serviceHostNames(ref).slice(0, 2);
  const hosts = names.map((h) => `${h}:${port}`);
  if (port === 443) hosts.push(...names);
  const ingress = registry.spec.expose?.ingress?.host;
  if (ingress && ingressOnNodes) hosts.push(ingress.toLowerCase());
  return [...new Set(hosts)];
}

/** What every node needs: the hosts, the address behind them, and the realm's name mapping. */
export function nodeAccessConfig(
  ref: RegistryRef,
  registry: Registry,
  clusterIP: string,
  tls: boolean,
  ingressOnNodes = true,
): NodeAccessConfig {
  const ip = clusterIP.includes(':') ? `[${clusterIP}]` : clusterIP;
  return {
    version: 1,
    registry: `${ref.namespace}/${ref.name}`,
    server: `${tls ? 'https' : 'http'}://${ip}:${servicePort(registry)}`,
    hosts: nodeAccessHosts(ref, registry, ingressOnNodes),
    // The realm (https://<svc>.<ns>.svc:5443/token) is fetched with the node's resolver. Only the
    // qualified names: a bare `<svc>` on a node could shadow a real host.
    aliases: { ip: clusterIP, names: serviceHostNames(ref).slice(0, 2) },
  };
}

export function nodeAccessConfigMap(
  ref: RegistryRef,
  config: NodeAccessConfig,
  caPem: string | undefined,
): k8s.V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: nodeAgentNames.configMap(ref),
      namespace: ref.namespace,
      labels: registryLabels(ref, 'node-agent'),
    },
    data: {
      [configKeys.config]: renderNodeAccessConfig(config),
      ...(caPem ? { [configKeys.ca]: caPem } : {}),
    },
  };
}

export function nodeAgentArgs(ref: RegistryRef, certsDir: string, mode: NodeAgentMode): string[] {
  return [
    'node-agent',
    `--registry=${ref.namespace}/${ref.name}`,
    ...(mode === 'cleanup' ? ['--cleanup'] : [`--config-dir=${nodeAgentPaths.config}`]),
    `--certs-dir=${nodeAgentPaths.certsDir}`,
    `--host-certs-dir=${certsDir}`,
    `--hosts-file=${nodeAgentPaths.hostsFile}`,
    `--listen=0.0.0.0:${nodeAgentPort}`,
  ];
}

/**
 * The agents' DaemonSet. `certsDir` is the host folder it mounts read-write: the Registry's
 * certsDir once the install allows it (src/model/node-dirs.ts), and in cleanup mode the folder the
 * running DaemonSet already mounts (`mountedCertsDir`), so a cleanup never mounts a new folder.
 */
export function nodeAgentDaemonSet(
  ref: RegistryRef,
  certsDir: string,
  operatorImage: string,
  mode: NodeAgentMode,
): k8s.V1DaemonSet {
  const labels = registryLabels(ref, 'node-agent');
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {
      name: nodeAgentNames.daemonSet(ref),
      namespace: ref.namespace,
      labels,
      annotations: { [nodeAgentModeAnnotation]: mode },
    },
    spec: {
      selector: { matchLabels: selectorLabels(ref, 'node-agent') },
      revisionHistoryLimit: 3,
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%' } },
      template: {
        metadata: { labels, annotations: { [nodeAgentModeAnnotation]: mode } },
        spec: nodeAgentPodSpec(ref, certsDir, operatorImage, mode),
      },
    },
  };
}

function nodeAgentPodSpec(
  ref: RegistryRef,
  certsDir: string,
  operatorImage: string,
  mode: NodeAgentMode,
): k8s.V1PodSpec {
  const { volumes, mounts } = nodeAgentVolumes(ref, certsDir, mode);
  return {
    // No Kubernetes API access at all: everything arrives through the mounted ConfigMap.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ operator: 'Exists' }],
    terminationGracePeriodSeconds: 10,
    // Root (uid 0) owns certs.d and the hosts file; no capability is needed to write files
    // one owns, so every capability is dropped and nothing else of the host is mounted.
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [nodeAgentContainer(ref, certsDir, operatorImage, mode, mounts)],
    volumes,
  };
}

function nodeAgentContainer(
  ref: RegistryRef,
  certsDir: string,
  operatorImage: string,
  mode: NodeAgentMode,
  mounts: k8s.V1VolumeMount[],
): k8s.V1Container {
  const probe = (path: string): k8s.V1Probe => ({
    httpGet: { path, port: 'health', scheme: 'HTTP' },
    periodSeconds: 10,
    timeoutSeconds: 3,
  });
  return {
    name: 'node-agent',
    image: operatorImage,
    args: nodeAgentArgs(ref, certsDir, mode),
    ports: [{ name: 'health', containerPort: nodeAgentPort, protocol: 'TCP' }],
    volumeMounts: mounts,
    readinessProbe: probe('/readyz'),
    livenessProbe: { ...probe('/healthz'), failureThreshold: 6 },
    resources: { requests: { cpu: '5m', memory: '48Mi' }, limits: { memory: '128Mi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    },
  };
}

/** certs.d (read-write) and the hosts file; in sync mode also the ConfigMap of what to write. */
function nodeAgentVolumes(
  ref: RegistryRef,
  certsDir: string,
  mode: NodeAgentMode,
): { volumes: k8s.V1Volume[]; mounts: k8s.V1VolumeMount[] } {
  const volumes: k8s.V1Volume[] = [
    { name: 'certs-d', hostPath: { path: certsDir, type: 'DirectoryOrCreate' } },
    { name: 'hosts', hostPath: { path: '/etc/hosts', type: 'File' } },
  ];
  const mounts: k8s.V1VolumeMount[] = [
    { name: 'certs-d', mountPath: nodeAgentPaths.certsDir },
    { name: 'hosts', mountPath: nodeAgentPaths.hostsFile },
  ];
  if (mode === 'sync') {
    volumes.push({ name: 'config', configMap: { name: nodeAgentNames.configMap(ref), defaultMode: 0o444 } });
    mounts.push({ name: 'config', mountPath: nodeAgentPaths.config, readOnly: true });
  }
  return { volumes, mounts };
}

/** The host folder a DaemonSet of the agents mounts read-write (its `certs-d` volume). */
export function mountedCertsDir(ds: k8s.V1DaemonSet | undefined): string | undefined {
  return ds?.spec?.template?.spec?.volumes?.find((v) => v.name === 'certs-d')?.hostPath?.path;
}

export function nodeAgentModeOf(ds: k8s.V1DaemonSet | undefined): NodeAgentMode | undefined {
  const mode = ds?.metadata?.annotations?.[nodeAgentModeAnnotation];
  return mode === 'sync' || mode === 'cleanup' ? mode : undefined;
}

export interface AgentRollout {
  /** The DaemonSet controller has seen the current spec. */
  current: boolean;
  desired: number;
  updated: number;
  ready: number;
  available: number;
}

export function agentRollout(ds: k8s.V1DaemonSet | undefined): AgentRollout {
  const s = ds?.status;
  return {
    current: !!ds && (s?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1),
    desired: s?.desiredNumberScheduled ?? 0,
    updated: s?.updatedNumberScheduled ?? 0,
    ready: s?.numberReady ?? 0,
    available: s?.numberAvailable ?? 0,
  };
}

/** As `kubectl rollout status`: every scheduled agent runs the current template and is available
 *  (in cleanup mode: has cleaned up, since an agent is ready only then). */
export function rolledOut(ds: k8s.V1DaemonSet | undefined): boolean {
  const r = agentRollout(ds);
  return r.current && r.updated >= r.desired && r.available >= r.desired;
}

export interface NodesCondition {
  type: 'NodesReady';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** NodesReady: desired vs ready agents. */
export function nodesReadyCondition(ds: k8s.V1DaemonSet | undefined, mode: NodeAgentMode): NodesCondition {
  const r = agentRollout(ds);
  if (mode === 'cleanup') {
    return {
      type: 'NodesReady',
      status: 'False',
      reason: 'CleaningUp',
      message: `node access is being removed: ${Math.min(r.ready, r.updated)}/${r.desired} nodes cleaned up`,
    };
  }
  if (!ds)
    return {
      type: 'NodesReady',
      status: 'False',
      reason: 'AgentsPending',
      message: 'the node agent DaemonSet is not created yet',
    };
  if (!r.current)
    return {
      type: 'NodesReady',
      status: 'False',
      reason: 'AgentsPending',
      message: 'the node agent DaemonSet is being updated',
    };
  if (r.desired === 0)
    return {
      type: 'NodesReady',
      status: 'False',
      reason: 'NoNodes',
      message: 'no node runs the node agent (no schedulable Linux node)',
    };
  if (r.ready >= r.desired && r.updated >= r.desired)
    return {
      type: 'NodesReady',
      status: 'True',
      reason: 'AgentsReady',
      message: `${r.ready}/${r.desired} nodes trust and reach the registry`,
    };
  return {
    type: 'NodesReady',
    status: 'False',
    reason: 'AgentsNotReady',
    message: `${r.ready}/${r.desired} node agents ready (${r.updated} updated); a pod's /readyz says why`,
  };
}
