// How the registry is reached: its Service (the registry and, on a second port, its token
// service, under one host name), an optional Ingress, a NetworkPolicy and a PodDisruptionBudget.
import type * as k8s from '@kubernetes/client-node';
import type { KubeJson } from '../../runtime/kube/client.ts';
import { names, ports, registryLabels } from '../../model/names.ts';
import { type BuildContext } from './context.ts';
import { servicePort, hasSharedStorage, ownerReference } from '../../model/registry.ts';

/**
 * One Service for both components: each port names its target port, and a pod that lacks the
 * named port gets no endpoint for it, so 443 reaches only registry pods and the token port only
 * token-service pods. The token realm therefore lives on the registry's own host name.
 */
export function registryService(ctx: BuildContext): k8s.V1Service {
  const { registry, ref } = ctx;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: names.service(ref),
      namespace: ref.namespace,
      labels: registryLabels(ref, 'registry'),
      ownerReferences: [ownerReference(registry)],
    },
    spec: {
      type: registry.spec.expose?.service?.type ?? 'ClusterIP',
      selector: { 'berth.dev/registry': ref.name, 'app.kubernetes.io/name': 'berth-registry' },
      ports: [
        { name: 'registry', port: servicePort(registry), targetPort: 'registry', protocol: 'TCP' },
        { name: 'token', port: ports.tokenService, targetPort: 'token', protocol: 'TCP' },
      ],
    },
  };
}

export function registryIngress(ctx: BuildContext): k8s.V1Ingress | undefined {
  const { registry, ref } = ctx;
  const ingress = registry.spec.expose?.ingress;
  if (!ingress?.host) return undefined;
  const backend = (port: string): k8s.V1IngressBackend => ({
    service: { name: names.service(ref), port: { name: port } },
  });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: names.ingress(ref),
      namespace: ref.namespace,
      labels: registryLabels(ref, 'registry'),
      annotations: {
        // Image layers are large and uploads are chunked; the backends speak TLS.
        'nginx.ingress.kubernetes.io/proxy-body-size': '0',
        ...(ctx.tls ? { 'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS' } : {}),
        ...(ingress.annotations ?? {}),
      },
      ownerReferences: [ownerReference(registry)],
    },
    spec: {
      ...(ingress.className ? { ingressClassName: ingress.className } : {}),
      ...(ctx.tls ? { tls: [{ hosts: [ingress.host], secretName: ctx.tlsSecretName }] } : {}),
      rules: [
        {
          host: ingress.host,
          http: {
            paths: [
              { path: '/token', pathType: 'Exact', backend: backend('token') },
              { path: '/', pathType: 'Prefix', backend: backend('registry') },
            ],
          },
        },
      ],
    },
  };
}

/**
 * Admits traffic to the registry and token ports from anywhere (pods, nodes' container runtimes
 * and ingress controllers all pull), and to the debug port (metrics) only from the namespace.
 */
export function registryNetworkPolicy(ctx: BuildContext): KubeJson {
  const { registry, ref } = ctx;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: names.networkPolicy(ref),
      namespace: ref.namespace,
      labels: registryLabels(ref, 'registry'),
      ownerReferences: [ownerReference(registry)],
    },
    spec: {
      podSelector: { matchLabels: { 'berth.dev/registry': ref.name } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          ports: [
            { protocol: 'TCP', port: ports.registryContainer },
            { protocol: 'TCP', port: ports.tokenContainer },
          ],
        },
        {
          from: [{ podSelector: {} }],
          ports: [
            { protocol: 'TCP', port: ports.debugContainer },
            { protocol: 'TCP', port: ports.tokenHealthContainer },
          ],
        },
      ],
    },
  };
}

/** Only with more than one replica: keeps one serving during voluntary disruptions. */
export function registryPDB(ctx: BuildContext): k8s.V1PodDisruptionBudget | undefined {
  const { registry, ref } = ctx;
  if (!hasSharedStorage(registry) || (registry.spec.replicas ?? 1) <= 1) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: {
      name: names.pdb(ref),
      namespace: ref.namespace,
      labels: registryLabels(ref, 'registry'),
      ownerReferences: [ownerReference(registry)],
    },
    spec: {
      maxUnavailable: 1,
      selector: {
        matchLabels: { 'berth.dev/registry': ref.name, 'app.kubernetes.io/component': 'registry' },
      },
    },
  };
}
