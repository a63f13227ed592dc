// The Registry controller's reconcile: read the Registry and its children from the caches,
// compute what should exist, write only the difference, and report it in status.
//
// Order matters: the Service first (its cluster IP goes into the serving certificate, so node
// runtimes can connect to the IP and still verify TLS), then the material (certificates, keys,
// credentials), the configuration, the claim, and the workloads whose pod templates carry checksums
// of what they load, so a change of configuration, certificate or key rolls them.
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import { maintenanceOf } from '../model/maintenance.ts';
import { layoutCredentialStore, StoreTooLargeError, type StoreLayout } from '../credentials/layout.ts';
import { storeShards } from '../credentials/sharded.ts';
import type { CredentialStore } from '../credentials/store.ts';
import { isOwnCredential } from '../model/credential-secret.ts';
import { registryKeyOf, resolveClaims } from '../model/claims.ts';
import { buildCredentialStore, type CredentialHashCache } from '../model/store.ts';
import { setCondition, readConditions, type Condition } from '../runtime/conditions.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { errorMessage, TerminalError } from '../runtime/errors.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { objectPath, type ResourceType } from '../runtime/kube/resource.ts';
import { applyCached, applyOwned, updateStatus } from '../runtime/writes.ts';
import { checksum, secretText } from '../util/secrets.ts';
import { renderRegistryConfig, type RegistryStorage } from './config.ts';
import { type BuildContext } from './desired/context.ts';
import { endpoint, refOf } from '../model/registry.ts';
import { registryIngress, registryNetworkPolicy, registryPDB, registryService } from './desired/network.ts';
import {
  adminSecret,
  caConfigMap,
  caSecret,
  certManagerCertificate,
  configSecret,
  credentialStoreSecretName,
  credentialStoreSecrets,
  storeLayoutLabel,
  servingSecret,
  tokenKeySecret,
} from './desired/secrets.ts';
import { registryPVC } from './desired/storage.ts';
import { tokenDeployment, tokenIdentity } from './desired/token-service.ts';
import { registryDeployment } from './desired/workload.ts';
import { registryPaths } from '../model/workload.ts';
import {
  adminPassword,
  eventsToken,
  httpSecret,
  selfSignedTLS,
  servingNames,
  tokenSigningKey,
} from './material.ts';
import { names, ports, registryEventsUrl, serviceHostNames, type RegistryRef } from '../model/names.ts';
import { resources } from '../model/resources.ts';
import { NodeAccessStep, type NodeAccessCaches } from './node-access-step.ts';
import { defaultAllowedDirs } from '../model/node-dirs.ts';
import {
  decideIngressHost,
  defaultHostPolicy,
  registryHosts,
  clientHosts,
  type IngressHostVerdict,
} from '../model/hosts.ts';
import { registryConditions, type Check, type Observed } from '../model/status.ts';

export interface RegistryCaches extends Pick<NodeAccessCaches, 'daemonSets'> {
  registries: Cache<KubeObject>;
  secrets: Cache<KubeObject>;
  configMaps: Cache<KubeObject>;
  services: Cache<KubeObject>;
  pvcs: Cache<KubeObject>;
  deployments: Cache<KubeObject>;
  networkPolicies: Cache<KubeObject>;
  ingresses: Cache<KubeObject>;
  pdbs: Cache<KubeObject>;
  repositories: Cache<KubeObject>;
  namespaces: Cache<KubeObject>;
}

export interface RegistrySettings {
  /** berth's own image, which the token service runs. */
  operatorImage: string;
  /** How often to look again at something outside berth's watch (a user's Secret, cert-manager). */
  pollIntervalMs: number;
  /**
   * Base URL of the operator's push-event listener (`--registry-events-url`); when set, the
   * registry sends manifest pushes to `<url>/registry-events/<namespace>/<name>`.
   */
  eventsUrl?: string;
  /** Host folders the node agents may mount (`--node-agent-allowed-dirs`); default certs.d only. */
  nodeAgentAllowedDirs?: readonly string[];
  /** Ingress hosts the node agents may configure (`--node-agent-allowed-hosts`); default `*`. */
  nodeAgentAllowedHosts?: readonly string[];
}

