// The credential store at 10,000 namespaces, every credential mid-rotation (40,001 entries: a
// pull and a push credential per namespace, each with its new and its old secret, and the admin),
// against the real API server: the Secrets berth writes for it are accepted (each within the
// 1 MiB data limit, where the version-1 document alone is refused), the token service's reader
// loads them from a folder laid out like its projected volume and authenticates a sample of old
// and new credentials with their grants, a rotation of one namespace rewrites one Secret, and
// the token Deployment's pod spec mounts the same volume whatever the size. Asserts counts and
// sizes, never times (bench/credential-store.ts measures those).
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import winston from 'winston';
import type { Registry } from '../../src/api/index.ts';
import { authenticate } from '../../src/credentials/authenticate.ts';
import { layoutCredentialStore, secretDataLimit, type LaidOutStore } from '../../src/credentials/layout.ts';
import { grantedActions, type Principal } from '../../src/credentials/scope.ts';
import { storeShards } from '../../src/credentials/sharded.ts';
import { serializeCredentialStore, type CredentialStore } from '../../src/credentials/store.ts';
import { credentialStoreSecrets } from '../../src/registry/desired/secrets.ts';
import { credentialsVolume } from '../../src/registry/desired/token-service.ts';
import { resources } from '../../src/model/resources.ts';
import { buildCredentialStore } from '../../src/model/store.ts';
import { KubeClient } from '../../src/runtime/kube/client.ts';
import { applyOwned } from '../../src/runtime/writes.ts';
import { createTokenMetrics } from '../../src/token/metrics.ts';
import { CredentialStoreFile } from '../../src/token/store-file.ts';
import { createTestNamespace, testKubeConfig } from '../harness/kube.ts';
import { presented, rotatedPullSecrets, scaleFixture } from './credential-store-fixture.ts';

const namespaces = 10_000;
const now = new Date();
const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const client = new KubeClient(kc);
const dirs: string[] = [];
let ns = '';
let registry: Registry;
let store: CredentialStore;
let laidOut: LaidOutStore;
const fixture = scaleFixture(namespaces, now);

const ctx = () => ({ registry, ref: { name: 'main', namespace: ns } });
const dataBytes = (s: k8s.V1Secret) =>
  Object.values(s.data ?? {}).reduce((sum, v) => sum + Buffer.from(v, 'base64').length, 0);

