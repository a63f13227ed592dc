// The Registry controller's reconcile: read the Registry and its children from the caches,
// compute what should exist, write only the difference, and report it in status.
//
// Order matters: the Service first (its cluster IP goes into the serving certificate, so node
// runtimes can connect to the IP and still verify TLS), then the material (certificates, keys,
// credentials), the configuration, the claim, and the workloads whose pod templates carry checksums
// of what they load, so a change of configuration, certificate or key rolls them.
//
// The steps, in order (each a method below, with its contract):
//   load → service → certificate → ingress host → node access → storage → keys → credential store
//   → configuration → claim → workloads → exposure → status.
// Each step writes its own part of `Observed` (src/model/status.ts); the status step turns it into
// conditions. The requeues of the steps are combined by lowestRequeue (src/runtime/requeue.ts).
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import { maintenanceOf } from '../model/maintenance.ts';
import { layoutCredentialStore, StoreTooLargeError, type StoreLayout } from '../credentials/layout.ts';
import { storeShards } from '../credentials/sharded.ts';
import type { CredentialStore } from '../credentials/store.ts';
import type { KeyPair } from '../pki/certificates.ts';
import { isOwnCredential } from '../model/credential-secret.ts';
import { registryKeyOf, resolveClaims } from '../model/claims.ts';
import { buildCredentialStore, type CredentialHashCache } from '../model/store.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { errorMessage, TerminalError } from '../runtime/errors.ts';
import { findSecret } from '../runtime/secrets.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { objectPath, type ResourceType } from '../runtime/kube/resource.ts';
import { lowestRequeue } from '../runtime/requeue.ts';
import { applyCached, applyOwned, applyStatus } from '../runtime/writes.ts';
import { registryStatusOwner } from '../model/status-owners.ts';
import { checksum } from '../util/secrets.ts';
import { renderRegistryConfig } from './config.ts';
import { registryConfigInput } from './config-input.ts';
import { type BuildContext } from './desired/context.ts';
import { refOf } from '../model/registry.ts';
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
import { tokenDeployment } from './desired/token-service.ts';
import { TokenIdentityStep } from './token-identity-step.ts';
import { registryDeployment } from './desired/workload.ts';
import {
  adminPassword,
  eventsToken,
  httpSecret,
  selfSignedTLS,
  servingNames,
  tokenSigningKey,
  type ExistingMaterial,
} from './material.ts';
import { names, type RegistryRef } from '../model/names.ts';
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
import type { Check, Observed } from '../model/status.ts';
import {
  certManagerNotInstalled,
  certManagerSecretCheck,
  claimCheck,
  clusterIPsOf,
  nodeIngressHost,
  s3SecretCheck,
  tlsSecretNameOf,
  userTLSCheck,
  workloadsAllowed,
  type CertificateOutcome,
} from './checks.ts';
import { nextRegistryStatus } from './registry-status.ts';

export interface RegistryCaches extends Pick<NodeAccessCaches, 'daemonSets'> {
  registries: Cache<Registry>;
  secrets: Cache<k8s.V1Secret>;
  configMaps: Cache<k8s.V1ConfigMap>;
  services: Cache<k8s.V1Service>;
  pvcs: Cache<k8s.V1PersistentVolumeClaim>;
  deployments: Cache<k8s.V1Deployment>;
  networkPolicies: Cache<KubeObject>;
  ingresses: Cache<k8s.V1Ingress>;
  pdbs: Cache<k8s.V1PodDisruptionBudget>;
  repositories: Cache<Repository>;
  namespaces: Cache<k8s.V1Namespace>;
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
  /** The token service's TokenReview ClusterRole (`--token-review-cluster-role`); default berth-token-review. */
  tokenReviewClusterRole?: string;
}

type RegistryDeps = Pick<Deps, 'client' | 'clock' | 'events' | 'logger'>;

const ok: Check = { ok: true };

/** One reconcile of a live Registry: what every step reads, and `observed`, which they fill. */
interface Run {
  /** The reconciler's copy (the node-access step keeps its resourceVersion current). */
  registry: Registry;
  ref: RegistryRef;
  now: Date;
  /** What the builders need; checksums are filled in for the workloads (`withChecksums`). */
  base: BuildContext;
  /** Read-only maintenance (garbage collection in progress). */
  readOnly: boolean;
  observed: Observed;
}

