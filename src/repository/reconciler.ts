// The Repository controller's reconcile: claim the path in the Registry (the older claim wins),
// write the push Secret (push and pull on this path only), and report the URL in status. What a
// namespace may pull is granted through the Registry's credential store, which the Registry
// controller rebuilds whenever a Repository changes.
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import {
  credentialSecret,
  labels,
  readCredentialState,
  repositoryLabelValue,
  type RegistryKey,
} from '../model/credential-secret.ts';
import { clientHosts } from '../model/hosts.ts';
import { endpoint } from '../model/registry.ts';
import { resources } from '../model/resources.ts';
import { pushUsername } from '../model/store.ts';
import { readConditions, setCondition } from '../runtime/conditions.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Cache } from '../runtime/informer.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { ownerReference } from '../runtime/objects.ts';
import { lowestRequeue } from '../runtime/requeue.ts';
import { applyOwned, updateStatus } from '../runtime/writes.ts';
import { randomSecret } from '../util/secrets.ts';
import {
  pathInNamespace,
  registryKeyOf,
  repositoryKey,
  repositoryPath,
  resolveClaims,
  validPath,
} from '../model/claims.ts';
import { alreadyReported, isOwnPushSecret, refuseClaim, type Outcome, type Refusal } from './outcome.ts';
import type { TagReader } from './tags.ts';

/** How often a Repository's tag count is read again from its registry. */
export const tagRefreshMs = 5 * 60_000;

export interface RepositoryCaches {
  repositories: Cache<Repository>;
  registries: Cache<Registry>;
  secrets: Cache<k8s.V1Secret>;
}

type RepoDeps = Pick<Deps, 'client' | 'clock' | 'events'>;

/**
 * The reconcile is a list of steps: the claim decision (refuseClaim), then either the refusal
 * (refuse) or the claim (claim: push Secret, URL, tags), the Warning for a new problem (report),
 * the status (writeStatus) and, for a claimed path, the requeue that reads its tags again.
 */
export class RepositoryReconciler {
  private readonly deps: RepoDeps;
  private readonly caches: RepositoryCaches;
  private readonly readTags: TagReader;

  constructor(deps: RepoDeps, caches: RepositoryCaches, readTags: TagReader) {
    this.deps = deps;
    this.caches = caches;
    this.readTags = readTags;
  }

  async reconcile(req: ReconcileRequest, _ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const cached = this.caches.repositories.get(req.name, req.namespace);
    if (!cached || cached.metadata?.deletionTimestamp) return; // the push Secret is owned: it goes too
    const repo = structuredClone(cached);
    const path = repositoryPath(repo);
    const regKey = registryKeyOf(repo);
    const [regNs = '', regName = ''] = regKey.split('/');
    const reg: RegistryKey = { name: regName, namespace: regNs };
    const registry = this.caches.registries.get(regName, regNs);
    const status: Record<string, unknown> = { ...(repo.status ?? {}), path };
    const refusal = this.refusal(repo, req.namespace ?? '', path, regKey, registry);
    const outcome = refusal
      ? await this.refuse(repo, reg, refusal)
      : await this.claim(repo, registry as Registry, reg, status);
    this.report(repo, outcome);
    await this.writeStatus(repo, status, outcome);
    return lowestRequeue([refusal ? undefined : tagRefreshMs]);
  }

  /** Reads the Repository cache (siblings in the same Registry, only when asked) for refuseClaim. */
  private refusal(
    repo: Repository,
    namespace: string,
    path: string,
    registryKey: string,
    registry: Registry | undefined,
  ): Refusal | undefined {
    return refuseClaim({
      namespace,
      path,
      registryKey,
      inNamespace: pathInNamespace(repo),
      validPath: validPath(repo),
      registryFound: registry !== undefined,
      holder: () => {
        const siblings = this.caches.repositories.list().filter((r) => registryKeyOf(r) === registryKey);
        return resolveClaims(siblings).conflicts.get(repositoryKey(repo));
      },
      keyOf: repositoryKey,
    });
  }

  /** Step for a refused claim: deletes the Repository's push Secrets when the refusal says so. */
  private async refuse(repo: Repository, reg: RegistryKey, refusal: Refusal): Promise<Outcome> {
    const { dropPushSecrets, ...outcome } = refusal;
    if (dropPushSecrets) await this.dropPushSecrets(repo, reg);
    return outcome;
  }

  /**
   * Step for a claimed path: writes the push Secret (pushSecret), sets status.url and, while the
   * push Secret is fine and the registry answers, status.tags. Returns the Ready outcome.
   */
  private async claim(
    repo: Repository,
    registry: Registry,
    reg: RegistryKey,
    status: Record<string, unknown>,
  ): Promise<Outcome> {
    const path = repositoryPath(repo);
    const outcome = await this.pushSecret(repo, registry, reg);
    status.url = `${registry.status?.endpoint ?? endpoint(reg, registry)}/${path}`;
    const tags = outcome.ready ? await this.readTags(registry, path) : undefined;
    if (tags !== undefined) status.tags = tags;
    return outcome;
  }

