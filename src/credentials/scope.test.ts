import { describe, expect, it } from '@jest/globals';
import { decideAccess, grantedActions, parseScope, parseScopes, type Principal } from './scope.ts';
import { isRepositoryName } from './repository-name.ts';
import { compileCredentialStore, type CredentialEntry } from './store.ts';

const hash = `sha256:${'0'.repeat(64)}`;
const entries: CredentialEntry[] = [
  { username: 'admin', secretHash: hash, grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true },
  { username: 'team', secretHash: hash, grants: [{ repositories: ['team-a/*'], actions: ['pull'] }] },
  { username: 'deep', secretHash: hash, grants: [{ repositories: ['team-a/**'], actions: ['pull'] }] },
  {
    username: 'pusher',
    secretHash: hash,
    grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
  },
  {
    username: 'mixed',
    secretHash: hash,
    grants: [
      { repositories: ['team-a/web', 'team-a/api'], actions: ['pull'] },
      { repositories: ['team-a/web'], actions: ['push', 'delete'] },
    ],
  },
];
const store = compileCredentialStore({ version: 1, anonymousPull: false, credentials: entries });
function who(name: string): Principal {
  const e = store.byUsername.get(name)?.[0];
  if (!e) throw new Error(name);
  return { kind: 'credential', entry: e };
}
const anonymous: Principal = { kind: 'anonymous', anonymousPull: false };
const anonymousPull: Principal = { kind: 'anonymous', anonymousPull: true };

describe('parseScope', () => {
  it.each([
    [
      'repository:team-a/web:pull,push',
      { type: 'repository', name: 'team-a/web', actions: ['pull', 'push'] },
    ],
    ['repository:team-a/web:pull,pull', { type: 'repository', name: 'team-a/web', actions: ['pull'] }],
    ['registry:catalog:*', { type: 'registry', name: 'catalog', actions: ['*'] }],
    [
      'repository(plugin):vendor/x:pull',
      { type: 'repository', class: 'plugin', name: 'vendor/x', actions: ['pull'] },
    ],
    ['repository:host:5000/x:pull', { type: 'repository', name: 'host:5000/x', actions: ['pull'] }],
    ['repository:team-a/web', undefined],
    ['repository::pull', undefined],
    ['', undefined],
    ['repository:x:PULL', undefined],
  ])('%s', (text, expected) => {
    expect(parseScope(text)).toEqual(expected);
  });

  it('splits repeated and space-separated scope parameters', () => {
    expect(parseScopes(['repository:a:pull registry:catalog:*', 'bogus', ''])).toEqual({
      scopes: [
        { type: 'repository', name: 'a', actions: ['pull'] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
      ],
      invalid: ['bogus'],
    });
  });
});

describe('isRepositoryName', () => {
  it.each([
    ['team-a/web', true],
    ['a', true],
    ['a/b/c.d_e__f', true],
    ['Team/web', false],
    ['team-a/', false],
    ['../etc', false],
    ['a//b', false],
    ['-a', false],
    ['x'.repeat(256), false],
  ])('%s → %s', (name, expected) => {
    expect(isRepositoryName(name)).toBe(expected);
  });
});

describe('grantedActions', () => {
  it.each<[string, Principal, string, string[]]>([
    ['admin pushes anywhere', who('admin'), 'repository:team-b/x:pull,push', ['pull', 'push']],
    ['admin deletes', who('admin'), 'repository:x:delete', ['delete']],
    ['admin gets * when asking *', who('admin'), 'repository:x:*', ['*']],
    ['admin lists the catalog', who('admin'), 'registry:catalog:*', ['*']],
    ['team pulls one level below team-a', who('team'), 'repository:team-a/web:pull', ['pull']],
    ['team cannot push', who('team'), 'repository:team-a/web:pull,push', ['pull']],
    ['team * does not reach two levels', who('team'), 'repository:team-a/x/y:pull', []],
    ['team cannot pull team-a itself', who('team'), 'repository:team-a:pull', []],
    ['team cannot pull team-b', who('team'), 'repository:team-b/web:pull', []],
    ['team cannot pull a look-alike prefix', who('team'), 'repository:team-ab/web:pull', []],
    ['team cannot list the catalog', who('team'), 'registry:catalog:*', []],
    ['deep ** reaches any depth', who('deep'), 'repository:team-a/x/y/z:pull', ['pull']],
    ['pusher pushes its path', who('pusher'), 'repository:team-a/web:pull,push', ['pull', 'push']],
    ['pusher cannot delete', who('pusher'), 'repository:team-a/web:delete', []],
    ['pusher denied elsewhere', who('pusher'), 'repository:team-a/api:pull,push', []],
    [
      'grants are unioned',
      who('mixed'),
      'repository:team-a/web:pull,push,delete',
      ['pull', 'push', 'delete'],
    ],
    ['union stays per path', who('mixed'), 'repository:team-a/api:pull,push', ['pull']],
    ['* is not granted from concrete actions', who('mixed'), 'repository:team-a/web:*', []],
    ['an invalid repository name gets nothing', who('admin'), 'repository:Team/X:pull', []],
    ['an unknown resource type gets nothing', who('admin'), 'plugin:x:pull', []],
    ['anonymous without anonymousPull', anonymous, 'repository:team-a/web:pull', []],
    ['anonymous pull when allowed', anonymousPull, 'repository:team-a/web:pull,push', ['pull']],
    ['anonymous never lists the catalog', anonymousPull, 'registry:catalog:*', []],
  ])('%s', (_name, principal, scope, expected) => {
    const s = parseScope(scope);
    if (!s) throw new Error(`bad scope ${scope}`);
    expect(grantedActions(principal, s)).toEqual(expected);
  });
});

describe('decideAccess', () => {
  it('merges repeated resources, keeps only granted actions and lists the refusals', () => {
    const { scopes } = parseScopes([
      'repository:team-a/web:pull',
      'repository:team-a/web:push',
      'repository:team-b/web:pull',
      'repository(plugin):team-a/web:pull',
    ]);
    expect(decideAccess(who('team'), scopes)).toEqual({
      access: [
        { type: 'repository', name: 'team-a/web', actions: ['pull'] },
        { type: 'repository', class: 'plugin', name: 'team-a/web', actions: ['pull'] },
      ],
      refused: [
        { scope: 'repository:team-a/web', actions: ['push'] },
        { scope: 'repository:team-b/web', actions: ['pull'] },
      ],
    });
  });

  it('grants nothing for no scopes', () => {
    expect(decideAccess(who('admin'), [])).toEqual({ access: [], refused: [] });
  });
});