/** The certificate step's result: CertificateOutcome and when to look again. */
interface CertificateStep extends CertificateOutcome {
  requeueAfterMs?: number;
}

/** The keys step's result: what the configuration and the workloads need of the material. */
interface Keys {
  existing: ExistingMaterial;
  signer: KeyPair;
  password: string;
}

export class RegistryReconciler {
  private readonly deps: RegistryDeps;
  private readonly caches: RegistryCaches;
  private readonly settings: RegistrySettings;
  private readonly nodeAccess: NodeAccessStep;
  private readonly tokenIdentity: TokenIdentityStep;
  /** Credential hashes by Secret object, between reconciles (src/model/store.ts). */
  private readonly hashCache: CredentialHashCache = new WeakMap();

  constructor(deps: RegistryDeps, caches: RegistryCaches, settings: RegistrySettings) {
    this.deps = deps;
    this.caches = caches;
    this.settings = settings;
    this.nodeAccess = new NodeAccessStep(deps, caches, {
      allowedDirs: settings.nodeAgentAllowedDirs ?? defaultAllowedDirs,
    });
    this.tokenIdentity = new TokenIdentityStep(deps.client, settings.tokenReviewClusterRole);
  }

  async reconcile(req: ReconcileRequest, rctx: ReconcileContext): Promise<ReconcileResult | void> {
    const cached = this.caches.registries.get(req.name, req.namespace);
    // Owned objects go by garbage collection; the node agents first clean the nodes (finalizer).
    if (!cached) return this.nodeAccess.orphaned({ name: req.name, namespace: req.namespace ?? '' });
    if (cached.metadata?.deletionTimestamp)
      return this.nodeAccess.finalize(cached, refOf(cached), this.settings.operatorImage);
    const run = this.load(cached);
    const clusterIPs = await this.serviceStep(run);
    const certificate = await this.certificateStep(run, clusterIPs);
    const host = this.ingressHostStep(run);
    const nodes = await this.nodeAccessStep(run, clusterIPs[0], certificate.caPem, host);
    await this.storageStep(run);
    const keys = await this.keysStep(run);
    await this.credentialStoreStep(run, keys.password);
    const configYaml = await this.configurationStep(run, keys.existing);
    await this.claimStep(run);
    const ctx = withChecksums(run.base, configYaml, certificate.checksum, keys.signer);
    await this.workloadsStep(run, ctx);
    await this.exposureStep(run, ctx, host);
    const storageRequeue = await this.statusStep(run, certificate.caPem !== undefined);
    const requeues = [certificate.requeueAfterMs, nodes.requeueAfterMs, storageRequeue];
    rctx.log.debug('Reconciled registry', { requeueMs: lowestRequeue(requeues, Infinity)?.requeueAfterMs });
    return lowestRequeue(requeues);
  }

  /**
   * Load. Reads: the cached Registry. Writes: nothing. Owns: `observed.config`, from a failed
   * garbage collection (src/model/maintenance.ts); certificate and storage start out ok.
   */
  private load(cached: Registry): Run {
    const registry = structuredClone(cached);
    const ref = refOf(registry);
    const maintenance = maintenanceOf(registry); // garbage collection: read-only, or failed (src/gc)
    const observed: Observed = { certificate: ok, storage: ok };
    if (maintenance.problem) observed.config = maintenance.problem;
    const base: BuildContext = {
      registry,
      ref,
      operatorImage: this.settings.operatorImage,
      tls: registry.spec.tls?.mode !== 'Disabled',
      tlsSecretName: tlsSecretNameOf(registry, ref),
      checksums: { config: '', tls: '', tokenKey: '' },
    };
    return {
      registry,
      ref,
      now: new Date(this.deps.clock.now()),
      base,
      readOnly: maintenance.readOnly,
      observed,
    };
  }

  /** Service. Writes: the Service, first, for its cluster IPs (the serving certificate names them). */
  private async serviceStep(run: Run): Promise<string[]> {
    const service = await this.apply(resources.services, registryService(run.base), this.caches.services);
    return clusterIPsOf(service);
  }

