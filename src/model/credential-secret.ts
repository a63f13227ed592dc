// The credential Secrets berth hands out (a namespace's pull secret, a Repository's push secret):
// their labels, the rotation state they carry, and the pure step from one state to the next.
//
// A pull secret holds the current credential in `.dockerconfigjson`. A rotation first adds the
// new credential under the key `pending` (so the credential store, and then the token service,
// accept it), and only after the propagation delay makes it current, keeping the old one valid
// (by its hash, in an annotation) until the end of the grace period.
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { hashSecret } from '../credentials/secret.ts';
import { dockerConfigJson, parseDockerConfig } from '../util/dockerconfig.ts';
import { secretData, secretText } from '../util/secrets.ts';
import { decideRotation, rotationDueAt } from './rotation.ts';

export const labels = {
  credential: 'berth.dev/credential',
  registry: 'berth.dev/registry',
  registryNamespace: 'berth.dev/registry-namespace',
  repository: 'berth.dev/repository',
} as const;

/**
 * The value of the `berth.dev/repository` label of a push Secret: the Repository's name when it
 * fits a label value (63 characters), else a readable prefix, `_` and 16 hex digits of the
 * SHA-256 of the name (a Repository name can be 253 characters long and never contains `_`, so the
 * shortened form never equals another Repository's name).
 */
export function repositoryLabelValue(name: string): string {
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16);
  return `${name.slice(0, 46)}_${hash}`;
}

export const annotations = {
  issuedAt: 'berth.dev/issued-at',
  pendingSince: 'berth.dev/pending-since',
  previousHash: 'berth.dev/previous-credential',
  previousNotAfter: 'berth.dev/previous-not-after',
} as const;

export interface RegistryKey {
  name: string;
  namespace: string;
}

/** Labels of a credential Secret for `registry`. */
export function credentialLabels(kind: 'pull' | 'push', registry: RegistryKey): Record<string, string> {
  return {
    'app.kubernetes.io/managed-by': 'berth',
    [labels.credential]: kind,
    [labels.registry]: registry.name,
    [labels.registryNamespace]: registry.namespace,
  };
}

/** True when `secret` is berth's credential Secret of this kind for this Registry. */
export function isOwnCredential(
  secret: { metadata?: { labels?: Record<string, string> } } | undefined,
  kind: 'pull' | 'push',
  registry: RegistryKey,
): boolean {
  const l = secret?.metadata?.labels ?? {};
  return (
    l['app.kubernetes.io/managed-by'] === 'berth' &&
    l[labels.credential] === kind &&
    l[labels.registry] === registry.name &&
    l[labels.registryNamespace] === registry.namespace
  );
}

export interface CredentialState {
  username: string;
  password?: string;
  issuedAt?: Date;
  pending?: string;
  pendingSince?: Date;
  previousHash?: string;
  previousNotAfter?: Date;
}

const date = (s: string | undefined) => (s && !Number.isNaN(Date.parse(s)) ? new Date(s) : undefined);

export function readCredentialState(secret: k8s.V1Secret | undefined, username: string): CredentialState {
  const parsed = parseDockerConfig(secretText(secret, '.dockerconfigjson'));
  const a = secret?.metadata?.annotations ?? {};
  const state: CredentialState = { username };
  if (parsed && parsed.username === username) state.password = parsed.password;
  const issuedAt = date(a[annotations.issuedAt]);
  if (state.password && issuedAt) state.issuedAt = issuedAt;
  const pending = secretText(secret, 'pending');
  const pendingSince = date(a[annotations.pendingSince]);
  if (pending && pendingSince) {
    state.pending = pending;
    state.pendingSince = pendingSince;
  }
  const previousHash = a[annotations.previousHash];
  const previousNotAfter = date(a[annotations.previousNotAfter]);
  if (previousHash && previousNotAfter) {
    state.previousHash = previousHash;
    state.previousNotAfter = previousNotAfter;
  }
  return state;
}

export interface RotationPolicy {
  intervalMs: number;
  gracePeriodMs: number;
  /** How long the credential store takes to reach the token service (kubelet Secret sync). */
  propagationMs: number;
}

