import { describe, expect, test } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import {
  claimsFirst,
  decideIngressHost,
  hostClaimants,
  matchesHostPattern,
  parseHostPatterns,
  registryHosts,
  type IngressHostVerdict,
  type RegistryHosts,
} from './hosts.ts';

const reg = (ns: string, name: string, created: string | undefined, ingress?: string): RegistryHosts =>
  registryHosts({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name, namespace: ns, ...(created ? { creationTimestamp: created as unknown as Date } : {}) },
    spec: { storage: { emptyDir: {} }, ...(ingress ? { expose: { ingress: { host: ingress } } } : {}) },
  } as Registry);

const t0 = '2026-01-01T00:00:00Z';
const t1 = '2026-01-02T00:00:00Z';

describe('registryHosts', () => {
  test('the Service names and the lower-cased Ingress host', () => {
    expect(reg('ns', 'main', t0, 'Registry.Example.com')).toEqual({
      key: 'ns/main',
      created: t0,
      service: ['main.ns.svc', 'main.ns.svc.cluster.local'],
      ingress: 'registry.example.com',
    });
  });
});

describe('claimsFirst', () => {
  test.each<[string, RegistryHosts, RegistryHosts, boolean]>([
    ['older wins', reg('b', 'x', t0), reg('a', 'x', t1), true],
    ['younger loses', reg('a', 'x', t1), reg('b', 'x', t0), false],
    ['same second: namespace/name decides', reg('a', 'x', t0), reg('b', 'x', t0), true],
    ['same second, other way round', reg('b', 'x', t0), reg('a', 'x', t0), false],
    ['no timestamp sorts last', reg('a', 'x', undefined), reg('b', 'x', t1), false],
  ])('%s', (_n, a, b, want) => {
    expect(claimsFirst(a, b)).toBe(want);
  });
});

describe('matchesHostPattern', () => {
  test.each<[string, string, boolean]>([
    ['registry.example.com', '*', true],
    ['registry.example.com', 'registry.example.com', true],
    ['REGISTRY.example.com', 'registry.example.com', true],
    ['registry.example.com', '*.example.com', true],
    ['a.b.example.com', '*.example.com', true],
    ['example.com', '*.example.com', false],
    ['evilexample.com', '*.example.com', false],
    ['registry.example.org', '*.example.com', false],
  ])('%s ~ %s', (host, pattern, want) => {
    expect(matchesHostPattern(host, pattern)).toBe(want);
  });
});

