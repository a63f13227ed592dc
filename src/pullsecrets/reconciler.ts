// The pull-secret controller's reconcile, per Registry: every selected namespace gets its own
// credential in a dockerconfigjson Secret (stable name), its ServiceAccounts get the Secret
// appended to imagePullSecrets, credentials rotate in place, and a namespace that is no longer
// selected (or a Registry that goes) loses the Secret and only berth's ServiceAccount entries.
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { clientHosts } from '../model/hosts.ts';
import { pullUsername } from '../model/store.ts';
import { readConditions, setCondition, type Condition } from '../runtime/conditions.ts';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.ts';
import type { Deps } from '../runtime/deps.ts';
import { errorMessage, isNotFound } from '../runtime/errors.ts';
import type { Cache } from '../runtime/informer.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { findSecret } from '../runtime/secrets.ts';
import { addFinalizer, applyOwned, removeFinalizer, applyStatus } from '../runtime/writes.ts';
import { pullSecretsStatusOwner } from '../model/status-owners.ts';
import { parseDuration } from '../util/duration.ts';
import { mapLimit } from '../util/limit.ts';
import { randomSecret } from '../util/secrets.ts';
import { resources } from '../model/resources.ts';
import {
  credentialSecret,
  isOwnCredential,
  readCredentialState,
  stepCredential,
  type RegistryKey,
  type RotationPolicy,
  type Step,
} from '../model/credential-secret.ts';
import { lowestRequeue } from '../runtime/requeue.ts';
import { FanoutWork, recheckRequeueMs, type NamespaceOutcome } from './work.ts';
import {
  alreadyReported,
  pullSecretsCondition,
  pullSecretsStatus,
  readyOutcome,
  summarize,
  type Failure,
  type Summary,
} from './status.ts';
import { matchesSelector } from '../model/selector.ts';
import {
  addPullSecret,
  orphanedEntries,
  removePullSecret,
  targetsServiceAccount,
  type Edit,
} from './service-accounts.ts';

export const pullSecretsFinalizer = 'berth.dev/pull-secrets';

/** Namespaces written at once within one Registry's reconcile. */
export const namespaceConcurrency = 8;

/** How soon a namespace with a foreign Secret of berth's name is looked at again (it is not watched). */
export const foreignRecheckMs = 60_000;

export interface PullSecretCaches {
  registries: Cache<Registry>;
  namespaces: Cache<k8s.V1Namespace>;
  serviceAccounts: Cache<k8s.V1ServiceAccount>;
  secrets: Cache<k8s.V1Secret>;
}

export interface PullSecretSettings {
  /** How long a new credential waits in the store before a Secret switches to it. */
  propagationMs: number;
  /** Which namespaces to look at (shared with the event handlers that mark them); default: a new one. */
  work?: FanoutWork;
  /** Called once per namespace looked at (a metric: the work one event costs). */
  onNamespace?: () => void;
}

type PullDeps = Pick<Deps, 'client' | 'clock' | 'events'>;

/** What one pass over a Registry's namespaces works from, read once at its start. */
interface Pass {
  registry: Registry;
  reg: RegistryKey;
  key: string;
  spec: NonNullable<Registry['spec']['pullSecrets']>;
  selected: ReadonlySet<string>;
  now: Date;
  policy: RotationPolicy;
  hosts: string[];
  previous: readonly { namespace: string; reason: string }[] | undefined;
  log: ReconcileContext['log'];
}

/**
 * The reconcile is a list of steps: release (a Registry going, or without spec.pullSecrets),
 * the finalizer, the pass over the namespaces to look at (each one a namespaceStep), the status,
 * and the requeue at the earliest namespace recheck.
 */
export class PullSecretReconciler {
  private readonly deps: PullDeps;
  private readonly caches: PullSecretCaches;
  private readonly settings: PullSecretSettings;
  readonly work: FanoutWork;

  constructor(deps: PullDeps, caches: PullSecretCaches, settings: PullSecretSettings) {
    this.deps = deps;
    this.caches = caches;
    this.settings = settings;
    this.work = settings.work ?? new FanoutWork();
  }