type RegistryDeps = Pick<Deps, 'client' | 'clock' | 'events' | 'logger'>;

const ok: Check = { ok: true };

export class RegistryReconciler {
  private readonly deps: RegistryDeps;
  private readonly caches: RegistryCaches;
  private readonly settings: RegistrySettings;
  private readonly nodeAccess: NodeAccessStep;
  /** Credential hashes by Secret object, between reconciles (src/model/store.ts). */
  private readonly hashCache: CredentialHashCache = new WeakMap();

  constructor(deps: RegistryDeps, caches: RegistryCaches, settings: RegistrySettings) {
    this.deps = deps;
    this.caches = caches;
    this.settings = settings;
    this.nodeAccess = new NodeAccessStep(deps, caches, {
      allowedDirs: settings.nodeAgentAllowedDirs ?? defaultAllowedDirs,
    });
  }

  async reconcile(req: ReconcileRequest, rctx: ReconcileContext): Promise<ReconcileResult | void> {
    const cached = this.caches.registries.get(req.name, req.namespace) as Registry | undefined;
    // Owned objects go by garbage collection; the node agents first clean the nodes (finalizer).
    if (!cached) return this.nodeAccess.orphaned({ name: req.name, namespace: req.namespace ?? '' });
    if (cached.metadata?.deletionTimestamp)
      return this.nodeAccess.finalize(
        cached as Registry,
        refOf(cached as Registry),
        this.settings.operatorImage,
      );
    const registry = structuredClone(cached);
    const ref = refOf(registry);
    const now = new Date(this.deps.clock.now());
    const requeue: number[] = [];
    const observed: Observed = { certificate: ok, storage: ok };
    const maintenance = maintenanceOf(registry); // garbage collection: read-only, or failed (src/gc)
    if (maintenance.problem) observed.config = maintenance.problem;
    const ctx0 = { registry, ref };

    // The Service, for its cluster IP.
    const tlsOn = registry.spec.tls?.mode !== 'Disabled';
    const base: BuildContext = {
      registry,
      ref,
      operatorImage: this.settings.operatorImage,
      tls: tlsOn,
      tlsSecretName: names.tlsSecret(ref),
      checksums: { config: '', tls: '', tokenKey: '' },
    };
    const service = await this.apply(resources.services, registryService(base), this.caches.services);
    const clusterIPs = ((service.spec as k8s.V1ServiceSpec | undefined)?.clusterIPs ?? []).filter(
      (ip) => ip && ip !== 'None',
    );

    // TLS material, by mode.
    let caPem: string | undefined;
    let tlsChecksum = 'disabled';
    const mode = registry.spec.tls?.mode ?? 'SelfSigned';
    if (mode === 'SelfSigned') {
      const existing = {
        caSecret: this.cachedSecret(ref.namespace, names.caSecret(ref)),
        tlsSecret: this.cachedSecret(ref.namespace, names.tlsSecret(ref)),
      };
      const material = await selfSignedTLS(now, ref, registry, existing, clusterIPs);
      for (const e of material.events)
        this.deps.events.event(registry as KubeObject, 'Normal', e.reason, 'Issue', e.message);
      await this.apply(resources.secrets, caSecret(ctx0, material.ca), this.caches.secrets);
      await this.apply(
        resources.secrets,
        servingSecret(ctx0, material.serving, material.ca.certPem),
        this.caches.secrets,
      );
      caPem = material.ca.certPem;
      tlsChecksum = checksum(material.serving.certPem, material.serving.keyPem);
      requeue.push(material.recheckAt.getTime() - now.getTime());
      observed.certificate = { ok: true, message: `berth's CA issued the serving certificate` };
    } else if (mode === 'Secret') {
      const userSecretName = registry.spec.tls?.secretName ?? '';
      base.tlsSecretName = userSecretName;
      const check = await this.userTLSSecret(ref.namespace, userSecretName);
      observed.certificate = check.check;
      caPem = check.caPem;
      tlsChecksum = check.checksum;
      requeue.push(this.settings.pollIntervalMs);
    } else if (mode === 'CertManager') {
      const check = await this.certManager(ctx0, servingNames(ref, registry), clusterIPs);
      observed.certificate = check.check;
      caPem = check.caPem;
      tlsChecksum = check.checksum;
      if (!check.check.ok) requeue.push(this.settings.pollIntervalMs);
    }
    if (caPem) await this.apply(resources.configMaps, caConfigMap(ctx0, caPem), this.caches.configMaps);

    // The Ingress host: this Registry's own, or claimed by an older one (src/model/hosts.ts).
    const host = this.ingressHost(registry);
    if (host.kind === 'conflict') {
      observed.hosts = { ok: false, reason: host.reason, message: host.message };
      this.deps.events.event(registry as KubeObject, 'Warning', host.reason, 'Reconcile', host.message);
    }

    // Node access: the node agents' ConfigMap and DaemonSet (src/registry/node-access-step.ts).
    const nodes = await this.nodeAccess.reconcile({
      registry,
      ref,
      operatorImage: this.settings.operatorImage,
      clusterIP: clusterIPs[0],
      tls: tlsOn,
      caPem,
      ...(host.kind === 'none'
        ? {}
        : {
            ingressHost:
              host.kind === 'own' && host.nodes
                ? { nodes: true as const }
                : { nodes: false as const, reason: host.reason, message: host.message },
          }),
    });
    observed.nodes = nodes.condition;
    if (nodes.requeueAfterMs) requeue.push(nodes.requeueAfterMs);

    // Storage checks that only the controller can make.
    const storage = registry.spec.storage;
    if (storage.s3) observed.storage = await this.s3Secret(ref.namespace, storage.s3.secretRef.name);

    // Token signing key, credentials and the registry configuration.
    const existing = {
      tokenKeySecret: this.cachedSecret(ref.namespace, names.tokenKeySecret(ref)),
      configSecret: this.cachedSecret(ref.namespace, names.configSecret(ref)),
      adminSecret: this.cachedSecret(ref.namespace, names.adminSecret(ref)),
    };
    const signer = await tokenSigningKey(now, ref, existing);
    await this.apply(resources.secrets, tokenKeySecret(ctx0, signer), this.caches.secrets);
    const password = adminPassword(existing);
    await this.apply(
      resources.secrets,
      adminSecret(ctx0, clientHosts(ref, registry), password),
      this.caches.secrets,
    );
    await this.writeCredentialStore(ctx0, this.credentialStore(registry, ref, password, now));
    const token = eventsToken(existing);
    const secret = httpSecret(existing); // once: a fresh one must be the same in config.yml and the Secret
    const configYaml = renderRegistryConfig({
      storage: storageConfig(registry),
      ...(this.settings.eventsUrl
        ? { notifications: { url: registryEventsUrl(this.settings.eventsUrl, ref), token } }
        : {}),
      readOnly: maintenance.readOnly,
      http: {
        addr: `:${ports.registryContainer}`,
        debugAddr: `:${ports.debugContainer}`,
        secret,
        ...(tlsOn
          ? {
              tls: { certificate: `${registryPaths.tlsDir}/tls.crt`, key: `${registryPaths.tlsDir}/tls.key` },
            }
          : {}),
      },
      auth: {
        realm: tokenRealm(ref, registry, tlsOn),
        ...tokenIdentity({ ref }),
        rootCertBundle: `${registryPaths.tokenDir}/token.crt`,
      },
    });
    await this.apply(resources.secrets, configSecret(ctx0, configYaml, secret, token), this.caches.secrets);

    // The claim.
    const pvc = registryPVC(base);
    if (pvc) {
      const applied = await this.apply(resources.pvcs, pvc, this.caches.pvcs);
      const phase = (applied.status as k8s.V1PersistentVolumeClaimStatus | undefined)?.phase;
      if (phase !== 'Bound' && observed.storage.ok) {
        observed.storage = {
          ok: false,
          reason: 'PVCPending',
          message: `PersistentVolumeClaim ${names.pvc(ref)} is ${phase ?? 'not bound yet'}: waiting for a volume`,
        };
      }
    }

    // Workloads, and what makes them reachable.
    const ctx: BuildContext = {
      ...base,
      checksums: { config: checksum(configYaml), tls: tlsChecksum, tokenKey: checksum(signer.certPem) },
    };
    const certOk = observed.certificate.ok || !tlsOn;
    const storageBlocked = !observed.storage.ok && observed.storage.reason !== 'PVCPending';
    if (certOk && !storageBlocked) {
      observed.registry = (await this.apply(
        resources.deployments,
        registryDeployment(ctx),
        this.caches.deployments,
      )) as k8s.V1Deployment;
      observed.token = (await this.apply(
        resources.deployments,
        tokenDeployment(ctx),
        this.caches.deployments,
      )) as k8s.V1Deployment;
    } else {
      observed.registry = this.caches.deployments.get(names.workload(ref), ref.namespace) as
        k8s.V1Deployment | undefined;
      observed.token = this.caches.deployments.get(names.tokenDeployment(ref), ref.namespace) as
        k8s.V1Deployment | undefined;
    }
    await this.apply(resources.networkPolicies, registryNetworkPolicy(ctx), this.caches.networkPolicies);
    await this.applyOrDelete(
      resources.pdbs,
      registryPDB(ctx),
      this.caches.pdbs,
      names.pdb(ref),
      ref.namespace,
    );
    await this.applyOrDelete(
      resources.ingresses,
      host.kind === 'conflict' ? undefined : registryIngress(ctx), // an older Registry routes that host
      this.caches.ingresses,
      names.ingress(ref),
      ref.namespace,
    );

    // Status.
    await this.writeStatus(registry, ref, observed, caPem !== undefined);
    for (const check of [observed.certificate, observed.storage]) {
      if (!check.ok)
        this.deps.events.event(registry as KubeObject, 'Warning', check.reason, 'Reconcile', check.message);
    }
    if (!observed.storage.ok) requeue.push(this.settings.pollIntervalMs);
    const positive = requeue.filter((ms) => ms > 0);
    rctx.log.debug('Reconciled registry', { requeueMs: positive.length ? Math.min(...positive) : undefined });
    return positive.length ? { requeueAfterMs: Math.min(...positive, 24 * 3600_000) } : undefined;
  }