  /**
   * Certificate, by tls.mode. Reads: berth's CA and serving Secrets, the user's Secret, or
   * cert-manager's. Writes: the CA and serving Secrets (SelfSigned), the Certificate (CertManager),
   * then the CA ConfigMap when a CA is known. Owns: `observed.certificate` (CertificateReady).
   * Requeues: at renewal (SelfSigned), or to poll what berth does not watch.
   */
  private async certificateStep(run: Run, clusterIPs: string[]): Promise<CertificateStep> {
    const outcome = await this.certificateByMode(run, clusterIPs);
    run.observed.certificate = outcome.check;
    if (outcome.caPem)
      await this.apply(resources.configMaps, caConfigMap(run, outcome.caPem), this.caches.configMaps);
    return outcome;
  }

  private async certificateByMode(run: Run, clusterIPs: string[]): Promise<CertificateStep> {
    const { registry, ref } = run;
    const mode = registry.spec.tls?.mode ?? 'SelfSigned';
    if (mode === 'SelfSigned') return this.selfSigned(run, clusterIPs);
    if (mode === 'Secret') {
      const name = registry.spec.tls?.secretName ?? '';
      const outcome = userTLSCheck(
        await findSecret(this.deps.client, ref.namespace, name),
        ref.namespace,
        name,
      );
      return { ...outcome, requeueAfterMs: this.settings.pollIntervalMs };
    }
    if (mode === 'CertManager') {
      const outcome = await this.certManager(run, servingNames(ref, registry), clusterIPs);
      return outcome.check.ok ? outcome : { ...outcome, requeueAfterMs: this.settings.pollIntervalMs };
    }
    return { check: run.observed.certificate, checksum: 'disabled' };
  }

  /** berth's own CA and serving certificate: kept while valid, else issued (with an Event). */
  private async selfSigned(run: Run, clusterIPs: string[]): Promise<CertificateStep> {
    const { registry, ref, now } = run;
    const existing = {
      caSecret: this.cachedSecret(ref.namespace, names.caSecret(ref)),
      tlsSecret: this.cachedSecret(ref.namespace, names.tlsSecret(ref)),
    };
    const material = await selfSignedTLS(now, ref, registry, existing, clusterIPs);
    for (const e of material.events) this.deps.events.event(registry, 'Normal', e.reason, 'Issue', e.message);
    await this.apply(resources.secrets, caSecret(run, material.ca), this.caches.secrets);
    await this.apply(
      resources.secrets,
      servingSecret(run, material.serving, material.ca.certPem),
      this.caches.secrets,
    );
    return {
      check: { ok: true, message: `berth's CA issued the serving certificate` },
      caPem: material.ca.certPem,
      checksum: checksum(material.serving.certPem, material.serving.keyPem),
      requeueAfterMs: material.recheckAt.getTime() - now.getTime(),
    };
  }

  /**
   * Ingress host: this Registry's own, or claimed by an older one (src/model/hosts.ts). Reads:
   * every cached Registry. Owns: `observed.hosts` (HostConflict), with a Warning Event.
   */
  private ingressHostStep(run: Run): IngressHostVerdict {
    const host = this.ingressHost(run.registry);
    if (host.kind === 'conflict') {
      run.observed.hosts = { ok: false, reason: host.reason, message: host.message };
      this.deps.events.event(run.registry, 'Warning', host.reason, 'Reconcile', host.message);
    }
    return host;
  }

  /**
   * Node access (src/registry/node-access-step.ts). Writes: the node agents' ConfigMap and
   * DaemonSet, the finalizer. Owns: `observed.nodes` (NodesReady).
   */
  private async nodeAccessStep(
    run: Run,
    clusterIP: string | undefined,
    caPem: string | undefined,
    host: IngressHostVerdict,
  ): Promise<{ requeueAfterMs?: number }> {
    const ingressHost = nodeIngressHost(host);
    const nodes = await this.nodeAccess.reconcile({
      registry: run.registry,
      ref: run.ref,
      operatorImage: this.settings.operatorImage,
      clusterIP,
      tls: run.base.tls,
      caPem,
      ...(ingressHost ? { ingressHost } : {}),
    });
    run.observed.nodes = nodes.condition;
    return nodes;
  }