  /** A Warning Event on the Repository when its problem is new (see alreadyReported). */
  private report(repo: Repository, outcome: Outcome): void {
    const previous = readConditions(repo.status).find((c) => c.type === 'Ready');
    if (!outcome.ready && !alreadyReported(previous, outcome, repo.metadata?.generation))
      this.deps.events.event(repo, 'Warning', outcome.reason, 'Reconcile', outcome.message);
  }

  /** Owns Ready: writes observedGeneration and the condition with `status` (skipped when unchanged). */
  private async writeStatus(
    repo: Repository,
    status: Record<string, unknown>,
    outcome: Outcome,
  ): Promise<void> {
    status.observedGeneration = repo.metadata?.generation;
    status.conditions = setCondition(
      readConditions(repo.status),
      {
        type: 'Ready',
        status: outcome.ready ? 'True' : 'False',
        reason: outcome.reason,
        message: outcome.message,
      },
      repo.metadata?.generation,
      this.deps.clock.now(),
    );
    await updateStatus(this.deps.client, resources.repositories, repo, status);
  }

  /**
   * The push Secret (spec.push.secretName): push Secrets of this Repository under another name
   * are deleted; a foreign Secret of its name is left alone (SecretNotOwned); berth's is written
   * where it differs, its credential minted once and kept. Owns the Claimed outcome.
   */
  private async pushSecret(repo: Repository, registry: Registry, reg: RegistryKey): Promise<Outcome> {
    const ns = repo.metadata?.namespace ?? '';
    const secretName = repo.spec.push?.secretName;
    await this.dropPushSecrets(repo, reg, secretName);
    if (!secretName)
      return {
        ready: true,
        reason: 'Claimed',
        message: `the path ${repositoryPath(repo)} is this Repository's`,
      };
    const live = this.caches.secrets.get(secretName, ns) ?? (await this.readSecret(ns, secretName));
    if (live && !isOwnPushSecret(live, reg, repo.metadata?.name ?? '')) {
      const message = `Secret ${ns}/${secretName} exists and is not berth's push secret for this Repository; berth leaves it untouched (spec.push.secretName)`;
      return { ready: false, reason: 'SecretNotOwned', message };
    }
    const desired = this.desiredPushSecret(repo, registry, reg, secretName, live);
    await applyOwned(this.deps.client, resources.secrets, desired, live);
    return {
      ready: true,
      reason: 'Claimed',
      message: `the path ${repositoryPath(repo)} is this Repository's; push secret ${secretName}`,
    };
  }

  /** The push Secret as it should be: the live credential kept, or one minted now. */
  private desiredPushSecret(
    repo: Repository,
    registry: Registry,
    reg: RegistryKey,
    secretName: string,
    live: k8s.V1Secret | undefined,
  ): k8s.V1Secret {
    const ns = repo.metadata?.namespace ?? '';
    const name = repo.metadata?.name ?? '';
    const state = readCredentialState(live, pushUsername(ns, name));
    if (!state.password || !state.issuedAt) {
      state.password = randomSecret(32);
      state.issuedAt = new Date(this.deps.clock.now());
    }
    return credentialSecret({
      name: secretName,
      namespace: ns,
      kind: 'push',
      registry: reg,
      hosts: clientHosts(reg, registry),
      state,
      extraLabels: { [labels.repository]: repositoryLabelValue(name) },
      ownerReferences: [
        ownerReference({
          apiVersion: 'berth.dev/v1alpha1',
          kind: 'Repository',
          metadata: repo.metadata,
        }),
      ],
    });
  }

  private ownPushSecrets(repo: Repository, reg: RegistryKey): k8s.V1Secret[] {
    return this.caches.secrets
      .list(repo.metadata?.namespace)
      .filter((s) => isOwnPushSecret(s, reg, repo.metadata?.name ?? ''));
  }

  /** Deletes the Repository's push Secrets, all of them or all but `except`. */
  private async dropPushSecrets(repo: Repository, reg: RegistryKey, except?: string): Promise<void> {
    for (const s of this.ownPushSecrets(repo, reg)) {
      if (except !== undefined && s.metadata?.name === except) continue;
      await this.deleteSecret(repo.metadata?.namespace ?? '', s.metadata?.name ?? '');
    }
  }

  private async readSecret(ns: string, name: string): Promise<k8s.V1Secret | undefined> {
    return this.deps.client.find<k8s.V1Secret>(objectPath(resources.secrets, name, ns));
  }

  private deleteSecret(ns: string, name: string): Promise<void> {
    return this.deps.client.deleteIfExists(objectPath(resources.secrets, name, ns));
  }
}
