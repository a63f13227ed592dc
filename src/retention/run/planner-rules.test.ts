// Table tests of the planner's per-manifest and per-tag decisions (ownReason, tagEntry); the whole
// planner is tested in planner.test.ts.
import { describe, expect, test } from '@jest/globals';
import type { InUse } from './model.ts';
import { ownReason, tagEntry, type ManifestFacts, type OwnReasonRules, type TagVerdict } from './planner.ts';

const H = 3_600_000;
const now = Date.parse('2025-06-01T12:00:00Z');
const ago = (hours: number) => now - hours * H;
const D = `sha256:${'1'.padStart(64, '0')}`;
const S = `sha256:${'2'.padStart(64, '0')}`;

const verdict = (tag: string, hoursAgo: number, over: Partial<TagVerdict> = {}): TagVerdict => ({
  tag: { tag, digest: D, pushedAt: ago(hoursAgo) },
  wantDelete: true,
  reason: 'number 3 by push time, beyond the 2 most recent',
  rule: 'ci',
  ...over,
});

const facts = (over: Partial<ManifestFacts> = {}): ManifestFacts => ({
  digest: D,
  pushedAt: ago(100),
  tags: [],
  orphanOf: undefined,
  hasParent: false,
  hasSubject: false,
  ...over,
});

const used: InUse = {
  digests: new Map([[`app@${D}`, 'default/Pod/web']]),
  tags: new Map([['app:main-1', 'default/Deployment/api']]),
};

const rules = (over: Partial<OwnReasonRules> = {}): OwnReasonRules => ({
  repository: 'app',
  inUse: undefined,
  minAgeMs: 0,
  untagged: { delete: true, olderThanMs: 24 * H },
  now,
  ...over,
});

describe('ownReason', () => {
  test.each<[string, ManifestFacts, OwnReasonRules, string | undefined]>([
    ['in use by digest', facts(), rules({ inUse: used }), 'in use by default/Pod/web'],
    [
      'in use by tag',
      facts({ digest: S, tags: [verdict('main-1', 100)] }),
      rules({ inUse: used }),
      'tag main-1 is in use by default/Deployment/api',
    ],
    ['in use, not consulted without protections', facts({ pushedAt: ago(100) }), rules(), undefined],
    [
      'a tag its rule keeps',
      facts({
        tags: [
          verdict('main-9', 100),
          verdict('v1.0.0', 100, {
            wantDelete: false,
            rule: 'releases',
            reason: 'the rule keeps all its tags',
          }),
        ],
      }),
      rules(),
      'tag v1.0.0 is kept (rule releases: the rule keeps all its tags)',
    ],
    [
      'a tag no rule matches',
      facts({
        tags: [
          verdict('other', 100, { wantDelete: false, rule: undefined, reason: 'no rule matches the tag' }),
        ],
      }),
      rules(),
      'tag other is kept (no rule matches the tag)',
    ],
    [
      'a tag within minAge',
      facts({ tags: [verdict('main-9', 2)] }),
      rules({ minAgeMs: 3 * H }),
      'tag main-9 was pushed 2h ago, within minAge 3h',
    ],
    [
      'a tag its rule deletes, past minAge',
      facts({ tags: [verdict('main-9', 4)] }),
      rules({ minAgeMs: 3 * H }),
      undefined,
    ],
    [
      'a signature whose subject is not here',
      facts({ tags: [verdict('sha256-x.sig', 100, { subject: S })], orphanOf: S }),
      rules(),
      `signature of ${S}, which is not in this repository`,
    ],
    [
      'an orphan signature tag on a referrer of a manifest here follows it',
      facts({ tags: [verdict('sha256-x.sig', 100, { subject: S })], orphanOf: S, hasSubject: true }),
      rules(),
      undefined,
    ],
    [
      'untagged within minAge',
      facts({ pushedAt: ago(1) }),
      rules({ minAgeMs: 2 * H }),
      'stored 1h ago, within minAge 2h',
    ],
    ['untagged, listed by an index: follows it', facts({ hasParent: true }), rules(), undefined],
    ['untagged, a referrer: follows its subject', facts({ hasSubject: true }), rules(), undefined],
    [
      'untagged, untagged.delete false',
      facts(),
      rules({ untagged: { delete: false, olderThanMs: 0 } }),
      'untagged manifests are kept (untagged.delete is false)',
    ],
    [
      'untagged, not old enough',
      facts({ pushedAt: ago(5) }),
      rules(),
      'untagged, stored 5h ago, not older than 24h',
    ],
    ['untagged and old: deleted', facts({ pushedAt: ago(25) }), rules(), undefined],
  ])('%s', (_what, f, r, expected) => {
    const reason = ownReason(f, r);
    if (expected === undefined) expect(reason).toBeUndefined();
    else expect(reason).toBe(expected);
  });
});

describe('tagEntry', () => {
  const base = { repository: 'app', digest: D };
  test.each<[string, TagVerdict, string | undefined, object]>([
    [
      'a signature tag, its manifest kept',
      verdict('sha256-x.sig', 1, { subject: S, rule: undefined, reason: '' }),
      'in use by p',
      { ...base, tag: 'sha256-x.sig', decision: 'keep', reason: 'in use by p' },
    ],
    [
      'a signature tag, its manifest deleted',
      verdict('sha256-x.sig', 1, { subject: S, rule: undefined, reason: '' }),
      undefined,
      { ...base, tag: 'sha256-x.sig', decision: 'delete', reason: `signature of ${S}, which is deleted` },
    ],
    [
      'a tag its rule keeps',
      verdict('v1', 1, { wantDelete: false, rule: 'releases', reason: 'the rule keeps all its tags' }),
      'whatever',
      { ...base, tag: 'v1', rule: 'releases', decision: 'keep', reason: 'the rule keeps all its tags' },
    ],
    [
      'a tag its rule deletes, its manifest kept',
      verdict('main-3', 1),
      'tag main-1 is kept (rule ci: number 1 of the 2 most recent)',
      {
        ...base,
        tag: 'main-3',
        rule: 'ci',
        decision: 'keep',
        reason:
          'number 3 by push time, beyond the 2 most recent; kept: tag main-1 is kept (rule ci: number 1 of the 2 most recent)',
      },
    ],
    [
      'a tag its rule deletes',
      verdict('main-3', 1),
      undefined,
      {
        ...base,
        tag: 'main-3',
        rule: 'ci',
        decision: 'delete',
        reason: 'number 3 by push time, beyond the 2 most recent',
      },
    ],
  ])('%s', (_what, v, why, expected) => {
    expect(tagEntry('app', v, why)).toStrictEqual(expected);
  });
});