  /** Storage checks that only the controller can make. Reads: the S3 Secret. Owns: `observed.storage`. */
  private async storageStep(run: Run): Promise<void> {
    const s3 = run.registry.spec.storage.s3;
    if (!s3) return;
    const name = s3.secretRef.name;
    run.observed.storage = s3SecretCheck(
      await findSecret(this.deps.client, run.ref.namespace, name),
      run.ref.namespace,
      name,
    );
  }

  /**
   * Keys. Reads: the token key, configuration and admin Secrets (kept while valid). Writes: the
   * token key Secret and the admin Secret.
   */
  private async keysStep(run: Run): Promise<Keys> {
    const { ref, registry, now } = run;
    const existing: ExistingMaterial = {
      tokenKeySecret: this.cachedSecret(ref.namespace, names.tokenKeySecret(ref)),
      configSecret: this.cachedSecret(ref.namespace, names.configSecret(ref)),
      adminSecret: this.cachedSecret(ref.namespace, names.adminSecret(ref)),
    };
    const signer = await tokenSigningKey(now, ref, existing);
    await this.apply(resources.secrets, tokenKeySecret(run, signer), this.caches.secrets);
    const password = adminPassword(existing);
    await this.apply(
      resources.secrets,
      adminSecret(run, clientHosts(ref, registry), password),
      this.caches.secrets,
    );
    return { existing, signer, password };
  }

  /**
   * Credential store. Reads: berth's pull and push Secrets, Repositories, namespace labels. Writes:
   * the store's Secrets (writeCredentialStore). Fails terminally when the store cannot fit.
   */
  private async credentialStoreStep(run: Run, password: string): Promise<void> {
    await this.writeCredentialStore(run, this.credentialStore(run.registry, run.ref, password, run.now));
  }

  /**
   * Configuration. Reads: the HTTP secret and events token kept in the configuration Secret.
   * Writes: the configuration Secret. Returns config.yml (its checksum rolls the registry).
   */
  private async configurationStep(run: Run, existing: ExistingMaterial): Promise<string> {
    const token = eventsToken(existing);
    const secret = httpSecret(existing); // once: a fresh one must be the same in config.yml and the Secret
    const configYaml = renderRegistryConfig(
      registryConfigInput({
        registry: run.registry,
        ref: run.ref,
        tls: run.base.tls,
        readOnly: run.readOnly,
        ...(this.settings.eventsUrl ? { eventsUrl: this.settings.eventsUrl } : {}),
        httpSecret: secret,
        eventsToken: token,
      }),
    );
    await this.apply(resources.secrets, configSecret(run, configYaml, secret, token), this.caches.secrets);
    return configYaml;
  }

  /** Claim. Writes: the PersistentVolumeClaim (if any). Owns: `observed.storage` (PVCPending). */
  private async claimStep(run: Run): Promise<void> {
    const pvc = registryPVC(run.base);
    if (!pvc) return;
    const applied = await this.apply(resources.pvcs, pvc, this.caches.pvcs);
    const phase = applied.status?.phase;
    run.observed.storage = claimCheck(run.observed.storage, phase, run.ref);
  }

  /**
   * Workloads. Writes: the registry and token-service Deployments, when `workloadsAllowed`; else
   * reads them from the cache. Owns: `observed.registry` and `observed.token` (Ready, Progressing).
   */
  private async workloadsStep(run: Run, ctx: BuildContext): Promise<void> {
    const { observed, ref } = run;
    if (workloadsAllowed(observed, ctx.tls)) {
      observed.registry = await this.apply(
        resources.deployments,
        registryDeployment(ctx),
        this.caches.deployments,
      );
      await this.tokenIdentity.apply(ctx);
      observed.token = await this.apply(resources.deployments, tokenDeployment(ctx), this.caches.deployments);
      return;
    }
    observed.registry = this.caches.deployments.get(names.workload(ref), ref.namespace);
    observed.token = this.caches.deployments.get(names.tokenDeployment(ref), ref.namespace);
  }

  /**
   * Exposure. Writes: the NetworkPolicy; the PodDisruptionBudget and the Ingress, or deletes them
   * when not wanted (the Ingress also when an older Registry routes its host).
   */
  private async exposureStep(run: Run, ctx: BuildContext, host: IngressHostVerdict): Promise<void> {
    const { ref } = run;
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
  }

