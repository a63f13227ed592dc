// A Registry's credentials at scale, as berth hands them out: n namespaces, each with a pull
// secret and one Repository with a push secret, every credential in the middle of a rotation
// (the new secret current, the old one valid by its hash until the end of the grace period), so
// the store holds 4n + 1 entries. Secrets are derived from the index, so a test can present any
// namespace's old or new credential. Used by test/registry/credential-store-scale.test.ts and
// bench/credential-store.ts.
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Registry, Repository } from '../../src/api/index.ts';
import { hashSecret } from '../../src/credentials/secret.ts';
import { credentialSecret, labels } from '../../src/model/credential-secret.ts';
import { pullUsername, pushUsername, type StoreInput } from '../../src/model/store.ts';

export const registryRef = { name: 'main', namespace: 'registry-system' };
export const adminPassword = 'admin-password-of-the-scale-fixture';

export const namespaceName = (i: number): string => `team-${String(i).padStart(5, '0')}`;

/** The secret of namespace i's pull (or push) credential, old (before the rotation) or new. */
export function secretOf(kind: 'pull' | 'push', i: number, generation: 'old' | 'new'): string {
  return createHash('sha256').update(`${kind}/${i}/${generation}`).digest('base64url');
}

export interface Presented {
  username: string;
  secret: string;
  /** The repository path this credential may pull. */
  path: string;
}

/** What a client of namespace i presents. */
export function presented(kind: 'pull' | 'push', i: number, generation: 'old' | 'new'): Presented {
  const ns = namespaceName(i);
  return {
    username: kind === 'pull' ? pullUsername(ns) : pushUsername(ns, 'app'),
    secret: secretOf(kind, i, generation),
    path: `${ns}/app`,
  };
}

export interface ScaleFixture {
  registry: Registry;
  owners: Repository[];
  pullSecrets: k8s.V1Secret[];
  pushSecrets: k8s.V1Secret[];
  input(now: Date): StoreInput;
}

/** n namespaces mid-rotation at `now` (the old credentials valid for another hour). */
export function scaleFixture(n: number, now: Date): ScaleFixture {
  const registry = {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name: registryRef.name, namespace: registryRef.namespace, uid: 'scale-fixture' },
    spec: { storage: { emptyDir: {} }, pullSecrets: { secretName: 'main-pull', namespaceSelector: {} } },
  } as Registry;
  const issuedAt = new Date(now.getTime() - 60_000);
  const previousNotAfter = new Date(now.getTime() + 3_600_000);
  const owners: Repository[] = [];
  const pullSecrets: k8s.V1Secret[] = [];
  const pushSecrets: k8s.V1Secret[] = [];
  for (let i = 0; i < n; i++) {
    const ns = namespaceName(i);
    owners.push({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Repository',
      metadata: { namespace: ns, name: 'app', creationTimestamp: issuedAt },
      spec: { registryRef, path: `${ns}/app`, push: { secretName: 'app-push' } },
    } as Repository);
    const state = (kind: 'pull' | 'push', username: string) => ({
      username,
      password: secretOf(kind, i, 'new'),
      issuedAt,
      previousHash: hashSecret(secretOf(kind, i, 'old')),
      previousNotAfter,
    });
    pullSecrets.push(
      credentialSecret({
        name: 'main-pull',
        namespace: ns,
        kind: 'pull',
        registry: registryRef,
        hosts: ['main.registry-system.svc:443'],
        state: state('pull', pullUsername(ns)),
      }),
    );
    pushSecrets.push(
      credentialSecret({
        name: 'app-push',
        namespace: ns,
        kind: 'push',
        registry: registryRef,
        hosts: ['main.registry-system.svc:443'],
        state: state('push', pushUsername(ns, 'app')),
        extraLabels: { [labels.repository]: 'app' },
      }),
    );
  }
  return {
    registry,
    owners,
    pullSecrets,
    pushSecrets,
    input: (at) => ({
      registry,
      adminPassword,
      pullSecrets,
      pushSecrets,
      owners,
      namespaceLabels: () => ({}),
      now: at,
    }),
  };
}

/** The fixture's pull secrets after namespace i rotated again: `password` current, the new one previous. */
export function rotatedPullSecrets(
  fixture: ScaleFixture,
  i: number,
  password: string,
  now: Date,
): k8s.V1Secret[] {
  const ns = namespaceName(i);
  return fixture.pullSecrets.map((s) =>
    s.metadata?.namespace !== ns
      ? s
      : credentialSecret({
          name: 'main-pull',
          namespace: ns,
          kind: 'pull',
          registry: registryRef,
          hosts: ['main.registry-system.svc:443'],
          state: {
            username: pullUsername(ns),
            password,
            issuedAt: now,
            previousHash: hashSecret(secretOf('pull', i, 'new')),
            previousNotAfter: new Date(now.getTime() + 3_600_000),
          },
        }),
  );
}
