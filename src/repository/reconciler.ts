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
import { TerminalError, WaitingError } from '../runtime/errors.ts';
import { findSecret } from '../runtime/secrets.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Cache } from '../runtime/informer.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { ownerReference, liveObject } from '../runtime/objects.ts';
import { lowestRequeue } from '../runtime/requeue.ts';
import { applyOwned, applyStatus } from '../runtime/writes.ts';
import { repositoryStatusOwner } from '../model/status-owners.ts';
import { randomSecret } from '../util/secrets.ts';
import {
  pathInNamespace,
  registryKeyOf,
  repositoryKey,
  repositoryPath,
  resolveClaims,
  validPath,
} from '../model/claims.ts';
import { isOwnPushSecret, refuseClaim, type Outcome, type Refusal } from './outcome.ts';
import type { TagReader } from './tags.ts';

/** How often a Repository's tag count is read again from its registry. */
export const tagRefreshMs = 5 * 60_000;

/** How long a Repository whose Registry does not exist waits before it looks again. */
export const registryWaitMs = 60_000;

export interface RepositoryCaches {
  repositories: Cache<Repository>;
  registries: Cache<Registry>;
  secrets: Cache<k8s.V1Secret>;
}

type RepoDeps = Pick<Deps, 'client' | 'clock' | 'events'>;

/**
 * The reconcile is a list of steps: the claim decision (refuseClaim), then either the refusal
 * (refuse: a TerminalError the runtime reports as Ready=False with a Warning) or the claim (claim:
 * URL, push Secret, tags), the status (writeStatus) and the requeue that reads the tags again.
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
    const live = liveObject(this.caches.repositories, req);
    if (!live) return; // the push Secret is owned: it goes too
    const { object: repo } = live;
    const path = repositoryPath(repo);
    const regKey = registryKeyOf(repo);
    const [regNs = '', regName = ''] = regKey.split('/');
    const reg: RegistryKey = { name: regName, namespace: regNs };
    const registry = this.caches.registries.get(regName, regNs);
    const refusal = this.refusal(repo, req.namespace ?? '', path, regKey, registry);
    if (refusal) await this.refuse(repo, reg, refusal);
    const status: Record<string, unknown> = { ...(repo.status ?? {}), path };
    const outcome = await this.claim(repo, registry as Registry, reg, status);
    await this.writeStatus(repo, status, outcome);
    return lowestRequeue([tagRefreshMs]);
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

  /**
   * Step for a refused claim: deletes the Repository's push Secrets when the refusal says so, then
   * throws it: a TerminalError when the user must change the Repository, a WaitingError while its
   * Registry does not exist (applied in the wrong order by a GitOps sync, or not yet in the cache;
   * the Registry's creation reconciles it at once, the retry is a safety net).
   */
  private async refuse(repo: Repository, reg: RegistryKey, refusal: Refusal): Promise<never> {
    if (refusal.dropPushSecrets) await this.dropPushSecrets(repo, reg);
    const status = { path: repositoryPath(repo) };
    if (refusal.waiting) throw new WaitingError(refusal.reason, refusal.message, registryWaitMs, { status });
    throw new TerminalError(refusal.reason, refusal.message, { status });
  }

  /**
   * Step for a claimed path: sets status.url, writes the push Secret (pushSecret) and, while the
   * registry answers, status.tags. Returns the Ready outcome.
   */
  private async claim(
    repo: Repository,
    registry: Registry,
    reg: RegistryKey,
    status: Record<string, unknown>,
  ): Promise<Outcome> {
    const path = repositoryPath(repo);
    status.url = `${registry.status?.endpoint ?? endpoint(reg, registry)}/${path}`;
    const outcome = await this.pushSecret(repo, registry, reg, status);
    const tags = await this.readTags(registry, path);
    if (tags !== undefined) status.tags = tags;
    return outcome;
  }

  /** Owns Ready=True: writes observedGeneration and the condition with `status` (when changed). */
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
        status: 'True',
        reason: outcome.reason,
        message: outcome.message,
      },
      repo.metadata?.generation,
      this.deps.clock.now(),
    );
    await applyStatus(this.deps.client, resources.repositories, repo, status, repositoryStatusOwner);
  }

  /**
   * The push Secret (spec.push.secretName): push Secrets of this Repository under another name
   * are deleted; a foreign Secret of its name is left alone (SecretNotOwned, terminal, looked at
   * again with the tags since berth does not watch it); berth's is written where it differs, its
   * credential minted once and kept. Owns the Claimed outcome.
   */
  private async pushSecret(
    repo: Repository,
    registry: Registry,
    reg: RegistryKey,
    status: Record<string, unknown>,
  ): Promise<Outcome> {
    const ns = repo.metadata?.namespace ?? '';
    const secretName = repo.spec.push?.secretName;
    await this.dropPushSecrets(repo, reg, secretName);
    if (!secretName)
      return {
        ready: true,
        reason: 'Claimed',
        message: `the path ${repositoryPath(repo)} is this Repository's`,
      };
    const live = await findSecret(this.deps.client, ns, secretName, this.caches.secrets);
    if (live && !isOwnPushSecret(live, reg, repo.metadata?.name ?? '')) {
      const message = `Secret ${ns}/${secretName} exists and is not berth's push secret for this Repository; berth leaves it untouched (spec.push.secretName)`;
      throw new TerminalError('SecretNotOwned', message, {
        status: { path: status.path, url: status.url },
        recheckAfterMs: tagRefreshMs,
      });
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

  private deleteSecret(ns: string, name: string): Promise<void> {
    return this.deps.client.deleteIfExists(objectPath(resources.secrets, name, ns));
  }
}
