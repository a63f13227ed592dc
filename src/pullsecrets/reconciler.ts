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
import type { KubeObject } from '../runtime/kube/client.ts';
import { objectPath } from '../runtime/kube/resource.ts';
import { addFinalizer, applyOwned, removeFinalizer, updateStatus } from '../runtime/writes.ts';
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
} from '../model/credential-secret.ts';
import { rotationOverdue } from '../model/rotation.ts';
import { FanoutWork, type NamespaceOutcome } from './work.ts';
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
  registries: Cache<KubeObject>;
  namespaces: Cache<KubeObject>;
  serviceAccounts: Cache<KubeObject>;
  secrets: Cache<KubeObject>;
}

export interface PullSecretSettings {
  /** How long a new credential waits in the store before a Secret switches to it. */
  propagationMs: number;
  /** Which namespaces to look at (shared with the event handlers that mark them); default: a new one. */
  work?: FanoutWork;
  /** Called once per namespace looked at (a metric: the work one event costs). */
  onNamespace?: () => void;
}

interface Failure {
  namespace: string;
  reason: string;
  message: string;
}

type PullDeps = Pick<Deps, 'client' | 'clock' | 'events'>;

/** The figures of status.pullSecrets, from the kept outcomes of the selected namespaces. Pure. */
export function summarize(
  selected: readonly string[],
  outcomes: ReadonlyMap<string, NamespaceOutcome>,
): {
  selected: number;
  ready: number;
  failures: Failure[];
  lastRotation?: number;
  nextRotation?: number;
  overdue: boolean;
} {
  let ready = 0;
  let lastRotation: number | undefined;
  let nextRotation: number | undefined;
  let overdue = false;
  const failures: Failure[] = [];
  for (const ns of selected) {
    const o = outcomes.get(ns);
    if (!o) continue;
    if (o.ready) ready++;
    if (o.failure) failures.push(o.failure);
    if (o.lastRotation !== undefined) lastRotation = Math.max(lastRotation ?? 0, o.lastRotation);
    if (o.dueAt !== undefined) nextRotation = Math.min(nextRotation ?? Infinity, o.dueAt);
    if (o.overdue) overdue = true;
  }
  failures.sort((a, b) => a.namespace.localeCompare(b.namespace)); // a stable status
  return { selected: selected.length, ready, failures, lastRotation, nextRotation, overdue };
}

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
    const cached = this.caches.registries.get(req.name, req.namespace) as Registry | undefined;
    if (!cached) {
      this.work.forget(key);
      return;
    }
    const registry = structuredClone(cached);
    const reg: RegistryKey = { name: req.name, namespace: req.namespace ?? '' };
    const spec = registry.spec.pullSecrets;

    if (registry.metadata?.deletionTimestamp || !spec) {
      this.work.forget(key);
      const ours = this.ours(reg);
      for (const secret of ours)
        await this.removeFrom(secret.metadata?.namespace ?? '', secret.metadata?.name ?? '');
      if (spec) await this.removeOrphanedEntries(spec.secretName, new Set(), undefined);
      if (registry.metadata?.deletionTimestamp) {
        // A stale cached copy still shows the finalizer after the removal let the Registry go:
        // removing it again gets 404, and a Registry that is gone has no finalizer left to remove.
        await removeFinalizer(
          this.deps.client,
          resources.registries,
          registry as KubeObject,
          pullSecretsFinalizer,
        ).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
      } else if (ours.length === 0 && registry.status?.pullSecrets)
        await this.writeStatus(registry, undefined);
      return;
    }
    if (
      await addFinalizer(this.deps.client, resources.registries, registry as KubeObject, pullSecretsFinalizer)
    )
      return; // the update brings us back

    const now = new Date(this.deps.clock.now());
    const pass: Pass = {
      registry,
      reg,
      key,
      spec,
      selected: new Set(this.selectedNamespaces(registry)),
      now,
      policy: {
        intervalMs: parseDuration(spec.rotation?.interval ?? '24h'),
        gracePeriodMs: parseDuration(spec.rotation?.gracePeriod ?? '2h'),
        propagationMs: this.settings.propagationMs,
      },
      hosts: clientHosts(reg, registry),
      previous: registry.status?.pullSecrets?.failedNamespaces,
      log: rctx.log,
    };
    const batch = this.work.take(key, String(registry.metadata?.generation ?? ''), now.getTime());
    let targets: string[];
    if (batch.full) {
      // every selected namespace, every namespace holding one of berth's Secrets for this
      // Registry, and every one where berth's entry may be left behind
      const all = new Set(pass.selected);
      for (const s of this.ours(reg)) all.add(s.metadata?.namespace ?? '');
      for (const sa of this.withEntry(spec.secretName)) all.add(sa.metadata?.namespace ?? '');
      for (const ns of this.work.outcomes(key).keys()) all.add(ns);
      targets = [...all].sort();
    } else {
      targets = [...batch.namespaces].sort();
    }

    // Namespaces are independent: write them a few at a time, as a client would.
    let failed = 0;
    await mapLimit(targets, namespaceConcurrency, async (ns) => {
      this.settings.onNamespace?.();
      try {
        this.work.record(key, ns, await this.namespaceStep(pass, ns));
      } catch (err) {
        failed++;
        rctx.log.error('Failed to write a pull secret', { targetNamespace: ns, error: errorMessage(err) });
        this.work.retry(key, ns);
        if (pass.selected.has(ns))
          this.work.record(key, ns, {
            ready: false,
            failure: { namespace: ns, reason: 'WriteFailed', message: errorMessage(err) },
          });
      }
    });

    const selected = [...pass.selected].sort();
    const summary = summarize(selected, this.work.outcomes(key));
    await this.writeStatus(registry, summary);
    if (failed) throw new Error(`${failed} namespaces failed`);
    const next = this.work.nextRecheck(key);
    return next !== undefined ? { requeueAfterMs: Math.max(1000, next - now.getTime()) } : undefined;
  }

  /** berth's pull Secrets of this Registry (in one namespace, or all). */
  private ours(reg: RegistryKey, namespace?: string): k8s.V1Secret[] {
    return (this.caches.secrets.list(namespace) as k8s.V1Secret[]).filter((s) =>
      isOwnCredential(s, 'pull', reg),
    );
  }

  /** ServiceAccounts that carry berth's entry `secretName`. */
  private withEntry(secretName: string): k8s.V1ServiceAccount[] {
    return (this.caches.serviceAccounts.list() as k8s.V1ServiceAccount[]).filter(
      (sa) => removePullSecret(sa, secretName) !== undefined,
    );
  }

  /**
   * One namespace for one Registry: a selected one gets its current credential and its
   * ServiceAccount entries; any other loses berth's Secret and entries. Returns the outcome kept
   * for the status (undefined when the namespace is not selected).
   */
  private async namespaceStep(pass: Pass, ns: string): Promise<NamespaceOutcome | undefined> {
    const { spec, reg, now, policy } = pass;
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
    const cachedSecret = this.caches.secrets.get(spec.secretName, ns) as k8s.V1Secret | undefined;
    const live = cachedSecret ?? (await this.readSecret(ns, spec.secretName));
    if (live && !isOwnCredential(live, 'pull', reg)) {
      const known =
        this.work.outcomes(pass.key).get(ns)?.failure?.reason === 'SecretNotOwned' ||
        alreadyReported(pass.previous, ns, 'SecretNotOwned');
      return {
        ready: false,
        failure: this.notOwned(live, ns, spec.secretName, !known),
        recheckAt: now.getTime() + foreignRecheckMs,
      };
    }
    const step = stepCredential(now, readCredentialState(live, pullUsername(ns)), ns, policy, () =>
      randomSecret(32),
    );
    const desired = credentialSecret({
      name: spec.secretName,
      namespace: ns,
      kind: 'pull',
      registry: reg,
      hosts: pass.hosts,
      state: step.state,
    });
    await applyOwned(
      this.deps.client,
      resources.secrets,
      desired as KubeObject,
      live as KubeObject | undefined,
    );
    if (step.events.includes('Rotated')) {
      this.deps.events.event(
        pass.registry as KubeObject,
        'Normal',
        'CredentialRotated',
        'Rotate',
        `Rotated the pull credential of namespace ${ns}`,
      );
    }
    await this.attach(ns, spec.secretName, spec.serviceAccounts);
    const issued = step.state.issuedAt?.getTime();
    return {
      ready: true,
      recheckAt: step.recheckAt.getTime(),
      dueAt: step.dueAt.getTime(),
      ...(issued !== undefined && step.state.previousHash ? { lastRotation: issued } : {}),
      overdue: rotationOverdue(now, step.dueAt, policy.gracePeriodMs) && !step.state.pending,
    };
  }

  private selectedNamespaces(registry: Registry): string[] {
    const spec = registry.spec.pullSecrets;
    if (!spec) return [];
    const excluded = new Set(spec.excludeNamespaces ?? []);
    return (this.caches.namespaces.list() as k8s.V1Namespace[])
      .filter((n) => n.status?.phase !== 'Terminating' && !n.metadata?.deletionTimestamp)
      .filter((n) => !excluded.has(n.metadata?.name ?? ''))
      .filter((n) => matchesSelector(spec.namespaceSelector, n.metadata?.labels ?? {}))
      .map((n) => n.metadata?.name ?? '');
  }

  /** The clash, with a Warning Event when it is new (status already shows one that persists). */
  private notOwned(secret: k8s.V1Secret, ns: string, name: string, isNew: boolean): Failure {
    const message = `Secret ${ns}/${name} exists and is not berth's pull secret for this Registry; berth leaves it untouched. Rename or remove it, or choose another spec.pullSecrets.secretName.`;
    if (isNew)
      this.deps.events.event(secret as KubeObject, 'Warning', 'SecretNotOwned', 'Reconcile', message);
    return { namespace: ns, reason: 'SecretNotOwned', message };
  }

  private async readSecret(ns: string, name: string): Promise<k8s.V1Secret | undefined> {
    return (await this.deps.client.find<KubeObject>(objectPath(resources.secrets, name, ns))) as
      k8s.V1Secret | undefined;
  }

  /** Appends the Secret to the targeted ServiceAccounts; takes berth's entry off the others. */
  private async attach(
    ns: string,
    secretName: string,
    policy: { names?: string[]; all?: boolean } | undefined,
  ) {
    for (const sa of this.caches.serviceAccounts.list(ns) as k8s.V1ServiceAccount[]) {
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
      this.caches.serviceAccounts.list(namespace) as k8s.V1ServiceAccount[],
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
    for (const sa of this.caches.serviceAccounts.list(ns) as k8s.V1ServiceAccount[]) {
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

  private async writeStatus(
    registry: Registry,
    summary: ReturnType<typeof summarize> | undefined,
  ): Promise<void> {
    const now = this.deps.clock.now();
    const status = { ...(registry.status ?? {}) } as Record<string, unknown>;
    let conditions: Condition[] = readConditions(registry.status);
    if (!summary) {
      delete status.pullSecrets;
      conditions = conditions.filter((c) => c.type !== 'PullSecretsReady');
    } else {
      const previous = (registry.status?.pullSecrets ?? {}) as Record<string, unknown>;
      status.pullSecrets = {
        selectedNamespaces: summary.selected,
        readyNamespaces: summary.ready,
        ...(summary.lastRotation
          ? { lastRotationTime: iso(summary.lastRotation) }
          : previous.lastRotationTime
            ? { lastRotationTime: previous.lastRotationTime }
            : {}),
        ...(summary.nextRotation !== undefined ? { nextRotationTime: iso(summary.nextRotation) } : {}),
        ...(summary.failures.length ? { failedNamespaces: summary.failures.slice(0, 100) } : {}),
      };
      const f = summary.failures;
      const cond = f.length
        ? {
            type: 'PullSecretsReady',
            status: 'False' as const,
            reason: f[0]!.reason,
            message: `${f.length} of ${summary.selected} namespaces failed: ${f
              .slice(0, 5)
              .map((x) => `${x.namespace} (${x.reason})`)
              .join(', ')}`,
          }
        : summary.overdue
          ? {
              type: 'PullSecretsReady',
              status: 'False' as const,
              reason: 'RotationOverdue',
              message: 'a credential rotation is overdue; the current credentials still work',
            }
          : {
              type: 'PullSecretsReady',
              status: 'True' as const,
              reason: summary.selected ? 'AllNamespacesReady' : 'NoNamespacesSelected',
              message: `${summary.ready} of ${summary.selected} selected namespaces have a current pull secret`,
            };
      conditions = setCondition(conditions, cond, registry.metadata?.generation, now);
    }
    status.conditions = conditions;
    await updateStatus(this.deps.client, resources.registries, registry as KubeObject, status);
  }
}

/**
 * Whether the Registry's status already reports this namespace's failure: then it is not news,
 * and repeating its Event on every resync would be a write in a steady cluster.
 */
export function alreadyReported(
  failed: readonly { namespace: string; reason: string }[] | undefined,
  namespace: string,
  reason: string,
): boolean {
  return (failed ?? []).some((f) => f.namespace === namespace && f.reason === reason);
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