  /** Whether the Ingress host is this Registry's, against every Registry in the cache. */
  private ingressHost(registry: Registry): IngressHostVerdict {
    const all = (this.caches.registries.list() as Registry[]).map(registryHosts);
    return decideIngressHost(registryHosts(registry), all, {
      allowedHosts: this.settings.nodeAgentAllowedHosts ?? defaultHostPolicy.allowedHosts,
    });
  }

  /** The credential store from every credential berth handed out for this Registry. */
  private credentialStore(registry: Registry, ref: RegistryRef, adminPassword: string, now: Date) {
    const secrets = this.caches.secrets.list() as k8s.V1Secret[];
    const key = `${ref.namespace}/${ref.name}`;
    const repositories = (this.caches.repositories.list() as Repository[]).filter(
      (r) => registryKeyOf(r) === key,
    );
    return buildCredentialStore({
      registry,
      adminPassword,
      pullSecrets: secrets.filter((s) => isOwnCredential(s, 'pull', ref)),
      pushSecrets: secrets.filter((s) => isOwnCredential(s, 'push', ref)),
      owners: [...resolveClaims(repositories).winners.values()],
      namespaceLabels: (ns) =>
        (this.caches.namespaces.get(ns)?.metadata?.labels ?? {}) as Record<string, string>,
      now,
      hashCache: this.hashCache,
    });
  }

