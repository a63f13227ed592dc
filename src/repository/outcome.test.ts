import { describe, expect, test } from '@jest/globals';
import type { Repository } from '../api/index.ts';
import { credentialLabels, labels, repositoryLabelValue } from '../model/credential-secret.ts';
import { isOwnPushSecret, refuseClaim, type ClaimFacts } from './outcome.ts';

const older = { metadata: { name: 'first', namespace: 'team-a' } } as Repository;

const facts = (over: Partial<ClaimFacts>): ClaimFacts => ({
  namespace: 'team-a',
  path: 'team-a/web',
  registryKey: 'registry-system/main',
  inNamespace: true,
  validPath: true,
  registryFound: true,
  holder: () => undefined,
  keyOf: (r) => `${r.metadata?.namespace}/${r.metadata?.name}`,
  ...over,
});

describe('refuseClaim: whether a Repository may claim its path', () => {
  const long = `team-a/${'x'.repeat(300)}`;
  test.each([
    ['a claim of its own', facts({}), undefined],
    [
      'a path outside its namespace',
      facts({ path: 'team-b/web', inNamespace: false }),
      {
        ready: false,
        dropPushSecrets: true,
        reason: 'PathOutsideNamespace',
        message:
          'spec.path "team-b/web" must start with "team-a/": a Repository claims paths under its own namespace only',
      },
    ],
    [
      'outside its namespace wins over every other problem',
      facts({ inNamespace: false, validPath: false, registryFound: false, holder: () => older }),
      expect.objectContaining({ reason: 'PathOutsideNamespace' }),
    ],
    [
      'a path too long to be a repository name is shortened in the message',
      facts({ path: long, validPath: false }),
      {
        ready: false,
        dropPushSecrets: true,
        reason: 'InvalidPath',
        message: `the path ${long.slice(0, 80)}… (307 characters) is not a registry repository name (at most 255 characters of lowercase components); set a shorter spec.path`,
      },
    ],
    [
      'an invalid short path is shown whole',
      facts({ path: 'team-a/Web', validPath: false }),
      expect.objectContaining({
        reason: 'InvalidPath',
        message: expect.stringContaining('the path team-a/Web (10 characters)'),
      }),
    ],
    [
      'a Registry that does not exist keeps the push Secrets',
      facts({ registryFound: false, holder: () => older }),
      {
        ready: false,
        dropPushSecrets: false,
        waiting: true,
        reason: 'RegistryNotFound',
        message: 'Registry registry-system/main does not exist (spec.registryRef)',
      },
    ],
    [
      'an older Repository holds the path',
      facts({ holder: () => older }),
      {
        ready: false,
        dropPushSecrets: true,
        reason: 'PathConflict',
        message:
          'path team-a/web in Registry registry-system/main is claimed by the older Repository team-a/first',
      },
    ],
  ])('%s', (_name, f, want) => {
    expect(refuseClaim(f)).toEqual(want);
  });

  test('the holder is not looked up when an earlier check refuses', () => {
    let asked = 0;
    refuseClaim(facts({ registryFound: false, holder: () => (asked++, undefined) }));
    expect(asked).toBe(0);
  });
});

describe("isOwnPushSecret: berth's push Secret of this Repository", () => {
  const reg = { name: 'main', namespace: 'registry-system' };
  const secret = (l: Record<string, string>) => ({ metadata: { name: 's', namespace: 'team-a', labels: l } });
  const longName = 'r'.repeat(100);
  test.each([
    ['its own', secret({ ...credentialLabels('push', reg), [labels.repository]: 'web' }), 'web', true],
    [
      'its own, under a shortened name label',
      secret({ ...credentialLabels('push', reg), [labels.repository]: repositoryLabelValue(longName) }),
      longName,
      true,
    ],
    [
      "another Repository's",
      secret({ ...credentialLabels('push', reg), [labels.repository]: 'api' }),
      'web',
      false,
    ],
    ['a pull Secret', secret({ ...credentialLabels('pull', reg), [labels.repository]: 'web' }), 'web', false],
    [
      "another Registry's",
      secret({ ...credentialLabels('push', { ...reg, name: 'other' }), [labels.repository]: 'web' }),
      'web',
      false,
    ],
    ['a foreign Secret', secret({}), 'web', false],
  ])('%s', (_name, s, name, want) => {
    expect(isOwnPushSecret(s, reg, name)).toBe(want);
  });
});
