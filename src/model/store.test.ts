import { describe, expect, it } from '@jest/globals';
import type { Registry, Repository } from '../api/index.ts';
import { hashSecret } from '../credentials/secret.ts';
import { parseCredentialStoreText, serializeCredentialStore } from '../credentials/store.ts';
import { credentialSecret, labels, repositoryLabelValue } from './credential-secret.ts';
import { pullablePaths } from './grants.ts';
import { buildCredentialStore, pushUsername, type CredentialHashCache } from './store.ts';

const registry: Registry = {
  metadata: { name: 'main', namespace: 'registry-system' },
  spec: { storage: { emptyDir: {} }, pullSecrets: { secretName: 'main-pull', namespaceSelector: {} } },
} as Registry;
const reg = { name: 'main', namespace: 'registry-system' };
const t0 = new Date('2026-11-24T00:00:00Z');
const repo = (ns: string, name: string, pull?: Repository['spec']['pull']): Repository => ({
  metadata: { namespace: ns, name },
  spec: {
    registryRef: { name: 'main', namespace: 'registry-system' },
    push: { secretName: `${name.slice(0, 40)}-push` },
    ...(pull ? { pull } : {}),
  },
});
const pull = (
  ns: string,
  password: string,
  extra: Partial<Parameters<typeof credentialSecret>[0]['state']> = {},
) =>
  credentialSecret({
    name: 'main-pull',
    namespace: ns,
    kind: 'pull',
    registry: reg,
    hosts: ['h'],
    state: { username: `pull.${ns}`, password, issuedAt: t0, ...extra },
  });

describe('buildCredentialStore', () => {
  const owners = [repo('team-a', 'web', { namespaces: ['team-c'] }), repo('team-b', 'api')];
  const store = buildCredentialStore({
    registry,
    adminPassword: 'admin-secret',
    pullSecrets: [
      pull('team-a', 'pa', {
        previousHash: hashSecret('old'),
        previousNotAfter: new Date(t0.getTime() + 1000),
      }),
      pull('team-c', 'pc', {
        previousHash: hashSecret('gone'),
        previousNotAfter: new Date(t0.getTime() - 1000),
      }),
      pull('nobody', 'pn'),
    ],
    pushSecrets: [
      credentialSecret({
        name: 'web-push',
        namespace: 'team-a',
        kind: 'push',
        registry: reg,
        hosts: ['h'],
        state: { username: 'push.team-a.web', password: 'push-a', issuedAt: t0 },
        extraLabels: { [labels.repository]: 'web' },
      }),
    ],
    owners,
    namespaceLabels: () => ({}),
    now: t0,
  });
  const by = (u: string) => store.credentials.filter((c) => c.username === u);

  it('holds only hashes', () => {
    const text = JSON.stringify(store);
    for (const plain of ['admin-secret', 'pa', 'pc', 'pn', 'push-a'])
      expect(text).not.toContain(`"${plain}"`);
    expect(by('admin')[0]?.secretHash).toBe(hashSecret('admin-secret'));
  });

  it('lets a namespace pull its own and granted paths only', () => {
    expect(by('pull.team-a').map((c) => c.grants)).toEqual([
      [{ repositories: ['team-a/web'], actions: ['pull'] }],
      [{ repositories: ['team-a/web'], actions: ['pull'] }],
    ]);
    expect(by('pull.team-c')[0]?.grants).toEqual([{ repositories: ['team-a/web'], actions: ['pull'] }]);
    expect(by('pull.nobody')[0]?.grants).toEqual([]);
  });

  it('keeps a rotated-out credential until its grace period ends, then drops it', () => {
    expect(by('pull.team-a')[1]).toMatchObject({
      secretHash: hashSecret('old'),
      notAfter: new Date(t0.getTime() + 1000).toISOString(),
    });
    expect(by('pull.team-c')).toHaveLength(1);
  });

  it('gives a push secret push and pull on its Repository’s path', () => {
    expect(by('push.team-a.web')[0]?.grants).toEqual([
      { repositories: ['team-a/web'], actions: ['pull', 'push'] },
    ]);
  });
});