  async reconcile(req: ReconcileRequest, rctx: ReconcileContext): Promise<ReconcileResult | void> {
    const key = req.key;
    const cached = this.caches.registries.get(req.name, req.namespace);
    if (!cached) {
      this.work.forget(key);
      return;
    }
    const registry = structuredClone(cached);
    const reg: RegistryKey = { name: req.name, namespace: req.namespace ?? '' };
    const spec = registry.spec.pullSecrets;
    if (registry.metadata?.deletionTimestamp || !spec) return this.release(key, registry, reg);
    if (await addFinalizer(this.deps.client, resources.registries, registry, pullSecretsFinalizer)) return; // the update brings us back

    const pass = this.startPass(key, registry, reg, spec, rctx);
    const failed = await this.lookAt(pass, this.targets(pass));
    await this.writeStatus(registry, summarize([...pass.selected].sort(), this.work.outcomes(key)));
    if (failed) throw new Error(`${failed} namespaces failed`);
    // one source of requeues; no cap, as before (a recheck may lie further out than a day)
    return lowestRequeue([recheckRequeueMs(this.work.nextRecheck(key), pass.now.getTime())], Infinity);
  }

  /**
   * Step for a Registry being deleted or without spec.pullSecrets. Reads the Secret and
   * ServiceAccount caches; deletes berth's pull Secrets of this Registry with their entries,
   * takes berth's orphaned entries off (when spec.pullSecrets names the Secret), then removes the
   * finalizer (being deleted) or drops status.pullSecrets and PullSecretsReady (once nothing is left).
   */
  private async release(key: string, registry: Registry, reg: RegistryKey): Promise<void> {
    const spec = registry.spec.pullSecrets;
    this.work.forget(key);
    const ours = this.ours(reg);
    for (const secret of ours)
      await this.removeFrom(secret.metadata?.namespace ?? '', secret.metadata?.name ?? '');
    if (spec) await this.removeOrphanedEntries(spec.secretName, new Set(), undefined);
    if (registry.metadata?.deletionTimestamp) {
      // A stale cached copy still shows the finalizer after the removal let the Registry go:
      // removing it again gets 404, and a Registry that is gone has no finalizer left to remove.
      await removeFinalizer(this.deps.client, resources.registries, registry, pullSecretsFinalizer).catch(
        (err: unknown) => {
          if (!isNotFound(err)) throw err;
        },
      );
    } else if (ours.length === 0 && registry.status?.pullSecrets) await this.writeStatus(registry, undefined);
  }

  /** What the pass works from: the selected namespaces (namespace cache), the time, the rotation policy. */
  private startPass(
    key: string,
    registry: Registry,
    reg: RegistryKey,
    spec: NonNullable<Registry['spec']['pullSecrets']>,
    rctx: ReconcileContext,
  ): Pass {
    return {
      registry,
      reg,
      key,
      spec,
      selected: new Set(this.selectedNamespaces(registry)),
      now: new Date(this.deps.clock.now()),
      policy: {
        intervalMs: parseDuration(spec.rotation?.interval ?? '24h'),
        gracePeriodMs: parseDuration(spec.rotation?.gracePeriod ?? '2h'),
        propagationMs: this.settings.propagationMs,
      },
      hosts: clientHosts(reg, registry),
      previous: registry.status?.pullSecrets?.failedNamespaces,
      log: rctx.log,
    };
  }

  /**
   * The namespaces to look at, sorted: those the work bookkeeping names (dirty, due), or on a
   * full pass every selected namespace, every namespace holding one of berth's Secrets for this
   * Registry, every one where berth's entry may be left behind and every one with a kept outcome.
   */
  private targets(pass: Pass): string[] {
    const batch = this.work.take(
      pass.key,
      String(pass.registry.metadata?.generation ?? ''),
      pass.now.getTime(),
    );
    if (!batch.full) return [...batch.namespaces].sort();
    const all = new Set(pass.selected);
    for (const s of this.ours(pass.reg)) all.add(s.metadata?.namespace ?? '');
    for (const sa of this.withEntry(pass.spec.secretName)) all.add(sa.metadata?.namespace ?? '');
    for (const ns of this.work.outcomes(pass.key).keys()) all.add(ns);
    return [...all].sort();
  }