describe('decideIngressHost', () => {
  const own = reg('platform', 'main', t1, 'registry.example.com');
  const cases: [string, RegistryHosts, RegistryHosts[], string[] | undefined, Partial<IngressHostVerdict>][] =
    [
      ['no Ingress: nothing to decide', reg('platform', 'main', t0), [], undefined, { kind: 'none' }],
      ['the only claim: its own, on the nodes too', own, [own], undefined, { kind: 'own', nodes: true }],
      [
        'an older Registry has the host: conflict naming it',
        own,
        [own, reg('other', 'first', t0, 'registry.example.com')],
        undefined,
        { kind: 'conflict', reason: 'HostConflict', with: 'other/first' },
      ],
      [
        'a younger Registry has the host: still its own',
        reg('platform', 'main', t0, 'registry.example.com'),
        [reg('other', 'second', t1, 'registry.example.com')],
        undefined,
        { kind: 'own', nodes: true },
      ],
      [
        'same creation time: the smaller namespace/name wins',
        reg('b', 'main', t0, 'registry.example.com'),
        [reg('a', 'main', t0, 'registry.example.com')],
        undefined,
        { kind: 'conflict', with: 'a/main' },
      ],
      [
        'the oldest of several claimants is named',
        own,
        [
          reg('x', 'mid', '2026-01-01T12:00:00Z', 'registry.example.com'),
          reg('y', 'oldest', t0, 'registry.example.com'),
        ],
        undefined,
        { kind: 'conflict', with: 'y/oldest' },
      ],
      [
        "another Registry's Service name: conflict, whatever the age",
        reg('platform', 'main', t0, 'main.team-a.svc'),
        [reg('team-a', 'main', t1)],
        undefined,
        { kind: 'conflict', with: 'team-a/main' },
      ],
      [
        'a cluster Service name that is no Registry: not on the nodes',
        reg('platform', 'main', t0, 'kubernetes.default.svc.cluster.local'),
        [],
        undefined,
        { kind: 'own', nodes: false, reason: 'HostNotAllowed' },
      ],
      [
        'registry.k8s.io: never on the nodes',
        reg('platform', 'main', t0, 'registry.k8s.io'),
        [],
        undefined,
        { kind: 'own', nodes: false, reason: 'HostNotAllowed' },
      ],
      [
        'docker.io: never on the nodes',
        reg('platform', 'main', t0, 'docker.io'),
        [],
        undefined,
        { kind: 'own', nodes: false, reason: 'HostNotAllowed' },
      ],
      [
        'a region of a public registry (*.pkg.dev)',
        reg('platform', 'main', t0, 'europe-docker.pkg.dev'),
        [],
        undefined,
        { kind: 'own', nodes: false, reason: 'HostNotAllowed' },
      ],
      [
        'public hosts lose even with an allow-all policy',
        reg('platform', 'main', t0, 'ghcr.io'),
        [],
        ['*'],
        { kind: 'own', nodes: false },
      ],
      [
        'outside the install allow-list',
        reg('platform', 'main', t0, 'registry.example.org'),
        [],
        ['*.example.com'],
        { kind: 'own', nodes: false, reason: 'HostNotAllowed' },
      ],
      [
        'inside the install allow-list',
        reg('platform', 'main', t0, 'registry.example.com'),
        [],
        ['*.example.com'],
        { kind: 'own', nodes: true },
      ],
      [
        'an empty allow-list: no external host on the nodes',
        reg('platform', 'main', t0, 'registry.example.com'),
        [],
        [],
        { kind: 'own', nodes: false, reason: 'HostNotAllowed' },
      ],
    ];
  test.each(cases)('%s', (_name, self, all, allowedHosts, want) => {
    const got = decideIngressHost(self, all, allowedHosts ? { allowedHosts } : undefined);
    expect(got).toMatchObject(want);
    if (got.kind === 'conflict') expect(got.message).toContain(got.with);
    if (got.kind === 'own' && !got.nodes) expect(got.message).toContain(got.host);
  });
});

describe('parseHostPatterns', () => {
  test('host names, *.domain and * are patterns; anything else is reported', () => {
    expect(parseHostPatterns('*.Example.com, registry.example.org,*, *,bad host,a/b,**.x')).toEqual({
      patterns: ['*.example.com', 'registry.example.org', '*'],
      invalid: ['bad host', 'a/b', '**.x'],
    });
  });
});

describe('hostClaimants', () => {
  const obj = (ns: string, name: string, ingress?: string, readyReason?: string) => ({
    metadata: { name, namespace: ns },
    spec: { storage: { emptyDir: {} }, ...(ingress ? { expose: { ingress: { host: ingress } } } : {}) },
    ...(readyReason ? { status: { conditions: [{ type: 'Ready', reason: readyReason }] } } : {}),
  });
  test.each<[string, ReturnType<typeof obj>, ReturnType<typeof obj>[], string[]]>([
    [
      'the others with the same Ingress host',
      obj('a', 'one', 'r.example.com'),
      [
        obj('a', 'one', 'r.example.com'),
        obj('b', 'two', 'R.example.com'),
        obj('c', 'three', 'x.example.com'),
      ],
      ['b/two'],
    ],
    [
      'one whose Ingress host is the changed Registry’s Service name',
      obj('a', 'one'),
      [obj('b', 'two', 'one.a.svc'), obj('c', 'three')],
      ['b/two'],
    ],
    [
      'every Registry waiting in HostConflict, even when the changed one has no host any more',
      obj('a', 'one'),
      [obj('b', 'two', 'r.example.com', 'HostConflict'), obj('c', 'three', 'x.example.com', 'Available')],
      ['b/two'],
    ],
    ['nothing else', obj('a', 'one', 'r.example.com'), [obj('c', 'three', 'x.example.com')], []],
  ])('%s', (_n, changed, all, want) => {
    expect(hostClaimants(all, changed)).toEqual(want);
  });
});