describe('buildCredentialStore never writes what the token service would skip', () => {
  const longNs = 'n'.repeat(63);
  const longName = 'r'.repeat(253);
  const push = (
    ns: string,
    name: string,
    extra: Partial<Parameters<typeof credentialSecret>[0]['state']> = {},
  ) =>
    credentialSecret({
      name: `${name.slice(0, 40)}-push`,
      namespace: ns,
      kind: 'push',
      registry: reg,
      hosts: ['h'],
      state: { username: pushUsername(ns, name), password: 'pw', issuedAt: t0, ...extra },
      extraLabels: { [labels.repository]: repositoryLabelValue(name) },
    });

  it('gives the longest names a username that fits, with their grants', () => {
    const store = buildCredentialStore({
      registry,
      adminPassword: 'a',
      pullSecrets: [pull(longNs, 'p')],
      pushSecrets: [push(longNs, longName)],
      owners: [repo(longNs, longName)],
      namespaceLabels: () => ({}),
      now: t0,
    });
    const parsed = parseCredentialStoreText(serializeCredentialStore(store));
    expect(parsed.success && parsed.skipped).toEqual([]);
    const pushEntry = store.credentials.find((c) => c.username === pushUsername(longNs, longName));
    expect(pushEntry?.username.length).toBeLessThanOrEqual(128);
    expect(pushEntry?.grants).toEqual([
      { repositories: [`${longNs}/${longName}`], actions: ['pull', 'push'] },
    ]);
  });

  it('leaves out a previous-credential annotation edited into something that is not a hash', () => {
    const tampered = pull('team-a', 'pa', {
      previousHash: 'not-a-hash',
      previousNotAfter: new Date(t0.getTime() + 3600_000),
    });
    const store = buildCredentialStore({
      registry,
      adminPassword: 'a',
      pullSecrets: [tampered],
      pushSecrets: [],
      owners: [repo('team-a', 'web')],
      namespaceLabels: () => ({}),
      now: t0,
    });
    const parsed = parseCredentialStoreText(serializeCredentialStore(store));
    expect(parsed.success && parsed.skipped).toEqual([]);
    expect(store.credentials.filter((c) => c.username === 'pull.team-a').map((c) => c.secretHash)).toEqual([
      hashSecret('pa'),
    ]);
  });
});

describe('buildCredentialStore takes a credential only where berth issues one', () => {
  const selective = {
    ...registry,
    spec: {
      ...registry.spec,
      pullSecrets: {
        secretName: 'main-pull',
        namespaceSelector: { matchLabels: { 'berth.dev/pull': 'main' } },
        excludeNamespaces: ['kube-system'],
      },
    },
  } as Registry;
  const selectedLabels = { 'berth.dev/pull': 'main' };
  const named = (secret: ReturnType<typeof pull>, name: string) => ({
    ...secret,
    metadata: { ...secret.metadata, name },
  });
  const forgedPush = (i: number) =>
    credentialSecret({
      name: `forged-${i}`,
      namespace: 'team-a',
      kind: 'push',
      registry: reg,
      hosts: ['h'],
      state: { username: 'push.team-a.web', password: `forged-${i}`, issuedAt: t0 },
      extraLabels: { [labels.repository]: 'web' },
    });
  const build = (pullSecrets: ReturnType<typeof pull>[], pushSecrets: ReturnType<typeof pull>[]) =>
    buildCredentialStore({
      registry: selective,
      adminPassword: 'a',
      pullSecrets,
      pushSecrets,
      owners: [repo('team-a', 'web', { namespaceSelector: {} })],
      namespaceLabels: (ns) => (ns === 'unselected' ? {} : selectedLabels),
      now: t0,
    });
  const users = (store: ReturnType<typeof build>) => store.credentials.map((c) => c.username);

  it.each([
    ['a namespace the Registry does not select', pull('unselected', 'x'), []],
    ['an excluded namespace', pull('kube-system', 'x'), []],
    ['another Secret name in a selected namespace', named(pull('team-b', 'x'), 'my-pull'), []],
    ['berth’s pull Secret in a selected namespace', pull('team-b', 'x'), ['pull.team-b']],
  ])('pull: %s', (_name, secret, want) =>
    expect(users(build([secret], [])).filter((u) => u !== 'admin')).toEqual(want),
  );

  it('push: only the Secret the Repository names counts; a thousand forged ones add nothing', () => {
    const real = credentialSecret({
      name: 'web-push',
      namespace: 'team-a',
      kind: 'push',
      registry: reg,
      hosts: ['h'],
      state: { username: 'push.team-a.web', password: 'real', issuedAt: t0 },
      extraLabels: { [labels.repository]: 'web' },
    });
    const store = build([], [real, ...Array.from({ length: 1000 }, (_v, i) => forgedPush(i))]);
    expect(
      store.credentials.filter((c) => c.username === 'push.team-a.web').map((c) => c.secretHash),
    ).toEqual([hashSecret('real')]);
    expect(store.credentials).toHaveLength(2);
  });
});