  /**
   * Runs namespaceStep for each target, a few at a time (namespaces are independent), and records
   * each outcome. A namespace that fails is retried on the next reconcile and, when selected, kept
   * as a WriteFailed failure. Returns how many failed.
   */
  private async lookAt(pass: Pass, targets: readonly string[]): Promise<number> {
    let failed = 0;
    await mapLimit(targets, namespaceConcurrency, async (ns) => {
      this.settings.onNamespace?.();
      try {
        this.work.record(pass.key, ns, await this.namespaceStep(pass, ns));
      } catch (err) {
        failed++;
        pass.log.error('Failed to write a pull secret', { targetNamespace: ns, error: errorMessage(err) });
        this.work.retry(pass.key, ns);
        if (pass.selected.has(ns))
          this.work.record(pass.key, ns, {
            ready: false,
            failure: { namespace: ns, reason: 'WriteFailed', message: errorMessage(err) },
          });
      }
    });
    return failed;
  }

  /** berth's pull Secrets of this Registry (in one namespace, or all). */
  private ours(reg: RegistryKey, namespace?: string): k8s.V1Secret[] {
    return this.caches.secrets.list(namespace).filter((s) => isOwnCredential(s, 'pull', reg));
  }

  /** ServiceAccounts that carry berth's entry `secretName`. */
  private withEntry(secretName: string): k8s.V1ServiceAccount[] {
    return this.caches.serviceAccounts.list().filter((sa) => removePullSecret(sa, secretName) !== undefined);
  }

  /**
   * One namespace for one Registry: a selected one gets its current credential and its
   * ServiceAccount entries; any other loses berth's Secret and entries. Returns the outcome kept
   * for the status (undefined when the namespace is not selected).
   */
  private async namespaceStep(pass: Pass, ns: string): Promise<NamespaceOutcome | undefined> {
    const { spec, reg } = pass;
    const here = this.ours(reg, ns);
    if (!pass.selected.has(ns)) {
      for (const secret of here) await this.removeFrom(ns, secret.metadata?.name ?? '');
      await this.removeOrphanedEntries(spec.secretName, pass.selected, ns);
      return undefined;
    }
    // a Secret under a name the Registry no longer uses
    for (const secret of here)
      if (secret.metadata?.name !== spec.secretName) await this.removeFrom(ns, secret.metadata?.name ?? '');

    // berth's own Secrets are cached; a foreign one of the same name is read directly.
    const live = await findSecret(this.deps.client, ns, spec.secretName, this.caches.secrets);
    if (live && !isOwnCredential(live, 'pull', reg)) return this.foreignSecret(pass, ns, live);
    const step = await this.writeCredential(pass, ns, live);
    await this.attach(ns, spec.secretName, spec.serviceAccounts);
    return readyOutcome(step, pass.now, pass.policy.gracePeriodMs);
  }

  /**
   * Owns the SecretNotOwned failure: a Secret of berth's name that is not berth's is left alone,
   * reported (a Warning Event on it, unless already kept or in status) and looked at again after
   * foreignRecheckMs, as it is not watched. Reads the kept outcomes and status; writes an Event.
   */
  private foreignSecret(pass: Pass, ns: string, live: k8s.V1Secret): NamespaceOutcome {
    const known =
      this.work.outcomes(pass.key).get(ns)?.failure?.reason === 'SecretNotOwned' ||
      alreadyReported(pass.previous, ns, 'SecretNotOwned');
    return {
      ready: false,
      failure: this.notOwned(live, ns, pass.spec.secretName, !known),
      recheckAt: pass.now.getTime() + foreignRecheckMs,
    };
  }

  /**
   * Writes the namespace's pull Secret at its next credential state (minted, rotating, rotated;
   * see stepCredential), only where it differs from `live`, with a CredentialRotated Event on the
   * Registry when a rotation completes. Returns the step.
   */
  private async writeCredential(pass: Pass, ns: string, live: k8s.V1Secret | undefined): Promise<Step> {
    const state = readCredentialState(live, pullUsername(ns));
    const step = stepCredential(pass.now, state, ns, pass.policy, () => randomSecret(32));
    const desired = credentialSecret({
      name: pass.spec.secretName,
      namespace: ns,
      kind: 'pull',
      registry: pass.reg,
      hosts: pass.hosts,
      state: step.state,
    });
    await applyOwned(this.deps.client, resources.secrets, desired, live);
    if (step.events.includes('Rotated')) {
      this.deps.events.event(
        pass.registry,
        'Normal',
        'CredentialRotated',
        'Rotate',
        `Rotated the pull credential of namespace ${ns}`,
      );
    }
    return step;
  }