  /**
   * Writes the credential store's Secrets (src/credentials/layout.ts), only those whose content
   * changed. Growing into shards, the shards go first and the head last; returning to one
   * document, the head goes first and the shards are deleted after: a token service that reads
   * the head always finds the shards it names.
   */
  private async writeCredentialStore(ctx: Pick<BuildContext, 'registry' | 'ref'>, store: CredentialStore) {
    const { ref } = ctx;
    const head = this.cachedSecret(ref.namespace, credentialStoreSecretName(ref, 0));
    // A head without the label was written by an older berth: one document.
    const label = head?.metadata?.labels?.[storeLayoutLabel];
    const current: StoreLayout | undefined = label === 'sharded' ? 'sharded' : head ? 'single' : undefined;
    let laidOut: ReturnType<typeof layoutCredentialStore>;
    try {
      laidOut = layoutCredentialStore(store, current);
    } catch (err) {
      if (err instanceof StoreTooLargeError) throw new TerminalError('CredentialStoreTooLarge', err.message);
      throw err;
    }
    const [headSecret, ...shards] = credentialStoreSecrets(ctx, laidOut);
    for (const shard of shards) await this.apply(resources.secrets, shard, this.caches.secrets);
    await this.apply(resources.secrets, headSecret as k8s.V1Secret, this.caches.secrets);
    for (let i = shards.length + 1; i < storeShards; i++) {
      const name = credentialStoreSecretName(ref, i);
      await this.applyOrDelete(resources.secrets, undefined, this.caches.secrets, name, ref.namespace);
    }
  }

