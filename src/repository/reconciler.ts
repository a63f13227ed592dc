// The Repository controller's reconcile: claim the path in the Registry (the older claim wins),
// write the push Secret (push and pull on this path only), and report the URL in status. What a
// namespace may pull is granted through the Registry's credential store, which the Registry
// controller rebuilds whenever a Repository changes.
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../api/index.ts';
import {
  credentialSecret,
  isOwnCredential,
  labels,
  readCredentialState,
  repositoryLabelValue,
} from '../model/credential-secret.ts';
import { clientHosts } from '../model/hosts.ts';
import { endpoint } from '../model/registry.ts';
import { resources } from '../model/resources.ts';
import { pushUsername } from '../model/store.ts';
import { readConditions, setCondition } from '../runtime/conditions.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Cache } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube/client.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { ownerReference } from '../runtime/objects.ts';
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
import type { TagReader } from './tags.ts';

/** How often a Repository's tag count is read again from its registry. */
export const tagRefreshMs = 5 * 60_000;

export interface RepositoryCaches {
  repositories: Cache<KubeObject>;
  registries: Cache<KubeObject>;
  secrets: Cache<KubeObject>;
}

type RepoDeps = Pick<Deps, 'client' | 'clock' | 'events'>;

interface Outcome {
  ready: boolean;
  reason: string;
  message: string;
}

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
    const cached = this.caches.repositories.get(req.name, req.namespace) as Repository | undefined;
    if (!cached || cached.metadata?.deletionTimestamp) return; // the push Secret is owned: it goes too
    const repo = structuredClone(cached);
    const ns = req.namespace ?? '';
    const path = repositoryPath(repo);
    const regKey = registryKeyOf(repo);
    const [regNs = '', regName = ''] = regKey.split('/');
    const registry = this.caches.registries.get(regName, regNs) as Registry | undefined;
    const status: Record<string, unknown> = { ...(repo.status ?? {}), path };
    let outcome: Outcome;
    let refresh = false;

    if (!pathInNamespace(repo)) {
      outcome = {
        ready: false,
        reason: 'PathOutsideNamespace',
        message: `spec.path "${path}" must start with "${ns}/": a Repository claims paths under its own namespace only`,
      };
      await this.dropPushSecrets(repo, regNs, regName);
    } else if (!validPath(repo)) {
      outcome = {
        ready: false,
        reason: 'InvalidPath',
        message: `the path ${path.length > 80 ? `${path.slice(0, 80)}…` : path} (${path.length} characters) is not a registry repository name (at most 255 characters of lowercase components); set a shorter spec.path`,
      };
      await this.dropPushSecrets(repo, regNs, regName);
    } else if (!registry) {
      outcome = {
        ready: false,
        reason: 'RegistryNotFound',
        message: `Registry ${regKey} does not exist (spec.registryRef)`,
      };
    } else {
      const siblings = (this.caches.repositories.list() as Repository[]).filter(
        (r) => registryKeyOf(r) === regKey,
      );
      const holder = resolveClaims(siblings).conflicts.get(repositoryKey(repo));
      if (holder) {
        outcome = {
          ready: false,
          reason: 'PathConflict',
          message: `path ${path} in Registry ${regKey} is claimed by the older Repository ${repositoryKey(holder)}`,
        };
        await this.dropPushSecrets(repo, regNs, regName);
      } else {
        outcome = await this.pushSecret(repo, registry, { name: regName, namespace: regNs });
        status.url = `${registry.status?.endpoint ?? endpoint({ name: regName, namespace: regNs }, registry)}/${path}`;
        const tags = outcome.ready ? await this.readTags(registry, path) : undefined;
        if (tags !== undefined) status.tags = tags;
        refresh = true;
      }
    }
    // A Warning when the problem is new; one that status already shows is not repeated on every
    // resync (a steady cluster sees no writes from berth, Event series updates included).
    const previous = readConditions(repo.status).find((c) => c.type === 'Ready');
    const alreadyReported =
      previous?.status === 'False' &&
      previous.reason === outcome.reason &&
      previous.message === outcome.message &&
      previous.observedGeneration === repo.metadata?.generation;
    if (!outcome.ready && !alreadyReported)
      this.deps.events.event(repo as KubeObject, 'Warning', outcome.reason, 'Reconcile', outcome.message);
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
    await updateStatus(this.deps.client, resources.repositories, repo as KubeObject, status);
    return refresh ? { requeueAfterMs: tagRefreshMs } : undefined;
  }

  private async pushSecret(
    repo: Repository,
    registry: Registry,
    reg: { name: string; namespace: string },
  ): Promise<Outcome> {
    const ns = repo.metadata?.namespace ?? '';
    const name = repo.metadata?.name ?? '';
    const secretName = repo.spec.push?.secretName;
    for (const old of this.ownPushSecrets(repo, reg)) {
      if (old.metadata?.name !== secretName) await this.deleteSecret(ns, old.metadata?.name ?? '');
    }
    if (!secretName)
      return {
        ready: true,
        reason: 'Claimed',
        message: `the path ${repositoryPath(repo)} is this Repository's`,
      };
    const live =
      (this.caches.secrets.get(secretName, ns) as k8s.V1Secret | undefined) ??
      (await this.readSecret(ns, secretName));
    if (
      live &&
      !(
        isOwnCredential(live, 'push', reg) &&
        live.metadata?.labels?.[labels.repository] === repositoryLabelValue(name)
      )
    ) {
      const message = `Secret ${ns}/${secretName} exists and is not berth's push secret for this Repository; berth leaves it untouched (spec.push.secretName)`;
      return { ready: false, reason: 'SecretNotOwned', message };
    }
    const state = readCredentialState(live, pushUsername(ns, name));
    if (!state.password || !state.issuedAt) {
      state.password = randomSecret(32);
      state.issuedAt = new Date(this.deps.clock.now());
    }
    const desired = credentialSecret({
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
          metadata: repo.metadata as KubeObject['metadata'],
        }),
      ],
    });
    await applyOwned(
      this.deps.client,
      resources.secrets,
      desired as KubeObject,
      live as KubeObject | undefined,
    );
    return {
      ready: true,
      reason: 'Claimed',
      message: `the path ${repositoryPath(repo)} is this Repository's; push secret ${secretName}`,
    };
  }

  private ownPushSecrets(repo: Repository, reg: { name: string; namespace: string }): k8s.V1Secret[] {
    return (this.caches.secrets.list(repo.metadata?.namespace) as k8s.V1Secret[]).filter(
      (s) =>
        isOwnCredential(s, 'push', reg) &&
        s.metadata?.labels?.[labels.repository] === repositoryLabelValue(repo.metadata?.name ?? ''),
    );
  }

  private async dropPushSecrets(repo: Repository, regNs: string, regName: string): Promise<void> {
    for (const s of this.ownPushSecrets(repo, { name: regName, namespace: regNs }))
      await this.deleteSecret(repo.metadata?.namespace ?? '', s.metadata?.name ?? '');
  }

  private async readSecret(ns: string, name: string): Promise<k8s.V1Secret | undefined> {
    return (await this.deps.client.find<KubeObject>(objectPath(resources.secrets, name, ns))) as
      k8s.V1Secret | undefined;
  }

  private deleteSecret(ns: string, name: string): Promise<void> {
    return this.deps.client.deleteIfExists(objectPath(resources.secrets, name, ns));
  }
}