  /**
   * Status. Writes: the status (conditions from `observed`), then a Warning Event for a
   * certificate or storage problem. Returns the poll interval while storage is not ready.
   */
  private async statusStep(run: Run, hasCA: boolean): Promise<number | undefined> {
    const { registry, observed } = run;
    await this.writeStatus(registry, run.ref, observed, hasCA);
    for (const check of [observed.certificate, observed.storage]) {
      if (!check.ok) this.deps.events.event(registry, 'Warning', check.reason, 'Reconcile', check.message);
    }
    return observed.storage.ok ? undefined : this.settings.pollIntervalMs;
  }

  /** Whether the Ingress host is this Registry's, against every Registry in the cache. */
  private ingressHost(registry: Registry): IngressHostVerdict {
    const all = this.caches.registries.list().map(registryHosts);
    return decideIngressHost(registryHosts(registry), all, {
      allowedHosts: this.settings.nodeAgentAllowedHosts ?? defaultHostPolicy.allowedHosts,
    });
  }

  /** The credential store from every credential berth handed out for this Registry. */
  private credentialStore(registry: Registry, ref: RegistryRef, adminPassword: string, now: Date) {
    const secrets = this.caches.secrets.list();
    const key = `${ref.namespace}/${ref.name}`;
    const repositories = this.caches.repositories.list().filter((r) => registryKeyOf(r) === key);
    return buildCredentialStore({
      registry,
      adminPassword,
      pullSecrets: secrets.filter((s) => isOwnCredential(s, 'pull', ref)),
      pushSecrets: secrets.filter((s) => isOwnCredential(s, 'push', ref)),
      owners: [...resolveClaims(repositories).winners.values()],
      namespaceLabels: (ns) => this.caches.namespaces.get(ns)?.metadata?.labels ?? {},
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
    return this.caches.secrets.get(name, namespace);
  }

  private apply<T extends KubeObject>(type: ResourceType<T>, desired: T, cache: Cache<T>): Promise<T> {
    return applyCached(this.deps.client, type, desired, cache);
  }

  private async applyOrDelete<T extends KubeObject>(
    type: ResourceType<T>,
    desired: T | undefined,
    cache: Cache<T>,
    name: string,
    namespace: string,
  ): Promise<void> {
    if (desired) {
      await this.apply(type, desired, cache);
      return;
    }
    if (cache.get(name, namespace)) await this.deps.client.deleteIfExists(objectPath(type, name, namespace));
  }

  /** tls.mode CertManager: apply the Certificate, then read the Secret cert-manager issues. */
  private async certManager(
    ctx: { registry: Registry; ref: RegistryRef },
    dnsNames: string[],
    ipAddresses: string[],
  ): Promise<CertificateOutcome> {
    if (!(await this.deps.client.find(objectPath(resources.crds, 'certificates.cert-manager.io'))))
      return certManagerNotInstalled;
    const certificate = certManagerCertificate(ctx, dnsNames, ipAddresses);
    await applyOwned(this.deps.client, resources.certificates, certificate, undefined).catch(
      async (err: unknown) => {
        throw new Error(`applying the cert-manager Certificate failed: ${errorMessage(err)}`);
      },
    );
    const secret = await findSecret(
      this.deps.client,
      ctx.ref.namespace,
      names.tlsSecret(ctx.ref),
      this.caches.secrets,
    );
    return certManagerSecretCheck(secret, ctx.ref);
  }

  private async writeStatus(
    registry: Registry,
    ref: RegistryRef,
    observed: Observed,
    hasCA: boolean,
  ): Promise<void> {
    const status = nextRegistryStatus(registry, ref, observed, hasCA, this.deps.clock.now());
    await applyStatus(this.deps.client, resources.registries, registry, status, registryStatusOwner);
  }
}

/** The builders' context for the workloads: what the pods load, by checksum (a change rolls them). */
function withChecksums(base: BuildContext, configYaml: string, tls: string, signer: KeyPair): BuildContext {
  return { ...base, checksums: { config: checksum(configYaml), tls, tokenKey: checksum(signer.certPem) } };
}
