import { describe, expect, it } from '@jest/globals';
import type { Repository } from '../api/index.ts';
import { pathInNamespace, registryKeyOf, repositoryPath, resolveClaims } from './claims.ts';

const repo = (ns: string, name: string, created: string, path?: string, deleting = false): Repository => ({
  metadata: {
    namespace: ns,
    name,
    creationTimestamp: created as unknown as Date,
    ...(deleting ? { deletionTimestamp: '2026-01-02T00:00:00Z' as unknown as Date } : {}),
  },
  spec: { registryRef: { name: 'main', namespace: 'registry-system' }, ...(path ? { path } : {}) },
});

describe('repositoryPath and registryKeyOf', () => {
  it('defaults the path to namespace/name', () =>
    expect(repositoryPath(repo('team-a', 'web', 'x'))).toBe('team-a/web'));
  it('takes spec.path', () =>
    expect(repositoryPath(repo('team-a', 'web', 'x', 'team-a/apps/web'))).toBe('team-a/apps/web'));
  it('defaults the registry namespace to the Repository’s', () =>
    expect(
      registryKeyOf({ metadata: { namespace: 'team-a' }, spec: { registryRef: { name: 'main' } } }),
    ).toBe('team-a/main'));
});

describe('pathInNamespace', () => {
  it.each([
    ['the default path', repo('team-a', 'web', 'x'), true],
    ['a deeper path', repo('team-a', 'web', 'x', 'team-a/apps/web'), true],
    ['another namespace', repo('team-b', 'web', 'x', 'team-a/web'), false],
    ['a namespace prefix that is not a folder', repo('team', 'web', 'x', 'team-a/web'), false],
    ['the bare namespace', repo('team-a', 'web', 'x', 'team-a'), false],
  ])('%s', (_name, r, want) => expect(pathInNamespace(r)).toBe(want));
});

describe('resolveClaims', () => {
  it('gives a path to the older claim and reports the younger one', () => {
    const older = repo('team-a', 'web', '2026-01-01T00:00:00Z', 'team-a/web');
    const younger = repo('team-a', 'web2', '2026-01-01T00:00:05Z', 'team-a/web');
    const { winners, conflicts } = resolveClaims([younger, older]);
    expect(winners.get('team-a/web')).toBe(older);
    expect(conflicts.get('team-a/web2')).toBe(older);
    expect(conflicts.has('team-a/web')).toBe(false);
  });
  it('breaks a tie of creation times by name', () => {
    const a = repo('team-a', 'a', '2026-01-01T00:00:00Z', 'team-a/x');
    const b = repo('team-a', 'b', '2026-01-01T00:00:00Z', 'team-a/x');
    expect(resolveClaims([b, a]).winners.get('team-a/x')).toBe(a);
  });
  it('lets a claim being deleted go', () => {
    const old = repo('team-a', 'web', '2026-01-01T00:00:00Z', 'team-a/web', true);
    const next = repo('team-a', 'web2', '2026-01-02T00:00:00Z', 'team-a/web');
    const { winners, conflicts } = resolveClaims([old, next]);
    expect(winners.get('team-a/web')).toBe(next);
    expect(conflicts.size).toBe(0);
  });
  it('gives nothing to a claim outside its namespace, however old (no admission policy)', () => {
    const rogue = repo('team-b', 'web', '2026-01-01T00:00:00Z', 'team-a/web');
    const rightful = repo('team-a', 'web', '2026-01-02T00:00:00Z');
    const { winners, conflicts } = resolveClaims([rogue, rightful]);
    expect(winners.get('team-a/web')).toBe(rightful);
    expect([...winners.values()]).not.toContain(rogue);
    expect(conflicts.size).toBe(0);
  });
  it('gives nothing to a path that is no repository name (a long default path)', () => {
    const long = repo('team-a', 'r'.repeat(253), '2026-01-01T00:00:00Z');
    expect(resolveClaims([long]).winners.size).toBe(0);
  });
  it('keeps distinct paths apart', () => {
    const { winners, conflicts } = resolveClaims([repo('a', 'x', '1'), repo('a', 'y', '2')]);
    expect([...winners.keys()].sort()).toEqual(['a/x', 'a/y']);
    expect(conflicts.size).toBe(0);
  });
});