  private cachedSecret(namespace: string, name: string): k8s.V1Secret | undefined {
    return this.caches.secrets.get(name, namespace) as k8s.V1Secret | undefined;
  }

  private apply(type: ResourceType, desired: object, cache: Cache<KubeObject>): Promise<KubeObject> {
    return applyCached(this.deps.client, type, desired as KubeObject, cache);
  }

  private async applyOrDelete(
    type: ResourceType,
    desired: object | undefined,
    cache: Cache<KubeObject>,
    name: string,
    namespace: string,
  ): Promise<void> {
    if (desired) {
      await this.apply(type, desired, cache);
      return;
    }
    if (cache.get(name, namespace)) await this.deps.client.deleteIfExists(objectPath(type, name, namespace));
  }

  /** A Secret berth does not own and does not watch: read it directly. */
  private async readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
    return (await this.deps.client.find<KubeObject>(objectPath(resources.secrets, name, namespace))) as
      k8s.V1Secret | undefined;
  }

  private async s3Secret(namespace: string, name: string): Promise<Check> {
    const secret = await this.readSecret(namespace, name);
    if (!secret) {
      return {
        ok: false,
        reason: 'StorageSecretMissing',
        message: `spec.storage.s3.secretRef: Secret ${namespace}/${name} does not exist; create it with the keys accessKeyID and secretAccessKey`,
      };
    }
    const missing = ['accessKeyID', 'secretAccessKey'].filter((k) => !secret.data?.[k]);
    if (missing.length) {
      return {
        ok: false,
        reason: 'StorageSecretInvalid',
        message: `spec.storage.s3.secretRef: Secret ${namespace}/${name} has no ${missing.join(' or ')}`,
      };
    }
    return { ok: true, message: `S3 bucket with credentials from Secret ${name}` };
  }

  private async userTLSSecret(
    namespace: string,
    name: string,
  ): Promise<{ check: Check; caPem?: string; checksum: string }> {
    const secret = await this.readSecret(namespace, name);
    if (!secret) {
      return {
        check: {
          ok: false,
          reason: 'TLSSecretMissing',
          message: `spec.tls.secretName: Secret ${namespace}/${name} does not exist`,
        },
        checksum: '',
      };
    }
    const cert = secretText(secret, 'tls.crt');
    const key = secretText(secret, 'tls.key');
    const missing = [cert ? '' : 'tls.crt', key ? '' : 'tls.key'].filter(Boolean);
    if (missing.length) {
      return {
        check: {
          ok: false,
          reason: 'TLSSecretInvalid',
          message: `spec.tls.secretName: Secret ${namespace}/${name} has no ${missing.join(' or ')}`,
        },
        checksum: '',
      };
    }
    const caPem = secretText(secret, 'ca.crt') ?? lastCertificate(cert ?? '');
    return {
      check: { ok: true, message: `serving the certificate from Secret ${name}` },
      caPem,
      checksum: checksum(cert, key),
    };
  }

  private async certManager(
    ctx: { registry: Registry; ref: RegistryRef },
    dnsNames: string[],
    ipAddresses: string[],
  ): Promise<{ check: Check; caPem?: string; checksum: string }> {
    if (!(await this.deps.client.find(objectPath(resources.crds, 'certificates.cert-manager.io')))) {
      return {
        check: {
          ok: false,
          reason: 'CertManagerNotInstalled',
          message:
            'spec.tls.mode is CertManager, but cert-manager is not installed (no certificates.cert-manager.io CRD)',
        },
        checksum: '',
      };
    }
    const certificate = certManagerCertificate(ctx, dnsNames, ipAddresses);
    await applyOwned(this.deps.client, resources.certificates, certificate as KubeObject, undefined).catch(
      async (err: unknown) => {
        throw new Error(`applying the cert-manager Certificate failed: ${errorMessage(err)}`);
      },
    );
    const secret =
      this.cachedSecret(ctx.ref.namespace, names.tlsSecret(ctx.ref)) ??
      (await this.readSecret(ctx.ref.namespace, names.tlsSecret(ctx.ref)));
    const cert = secretText(secret, 'tls.crt');
    const key = secretText(secret, 'tls.key');
    if (!cert || !key) {
      return {
        check: {
          ok: false,
          reason: 'CertificateIssuing',
          message: `waiting for cert-manager to issue Certificate ${names.certificate(ctx.ref)}`,
        },
        checksum: '',
      };
    }
    const caPem = secretText(secret, 'ca.crt') ?? lastCertificate(cert);
    return {
      check: { ok: true, message: 'cert-manager issued the serving certificate' },
      caPem,
      checksum: checksum(cert, key),
    };
  }

  private async writeStatus(
    registry: Registry,
    ref: RegistryRef,
    observed: Observed,
    hasCA: boolean,
  ): Promise<void> {
    const generation = registry.metadata?.generation;
    const now = this.deps.clock.now();
    let conditions: Condition[] = readConditions(registry.status);
    observed.pullSecrets = conditions.find((c) => c.type === 'PullSecretsReady');
    for (const c of registryConditions(observed)) conditions = setCondition(conditions, c, generation, now);
    if (!observed.nodes) conditions = conditions.filter((c) => c.type !== 'NodesReady'); // node access off
    const previous = (registry.status ?? {}) as Record<string, unknown>;
    const status: Record<string, unknown> = {
      ...previous,
      observedGeneration: generation,
      conditions,
      endpoint: endpoint(ref, registry),
      adminSecret: names.adminSecret(ref),
    };
    if (hasCA) status.caConfigMap = names.caConfigMap(ref);
    else delete status.caConfigMap;
    await updateStatus(this.deps.client, resources.registries, registry as KubeObject, status);
  }
}

/** The token endpoint, on the registry's own host name: the Ingress host, or the Service. */
export function tokenRealm(ref: RegistryRef, registry: Registry, tls: boolean): string {
  const ingress = registry.spec.expose?.ingress?.host;
  if (ingress) return `https://${ingress}/token`;
  return `${tls ? 'https' : 'http'}://${serviceHostNames(ref)[0]}:${ports.tokenService}/token`;
}

export function storageConfig(registry: Registry): RegistryStorage {
  const s = registry.spec.storage;
  if (s.s3) {
    return {
      kind: 's3',
      bucket: s.s3.bucket,
      region: s.s3.region,
      ...(s.s3.regionEndpoint ? { regionEndpoint: s.s3.regionEndpoint } : {}),
      ...(s.s3.forcePathStyle !== undefined ? { forcePathStyle: s.s3.forcePathStyle } : {}),
      ...(s.s3.rootDirectory ? { rootDirectory: s.s3.rootDirectory } : {}),
    };
  }
  return { kind: s.emptyDir ? 'emptyDir' : 'filesystem', rootDirectory: registryPaths.storage };
}

function lastCertificate(bundle: string): string | undefined {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g);
  return blocks?.[blocks.length - 1];
}
