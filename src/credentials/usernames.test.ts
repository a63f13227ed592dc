import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { fitUsername, maxUsernameLength, pullUsername, pushUsername, usernamePattern } from './usernames.ts';

// Kubernetes names: a namespace is a DNS label (at most 63), a Repository a DNS subdomain (253).
const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const subdomain = fc
  .array(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/), { minLength: 1, maxLength: 6 })
  .map((parts) =>
    parts
      .join('.')
      .slice(0, 253)
      .replace(/[-.]+$/, ''),
  )
  .filter((s) => s.length > 0);

describe('usernames', () => {
  it.each([
    ['a short pull username as it always was', pullUsername('team-a'), 'pull.team-a'],
    ['a short push username as it always was', pushUsername('team-a', 'web'), 'push.team-a.web'],
    [
      'exactly 128 characters, unchanged',
      pushUsername('n'.repeat(63), 'r'.repeat(58)),
      `push.${'n'.repeat(63)}.${'r'.repeat(58)}`,
    ],
  ])('%s', (_name, got, want) => expect(got).toBe(want));

  it('shortens a push username over 128 characters, keeping a readable prefix', () => {
    const u = pushUsername('n'.repeat(63), 'r'.repeat(253));
    expect(u).toHaveLength(maxUsernameLength);
    expect(u).toMatch(usernamePattern);
    expect(u).toMatch(/^push\.n{63}\.r+_[0-9a-f]{16}$/);
    expect(pushUsername('n'.repeat(63), 'r'.repeat(253))).toBe(u); // deterministic
    expect(pushUsername('n'.repeat(63), `${'r'.repeat(252)}s`)).not.toBe(u);
  });

  it('makes anything at all a valid username', () => {
    for (const s of ['', '_', '-x', 'a:b', 'ü'.repeat(200), '\n'])
      expect(fitUsername(s)).toMatch(usernamePattern);
  });

  it('property: every Kubernetes namespace and Repository name gives a valid, deterministic username', () => {
    fc.assert(
      fc.property(label, subdomain, (ns, name) => {
        const u = pushUsername(ns, name);
        expect(u).toMatch(usernamePattern);
        expect(u.length).toBeLessThanOrEqual(maxUsernameLength);
        expect(pushUsername(ns, name)).toBe(u);
        expect(pullUsername(ns)).toMatch(usernamePattern);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: distinct (namespace, name) pairs never share a push username', () => {
    fc.assert(
      fc.property(label, subdomain, label, subdomain, (ns1, n1, ns2, n2) => {
        fc.pre(ns1 !== ns2 || n1 !== n2);
        expect(pushUsername(ns1, n1)).not.toBe(pushUsername(ns2, n2));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: any string gives a valid username', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: 'binary' }), (s) => {
        expect(fitUsername(s)).toMatch(usernamePattern);
      }),
      { numRuns: 2000 },
    );
  });
});