describe('buildCredentialStore at scale', () => {
  it('grants what pullablePaths over every Repository grants (the index changes nothing)', () => {
    const namespaces = Array.from({ length: 30 }, (_v, i) => `ns-${i}`);
    const labelsOf = (ns: string) => ({ tier: Number(ns.slice(3)) % 3 === 0 ? 'shared' : 'own' });
    const owners = namespaces.flatMap((ns, i) => [
      repo(ns, 'app'),
      repo(ns, 'lib', i % 4 === 0 ? { namespaces: [namespaces[(i + 1) % 30] ?? '', ns, ns] } : undefined),
      ...(i % 10 === 0 ? [repo(ns, 'base', { namespaceSelector: { matchLabels: { tier: 'shared' } } })] : []),
      ...(i === 7 ? [repo(ns, 'all', { namespaceSelector: {}, namespaces: ['ns-8'] })] : []),
    ]);
    const store = buildCredentialStore({
      registry,
      adminPassword: 'a',
      pullSecrets: namespaces.map((ns) => pull(ns, `p-${ns}`)),
      pushSecrets: [],
      owners,
      namespaceLabels: labelsOf,
      now: t0,
    });
    for (const ns of namespaces) {
      const entry = store.credentials.find((c) => c.username === `pull.${ns}`);
      const expected = pullablePaths(ns, labelsOf(ns), owners);
      expect(entry?.grants).toEqual(expected.length ? [{ repositories: expected, actions: ['pull'] }] : []);
    }
  });

  it('reads each Secret object once with a hash cache, and a replaced Secret again', () => {
    const hashCache: CredentialHashCache = new WeakMap();
    const secrets = [pull('team-a', 'pa'), pull('team-b', 'pb')];
    const input = {
      registry,
      adminPassword: 'a',
      pullSecrets: secrets,
      pushSecrets: [],
      owners: [],
      namespaceLabels: () => ({}),
      now: t0,
      hashCache,
    };
    const first = buildCredentialStore(input);
    expect(buildCredentialStore(input)).toEqual(first);
    expect(hashCache.has(secrets[0] as (typeof secrets)[number])).toBe(true);
    const rotated = buildCredentialStore({
      ...input,
      pullSecrets: [pull('team-a', 'pa2'), secrets[1] as (typeof secrets)[number]],
    });
    expect(rotated.credentials.find((c) => c.username === 'pull.team-a')?.secretHash).toBe(hashSecret('pa2'));
    expect(rotated.credentials.find((c) => c.username === 'pull.team-b')?.secretHash).toBe(hashSecret('pb'));
  });
});

describe('buildCredentialStore with ServiceAccounts', () => {
  const base = {
    registry,
    adminPassword: 'admin-secret',
    pullSecrets: [],
    pushSecrets: [],
    namespaceLabels: () => ({}),
    now: t0,
  };

  it('adds the grants of the ServiceAccounts Repositories name, which the token service reads back', () => {
    const web: Repository = {
      metadata: { namespace: 'team-a', name: 'web' },
      spec: { registryRef: { name: 'main' }, push: { serviceAccounts: [{ name: 'ci' }] } },
    };
    const store = buildCredentialStore({ ...base, owners: [web] });
    expect(store.serviceAccounts).toEqual([
      {
        namespace: 'team-a',
        name: 'ci',
        grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
      },
    ]);
    const read = parseCredentialStoreText(serializeCredentialStore(store));
    expect(read.success && read.skipped).toEqual([]);
  });

  it('writes no serviceAccounts key when none is named (the store stays as older berths wrote it)', () =>
    expect('serviceAccounts' in buildCredentialStore({ ...base, owners: [repo('team-a', 'web')] })).toBe(
      false,
    ));
});
