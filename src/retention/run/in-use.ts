// In-use protection: which repositories, tags and digests of this registry the cluster's Pods and
// workload templates reference. Image references are normalised to the registry's repository
// paths by host (the Service DNS names, the Ingress host, the endpoint, with and without port);
// Pods' `status.containerStatuses[].imageID` (and init/ephemeral) add the digests actually run.
import type { Registry } from '../../api/index.ts';
import { serviceHostNames } from '../../model/names.ts';
import type { KubeClient, KubeJson } from '../../runtime/kube/client.ts';
import type { InUse } from './model.ts';

/** Every host name (with and without port) under which workloads may name this registry. */
export function registryHosts(registry: Registry, extra: string[] = []): Set<string> {
  const ref = { name: registry.metadata?.name ?? '', namespace: registry.metadata?.namespace ?? '' };
  const port = registry.spec.expose?.service?.port ?? 443;
  const hosts = new Set<string>();
  const add = (host: string, p: number) => {
    const h = host.toLowerCase();
    hosts.add(h);
    hosts.add(`${h}:${p}`);
  };
  for (const name of serviceHostNames(ref)) add(name, port);
  const ingress = registry.spec.expose?.ingress?.host;
  if (ingress) add(ingress, 443);
  for (const e of [registry.status?.endpoint, ...extra]) {
    if (!e) continue;
    const [h, p] = e.toLowerCase().split(':');
    if (h) add(h, p ? Number(p) : 443);
  }
  return hosts;
}

export interface ImageReference {
  repository: string;
  tag?: string;
  digest?: string;
}

/**
 * Parses an image reference (or a runtime's imageID such as `docker-pullable://h/r@sha256:…`) and
 * returns its repository path when its host is one of `hosts`.
 */
export function normaliseImage(reference: string, hosts: Set<string>): ImageReference | undefined {
  let ref = reference.trim().replace(/^[a-z-]+:\/\//, '');
  let digest: string | undefined;
  const at = ref.indexOf('@');
  if (at >= 0) {
    digest = ref.slice(at + 1);
    ref = ref.slice(0, at);
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) return undefined;
  }
  const slash = ref.indexOf('/');
  if (slash < 0) return undefined;
  const host = ref.slice(0, slash).toLowerCase();
  if (!hosts.has(host)) return undefined;
  let repository = ref.slice(slash + 1);
  let tag: string | undefined;
  const colon = repository.lastIndexOf(':');
  if (colon >= 0) {
    tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
  }
  if (!repository) return undefined;
  if (!digest && !tag) tag = 'latest';
  const out: ImageReference = { repository };
  if (tag) out.tag = tag;
  if (digest) out.digest = digest;
  return out;
}

interface PodSpecLike {
  containers?: { image?: string }[];
  initContainers?: { image?: string }[];
  ephemeralContainers?: { image?: string }[];
}

interface ContainerStatusLike {
  image?: string;
  imageID?: string;
}

export interface WorkloadImages {
  /** e.g. `Pod team-a/web-0` */
  owner: string;
  images: string[];
}

const specImages = (spec: PodSpecLike | undefined): string[] =>
  [...(spec?.containers ?? []), ...(spec?.initContainers ?? []), ...(spec?.ephemeralContainers ?? [])]
    .map((c) => c.image ?? '')
    .filter((i) => i !== '');

/** The images an object (a Pod, or a workload with a Pod template) references. */
export function imagesOf(kind: string, obj: KubeJson): WorkloadImages {
  const owner = `${kind} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  const spec = obj.spec as
    | (PodSpecLike & {
        template?: { spec?: PodSpecLike };
        jobTemplate?: { spec?: { template?: { spec?: PodSpecLike } } };
      })
    | undefined;
  if (kind === 'Pod') {
    const status = obj.status as
      | {
          containerStatuses?: ContainerStatusLike[];
          initContainerStatuses?: ContainerStatusLike[];
          ephemeralContainerStatuses?: ContainerStatusLike[];
        }
      | undefined;
    const statuses = [
      ...(status?.containerStatuses ?? []),
      ...(status?.initContainerStatuses ?? []),
      ...(status?.ephemeralContainerStatuses ?? []),
    ];
    const ids = statuses.flatMap((s) => [s.imageID ?? '', s.image ?? '']).filter((i) => i !== '');
    return { owner, images: [...specImages(spec), ...ids] };
  }
  if (kind === 'CronJob') return { owner, images: specImages(spec?.jobTemplate?.spec?.template?.spec) };
  return { owner, images: specImages(spec?.template?.spec) };
}

/** Pure: the protected tags and digests (keyed `<repo>:<tag>`, `<repo>@<digest>`) of these workloads. */
export function collectInUse(workloads: WorkloadImages[], hosts: Set<string>): InUse {
  const inUse: InUse = { digests: new Map(), tags: new Map() };
  for (const w of workloads)
    for (const image of w.images) {
      const ref = normaliseImage(image, hosts);
      if (!ref) continue;
      if (ref.digest && !inUse.digests.has(`${ref.repository}@${ref.digest}`))
        inUse.digests.set(`${ref.repository}@${ref.digest}`, w.owner);
      if (ref.tag && !inUse.tags.has(`${ref.repository}:${ref.tag}`))
        inUse.tags.set(`${ref.repository}:${ref.tag}`, w.owner);
    }
  return inUse;
}

/** Cluster-wide lists, read-only: Pods and every kind of workload with a Pod template. */
export const workloadResources: { kind: string; path: string }[] = [
  { kind: 'Pod', path: '/api/v1/pods' },
  { kind: 'Deployment', path: '/apis/apps/v1/deployments' },
  { kind: 'StatefulSet', path: '/apis/apps/v1/statefulsets' },
  { kind: 'DaemonSet', path: '/apis/apps/v1/daemonsets' },
  { kind: 'ReplicaSet', path: '/apis/apps/v1/replicasets' },
  { kind: 'Job', path: '/apis/batch/v1/jobs' },
  { kind: 'CronJob', path: '/apis/batch/v1/cronjobs' },
];

export async function listWorkloadImages(client: KubeClient): Promise<WorkloadImages[]> {
  const lists = await Promise.all(
    workloadResources.map(async (r) =>
      (await client.list<KubeJson>(r.path)).items.map((o) => imagesOf(r.kind, o)),
    ),
  );
  return lists.flat();
}