  private selectedNamespaces(registry: Registry): string[] {
    const spec = registry.spec.pullSecrets;
    if (!spec) return [];
    const excluded = new Set(spec.excludeNamespaces ?? []);
    return this.caches.namespaces
      .list()
      .filter((n) => n.status?.phase !== 'Terminating' && !n.metadata?.deletionTimestamp)
      .filter((n) => !excluded.has(n.metadata?.name ?? ''))
      .filter((n) => matchesSelector(spec.namespaceSelector, n.metadata?.labels ?? {}))
      .map((n) => n.metadata?.name ?? '');
  }

  /** The clash, with a Warning Event when it is new (status already shows one that persists). */
  private notOwned(secret: k8s.V1Secret, ns: string, name: string, isNew: boolean): Failure {
    const message = `Secret ${ns}/${name} exists and is not berth's pull secret for this Registry; berth leaves it untouched. Rename or remove it, or choose another spec.pullSecrets.secretName.`;
    if (isNew) this.deps.events.event(secret, 'Warning', 'SecretNotOwned', 'Reconcile', message);
    return { namespace: ns, reason: 'SecretNotOwned', message };
  }

  /** Appends the Secret to the targeted ServiceAccounts; takes berth's entry off the others. */
  private async attach(
    ns: string,
    secretName: string,
    policy: { names?: string[]; all?: boolean } | undefined,
  ) {
    for (const sa of this.caches.serviceAccounts.list(ns)) {
      const name = sa.metadata?.name ?? '';
      const edit = targetsServiceAccount(policy, name)
        ? addPullSecret(sa, secretName)
        : removePullSecret(sa, secretName);
      if (edit) await this.editServiceAccount(sa, edit);
    }
  }

  /** berth's entries left outside `selected` without the Secret (see orphanedEntries), in `namespace` or all. */
  private async removeOrphanedEntries(
    secretName: string,
    selected: ReadonlySet<string>,
    namespace: string | undefined,
  ): Promise<void> {
    const orphans = orphanedEntries(
      this.caches.serviceAccounts.list(namespace),
      secretName,
      selected,
      (ns) => this.caches.secrets.get(secretName, ns) !== undefined,
    );
    for (const sa of orphans) {
      const edit = removePullSecret(sa, secretName);
      if (edit) await this.editServiceAccount(sa, edit);
    }
  }

  private async removeFrom(ns: string, secretName: string): Promise<void> {
    for (const sa of this.caches.serviceAccounts.list(ns)) {
      const edit = removePullSecret(sa, secretName);
      if (edit) await this.editServiceAccount(sa, edit);
    }
    await this.deps.client.deleteIfExists(objectPath(resources.secrets, secretName, ns));
  }

  /**
   * imagePullSecrets is atomic for the API server: write the whole list with the cached
   * resourceVersion as a precondition. A concurrent change fails with 409 and is retried.
   */
  private async editServiceAccount(sa: k8s.V1ServiceAccount, edit: Edit): Promise<void> {
    const path = objectPath(resources.serviceAccounts, sa.metadata?.name ?? '', sa.metadata?.namespace);
    await this.deps.client.mergePatch(path, {
      metadata: {
        resourceVersion: sa.metadata?.resourceVersion,
        annotations: { 'berth.dev/image-pull-secrets': edit.annotation },
      },
      imagePullSecrets: edit.imagePullSecrets,
    });
  }

  /**
   * Owns PullSecretsReady. Writes status.pullSecrets and the condition from `summary`, or drops
   * both when there is none (pull secrets no longer asked for); the write is skipped when nothing
   * changed (applyStatus, as the owner of those fields).
   */
  private async writeStatus(registry: Registry, summary: Summary | undefined): Promise<void> {
    const now = this.deps.clock.now();
    const status = { ...(registry.status ?? {}) } as Record<string, unknown>;
    let conditions: Condition[] = readConditions(registry.status);
    if (!summary) {
      delete status.pullSecrets;
      conditions = conditions.filter((c) => c.type !== 'PullSecretsReady');
    } else {
      const previous = registry.status?.pullSecrets as Record<string, unknown> | undefined;
      status.pullSecrets = pullSecretsStatus(summary, previous);
      conditions = setCondition(
        conditions,
        pullSecretsCondition(summary),
        registry.metadata?.generation,
        now,
      );
    }
    status.conditions = conditions;
    await applyStatus(this.deps.client, resources.registries, registry, status, pullSecretsStatusOwner);
  }
}