export type StepEvent = 'Minted' | 'RotationStarted' | 'Rotated' | 'PreviousExpired';

export interface Step {
  state: CredentialState;
  events: StepEvent[];
  /** When this credential needs looking at again. */
  recheckAt: Date;
  /** When the current credential is due for rotation (for status). */
  dueAt: Date;
}

/** The next state of a namespace's credential at `now`. Pure but for `mint` (random secrets). */
export function stepCredential(
  now: Date,
  current: CredentialState,
  namespace: string,
  policy: RotationPolicy,
  mint: () => string,
): Step {
  const state: CredentialState = { ...current };
  const events: StepEvent[] = [];
  const checks: Date[] = [];
  if (state.previousNotAfter && state.previousNotAfter <= now) {
    delete state.previousHash;
    delete state.previousNotAfter;
    events.push('PreviousExpired');
  }
  if (!state.password || !state.issuedAt) {
    state.password = mint();
    state.issuedAt = now;
    delete state.pending;
    delete state.pendingSince;
    events.push('Minted');
  } else if (state.pending && state.pendingSince) {
    const promoteAt = new Date(state.pendingSince.getTime() + policy.propagationMs);
    if (now >= promoteAt) {
      state.previousHash = hashSecret(state.password);
      state.previousNotAfter = new Date(now.getTime() + policy.gracePeriodMs);
      state.password = state.pending;
      state.issuedAt = now;
      delete state.pending;
      delete state.pendingSince;
      events.push('Rotated');
    } else {
      checks.push(promoteAt);
    }
  } else {
    const decision = decideRotation(now, state.issuedAt, namespace, policy);
    if (decision.action === 'rotate') {
      state.pending = mint();
      state.pendingSince = now;
      checks.push(new Date(now.getTime() + policy.propagationMs));
      events.push('RotationStarted');
    }
  }
  const dueAt = rotationDueAt(state.issuedAt ?? now, policy.intervalMs, namespace);
  if (!state.pending) checks.push(dueAt); // while a rotation is pending, its promotion is next
  if (state.previousNotAfter) checks.push(state.previousNotAfter);
  const recheckAt = new Date(Math.min(...checks.map((d) => d.getTime())));
  return { state, events, recheckAt, dueAt };
}

/** The store entries (hashes only) of a credential state. */
export function credentialHashes(state: CredentialState): { hash: string; notAfter?: string }[] {
  const out: { hash: string; notAfter?: string }[] = [];
  if (state.password) out.push({ hash: hashSecret(state.password) });
  if (state.pending) out.push({ hash: hashSecret(state.pending) });
  if (state.previousHash && state.previousNotAfter)
    out.push({ hash: state.previousHash, notAfter: state.previousNotAfter.toISOString() });
  return out;
}

/** A credential Secret carrying `state` for `hosts`. */
export function credentialSecret(options: {
  name: string;
  namespace: string;
  kind: 'pull' | 'push';
  registry: RegistryKey;
  hosts: string[];
  state: CredentialState;
  extraLabels?: Record<string, string>;
  ownerReferences?: k8s.V1OwnerReference[];
}): k8s.V1Secret {
  const { state } = options;
  const ann: Record<string, string> = {};
  if (state.issuedAt) ann[annotations.issuedAt] = state.issuedAt.toISOString();
  if (state.pendingSince) ann[annotations.pendingSince] = state.pendingSince.toISOString();
  if (state.previousHash && state.previousNotAfter) {
    ann[annotations.previousHash] = state.previousHash;
    ann[annotations.previousNotAfter] = state.previousNotAfter.toISOString();
  }
  const values: Record<string, string> = {
    '.dockerconfigjson': dockerConfigJson(options.hosts, state.username, state.password ?? ''),
  };
  if (state.pending) values.pending = state.pending;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: { ...credentialLabels(options.kind, options.registry), ...(options.extraLabels ?? {}) },
      annotations: ann,
      ...(options.ownerReferences ? { ownerReferences: options.ownerReferences } : {}),
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: secretData(values),
  };
}
