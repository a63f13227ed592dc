import { describe, expect, it } from '@jest/globals';
import type { Registry, Repository } from '../api/index.ts';
import { defaultServiceAccountAudience, pullablePaths, serviceAccountGrants } from './grants.ts';

const repo = (ns: string, name: string, pull?: Repository['spec']['pull']): Repository => ({
  metadata: { namespace: ns, name },
  spec: { registryRef: { name: 'main' }, ...(pull ? { pull } : {}) },
});

const repos = [
  repo('team-a', 'web'),
  repo('team-a', 'api', { namespaces: ['team-a-staging'] }),
  repo('team-b', 'web'),
  repo('team-c', 'base', { namespaceSelector: { matchLabels: { tier: 'prod' } } }),
  repo('team-d', 'public', { namespaceSelector: {} }),
];

describe('pullablePaths', () => {
  it.each([
    { ns: 'team-a', labels: {}, want: ['team-a/api', 'team-a/web', 'team-d/public'] },
    { ns: 'team-a-staging', labels: {}, want: ['team-a/api', 'team-d/public'] },
    { ns: 'team-b', labels: { tier: 'prod' }, want: ['team-b/web', 'team-c/base', 'team-d/public'] },
    { ns: 'elsewhere', labels: {}, want: ['team-d/public'] },
  ])('$ns', ({ ns, labels, want }) =>
    expect(pullablePaths(ns, labels as Record<string, string>, repos)).toEqual(want),
  );

  it('grants nothing for a Repository whose path is outside its namespace', () => {
    const rogue: Repository = {
      metadata: { namespace: 'team-b', name: 'steal' },
      spec: { registryRef: { name: 'main' }, path: 'team-a/web', pull: { namespaceSelector: {} } },
    };
    expect(pullablePaths('team-b', {}, [rogue])).toEqual([]);
    expect(pullablePaths('team-a', {}, [rogue])).toEqual([]);
  });

  it('grants nothing without Repositories', () => expect(pullablePaths('team-a', {}, [])).toEqual([]));
});

describe('serviceAccountGrants', () => {
  const registry = (enabled?: boolean): Registry =>
    ({
      metadata: { namespace: 'registry-system', name: 'main' },
      spec: enabled === undefined ? {} : { auth: { serviceAccountTokens: { enabled } } },
    }) as Registry;
  const withAccounts = (
    ns: string,
    name: string,
    spec: Pick<Repository['spec'], 'push' | 'pull'>,
    path?: string,
  ): Repository => ({
    metadata: { namespace: ns, name },
    spec: { registryRef: { name: 'main' }, ...(path ? { path } : {}), ...spec },
  });
  const owners = [
    withAccounts('team-a', 'web', {
      push: { serviceAccounts: [{ name: 'ci' }, { namespace: 'team-a', name: 'release' }] },
      pull: { serviceAccounts: [{ namespace: 'team-b', name: 'deploy' }, { name: 'ci' }] },
    }),
    withAccounts('team-a', 'api', { push: { secretName: 'api-push', serviceAccounts: [{ name: 'ci' }] } }),
    // push to another namespace's ServiceAccount: refused at admission, granted nothing here
    withAccounts('team-c', 'lib', {
      push: { serviceAccounts: [{ namespace: 'team-b', name: 'deploy' }] },
      pull: { serviceAccounts: [{ namespace: 'team-b', name: 'deploy' }] },
    }),
    // a path outside its namespace grants nothing
    withAccounts('team-d', 'steal', { push: { serviceAccounts: [{ name: 'ci' }] } }, 'team-a/web'),
  ];

  it('gives push and pull on the path to own ServiceAccounts, pull to any, merged per ServiceAccount', () =>
    expect(serviceAccountGrants(registry(), owners)).toEqual([
      {
        namespace: 'team-a',
        name: 'ci',
        grants: [{ repositories: ['team-a/api', 'team-a/web'], actions: ['pull', 'push'] }],
      },
      {
        namespace: 'team-a',
        name: 'release',
        grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
      },
      {
        namespace: 'team-b',
        name: 'deploy',
        grants: [{ repositories: ['team-a/web', 'team-c/lib'], actions: ['pull'] }],
      },
    ]));

  it('gives nothing when the Registry takes no ServiceAccount tokens', () =>
    expect(serviceAccountGrants(registry(false), owners)).toEqual([]));

  it('gives nothing without ServiceAccounts named', () =>
    expect(serviceAccountGrants(registry(true), repos)).toEqual([]));
});

it('defaults the ServiceAccount token audience to berth.dev/<namespace>/<name>', () =>
  expect(defaultServiceAccountAudience({ namespace: 'registry-system', name: 'main' })).toBe(
    'berth.dev/registry-system/main',
  ));