beforeAll(async () => {
  ns = await createTestNamespace(kc, 'store-scale');
  // A real owner, so that the Secrets carry the owner reference berth gives them.
  registry = (await custom.createNamespacedCustomObject({
    group: 'berth.dev',
    version: 'v1alpha1',
    plural: 'registries',
    namespace: ns,
    body: {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'main' },
      spec: { storage: { emptyDir: {} } },
    },
  })) as Registry;
  store = buildCredentialStore({
    ...fixture.input(now),
    registry: { ...fixture.registry, metadata: registry.metadata },
  });
  laidOut = layoutCredentialStore(store, undefined);
});

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe(`the credential store of ${namespaces} namespaces mid-rotation`, () => {
  it('holds every credential, old and new, and no longer fits one document', () => {
    expect(store.credentials).toHaveLength(4 * namespaces + 1);
    expect(Buffer.byteLength(serializeCredentialStore(store))).toBeGreaterThan(secretDataLimit);
    expect(laidOut.layout).toBe('sharded');
    expect(laidOut.files).toHaveLength(storeShards);
  });

  it('would be refused by the API server as one version-1 Secret, already at a tenth of the size', async () => {
    // The whole document (16 MiB) passes even the request size limit; a tenth of it passes the
    // 1 MiB data limit of a Secret, which the API server refuses by name.
    const tenth = { ...store, credentials: store.credentials.slice(0, store.credentials.length / 10) };
    const [single] = credentialStoreSecrets(ctx(), {
      layout: 'single',
      files: [serializeCredentialStore(tenth)],
      largestBytes: 0,
    });
    expect(dataBytes(single as k8s.V1Secret)).toBeGreaterThan(secretDataLimit);
    const err = await core
      .createNamespacedSecret({
        namespace: ns,
        body: { ...(single as k8s.V1Secret), metadata: { name: 'too-large' } },
      })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect((err as { code?: number } | undefined)?.code).toBe(422);
    expect(String((err as { body?: unknown }).body)).toMatch(
      /data: Too long: may not be more than 1048576 bytes/,
    );
  });

  it('is accepted as berth writes it: every Secret within the limits', async () => {
    const secrets = credentialStoreSecrets(ctx(), laidOut);
    expect(secrets).toHaveLength(storeShards);
    for (const s of secrets) await applyOwned(client, resources.secrets, s, undefined);
    const written = await Promise.all(
      secrets.map((s) => core.readNamespacedSecret({ namespace: ns, name: s.metadata?.name ?? '' })),
    );
    const sizes = written.map(dataBytes);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(secretDataLimit);
    // The whole object, as the API serves it, stays under etcd's default request limit (1.5 MiB).
    for (const s of written) expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThan(1.5 * 1024 * 1024);
    console.log(
      `credential store of ${store.credentials.length} entries: ${storeShards} Secrets, ` +
        `${Math.round(sizes.reduce((a, b) => a + b, 0) / 1024)} KiB in all, the largest ${Math.round(Math.max(...sizes) / 1024)} KiB ` +
        `(one version-1 document: ${Math.round(Buffer.byteLength(serializeCredentialStore(store)) / 1024)} KiB)`,
    );
  });

  it('loads in the token service from the Secrets the API server holds, and authenticates old and new credentials', async () => {
    const dir = await projectedVolumeFromApi();
    const reader = new CredentialStoreFile(path.join(dir, 'store.json'), {
      logger: winston.createLogger({ silent: true, transports: [new winston.transports.Console()] }),
      metrics: createTokenMetrics(),
      clock: { now: () => now.getTime() },
    });
    await reader.load();
    const current = reader.current();
    expect(current.size).toBe(4 * namespaces + 1);
    expect(current.byUsername.size).toBe(2 * namespaces + 1);
    const sample = Array.from({ length: 100 }, (_v, k) => Math.floor((k * namespaces) / 100) + (k % 7));
    let accepted = 0;
    let refused = 0;
    for (const i of sample)
      for (const kind of ['pull', 'push'] as const)
        for (const generation of ['old', 'new'] as const) {
          const p = presented(kind, i, generation);
          const result = authenticate(current, p.username, p.secret, now);
          if (!result.ok) continue;
          accepted++;
          const principal: Principal = { kind: 'credential', entry: result.entry };
          const own = grantedActions(principal, {
            type: 'repository',
            name: p.path,
            actions: ['pull', 'push'],
          });
          expect(own).toEqual(kind === 'pull' ? ['pull'] : ['pull', 'push']);
          const other = presented(kind, (i + 1) % namespaces, generation).path;
          expect(grantedActions(principal, { type: 'repository', name: other, actions: ['pull'] })).toEqual(
            [],
          );
          // someone else's secret under this username is refused
          const wrong = presented(kind, (i + 1) % namespaces, generation).secret;
          if (!authenticate(current, p.username, wrong, now).ok) refused++;
        }
    expect(accepted).toBe(sample.length * 4);
    expect(refused).toBe(sample.length * 4);
    expect(authenticate(current, 'admin', 'admin-password-of-the-scale-fixture', now).ok).toBe(true);
  });

  it('rewrites one Secret when one namespace rotates', async () => {
    const before = laidOut.files;
    const pulls = rotatedPullSecrets(fixture, 1234, 'rotated-secret-of-1234', now);
    const next = buildCredentialStore({
      ...fixture.input(now),
      registry: { ...fixture.registry, metadata: registry.metadata },
      pullSecrets: pulls,
    });
    const nextLaidOut = layoutCredentialStore(next, 'sharded');
    expect(nextLaidOut.files.filter((t, i) => t !== before[i])).toHaveLength(1);
    let writes = 0;
    for (const s of credentialStoreSecrets(ctx(), nextLaidOut)) {
      const cur = await client.find<k8s.V1Secret>(
        `/api/v1/namespaces/${ns}/secrets/${s.metadata?.name ?? ''}`,
      );
      if ((await applyOwned(client, resources.secrets, s, cur)).changed) writes++;
    }
    expect(writes).toBe(1);
  });

  it('is mounted by the same pod spec, whatever its size', () => {
    const volume = credentialsVolume({ ref: { name: 'main', namespace: ns } });
    expect(volume.projected?.sources).toHaveLength(storeShards);
    expect(volume.projected?.sources?.[0]?.secret).toEqual({ name: 'main-credentials' });
    expect(volume.projected?.sources?.slice(1).every((s) => s.secret?.optional === true)).toBe(true);
  });
});

/** The folder the kubelet would project: every key of every store Secret, read from the API server. */
async function projectedVolumeFromApi(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-store-scale-'));
  dirs.push(dir);
  const ts = path.join(dir, '..2026_1');
  mkdirSync(ts);
  const names: string[] = [];
  for (const v of credentialsVolume({ ref: { name: 'main', namespace: ns } }).projected?.sources ?? []) {
    const s = await core
      .readNamespacedSecret({ namespace: ns, name: v.secret?.name ?? '' })
      .catch(() => undefined);
    for (const [key, value] of Object.entries(s?.data ?? {})) {
      writeFileSync(path.join(ts, key), Buffer.from(value, 'base64'));
      names.push(key);
    }
  }
  symlinkSync(path.basename(ts), path.join(dir, '..data_tmp'));
  renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  for (const name of names) symlinkSync(`..data/${name}`, path.join(dir, name));
  expect(names).toHaveLength(storeShards);
  return dir;
}
