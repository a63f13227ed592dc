import { describe, expect, test } from '@jest/globals';
import type { InUse, ManifestState, PlannerPolicy, RepositoryState, TagState } from './model.ts';
import { circuitBreaker, followerSubject, planRetention } from './planner.ts';

const H = 3_600_000;
const now = Date.parse('2025-06-01T12:00:00Z');
const ago = (hours: number) => now - hours * H;
const dg = (n: number | string) => `sha256:${String(n).padStart(64, '0')}`;
const sigTag = (digest: string, kind = 'sig') => `${digest.replace(':', '-')}.${kind}`;

function repo(
  name: string,
  tags: [tag: string, digest: string, pushedHoursAgo: number][],
  extra: Partial<ManifestState & { hoursAgo: number }>[] = [],
): RepositoryState {
  const tagStates: TagState[] = tags.map(([tag, digest, h]) => ({ tag, digest, pushedAt: ago(h) }));
  const manifests = new Map<string, ManifestState>();
  for (const t of tagStates)
    if (!manifests.has(t.digest))
      manifests.set(t.digest, {
        digest: t.digest,
        mediaType: 'oci-manifest',
        children: [],
        pushedAt: t.pushedAt,
      });
  for (const e of extra) {
    const prev = manifests.get(e.digest ?? '');
    const m: ManifestState = {
      digest: e.digest ?? '',
      mediaType: e.mediaType ?? prev?.mediaType ?? 'oci-manifest',
      children: e.children ?? prev?.children ?? [],
      pushedAt: e.hoursAgo !== undefined ? ago(e.hoursAgo) : (prev?.pushedAt ?? ago(1000)),
    };
    if (e.subject) m.subject = e.subject;
    manifests.set(m.digest, m);
  }
  return { name, tags: tagStates, manifests: [...manifests.values()] };
}

function policy(over: Partial<PlannerPolicy> = {}): PlannerPolicy {
  return {
    rules: [
      { name: 'releases', include: ['v*.*.*'], exclude: [], keep: { all: true } },
      { name: 'ci', include: ['main-*', 'pr-*'], exclude: [], keep: { mostRecent: 2 } },
    ],
    untagged: { delete: false, olderThanMs: 24 * H },
    protect: { inUse: true, minAgeMs: 0 },
    ...over,
  };
}

const noUse: InUse = { digests: new Map(), tags: new Map() };

type Decisions = Record<string, string>;
/** `repo:tag` or `repo@digest` (untagged) → decision, for compact expectations. */
function decisions(p: ReturnType<typeof planRetention>): Decisions {
  return Object.fromEntries(
    p.entries.map((e) => [e.tag ? `${e.repository}:${e.tag}` : `${e.repository}@${e.digest}`, e.decision]),
  );
}

interface Case {
  name: string;
  repos: RepositoryState[];
  policy?: PlannerPolicy;
  inUse?: InUse;
  expect: Decisions;
  deletions?: { digest: string; after: string[] }[];
  counts?: Partial<{ evaluated: number; deleted: number; kept: number; protected: number }>;
  reasons?: Record<string, RegExp>;
}

const cases: Case[] = [
  {
    name: 'rule order: the first matching rule owns a tag (v1.0.0-pr is not a release, main-* owns it)',
    policy: policy({
      rules: [
        { name: 'ci', include: ['main-*'], exclude: [], keep: { mostRecent: 0 } },
        { name: 'all', include: ['*'], exclude: [], keep: { all: true } },
      ],
    }),
    repos: [
      repo('a/app', [
        ['main-1', dg(1), 10],
        ['latest', dg(2), 10],
      ]),
    ],
    expect: { 'a/app:main-1': 'delete', 'a/app:latest': 'keep' },
    reasons: { 'a/app:latest': /rule keeps all/ },
  },
  {
    name: 'exclude globs hand a tag on to the next rule',
    policy: policy({
      rules: [
        { name: 'ci', include: ['main-*'], exclude: ['main-keep*'], keep: { mostRecent: 0 } },
        { name: 'rest', include: ['*'], exclude: [], keep: { all: true } },
      ],
    }),
    repos: [
      repo('a/app', [
        ['main-1', dg(1), 10],
        ['main-keep', dg(2), 10],
      ]),
    ],
    expect: { 'a/app:main-1': 'delete', 'a/app:main-keep': 'keep' },
  },
  {
    name: 'tags no rule matches are kept',
    repos: [
      repo('a/app', [
        ['feature-x', dg(1), 5000],
        ['main-1', dg(2), 30],
        ['main-2', dg(3), 20],
        ['main-3', dg(4), 10],
      ]),
    ],
    expect: {
      'a/app:feature-x': 'keep',
      'a/app:main-1': 'delete',
      'a/app:main-2': 'keep',
      'a/app:main-3': 'keep',
    },
    reasons: { 'a/app:feature-x': /no rule matches/, 'a/app:main-1': /beyond the 2 most recent/ },
    counts: { evaluated: 4, deleted: 1, kept: 3, protected: 0 },
  },
  {
    name: 'mostRecent counts per repository, newest first by push time (not by name)',
    repos: [
      repo('a/one', [
        ['main-9', dg(1), 30],
        ['main-1', dg(2), 10],
        ['main-5', dg(3), 20],
      ]),
      repo('a/two', [
        ['main-a', dg(11), 300],
        ['main-b', dg(12), 200],
      ]),
    ],
    expect: {
      'a/one:main-9': 'delete',
      'a/one:main-1': 'keep',
      'a/one:main-5': 'keep',
      'a/two:main-a': 'keep',
      'a/two:main-b': 'keep',
    },
  },
  {
    name: 'mostRecent counts over the tags the rule owns only (releases do not take slots)',
    repos: [
      repo('a/app', [
        ['v1.0.0', dg(1), 1],
        ['v1.1.0', dg(2), 2],
        ['pr-1', dg(3), 30],
        ['pr-2', dg(4), 20],
        ['main-1', dg(5), 10],
      ]),
    ],
    expect: {
      'a/app:v1.0.0': 'keep',
      'a/app:v1.1.0': 'keep',
      'a/app:pr-1': 'delete',
      'a/app:pr-2': 'keep',
      'a/app:main-1': 'keep',
    },
  },
  {
    name: 'pushedWithin and mostRecent are OR-ed',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 1, pushedWithinMs: 48 * H } }],
    }),
    repos: [
      repo('a/app', [
        ['t1', dg(1), 1],
        ['t2', dg(2), 24],
        ['t3', dg(3), 49],
        ['t4', dg(4), 100],
      ]),
    ],
    expect: { 'a/app:t1': 'keep', 'a/app:t2': 'keep', 'a/app:t3': 'delete', 'a/app:t4': 'delete' },
    reasons: { 'a/app:t2': /within 48h/, 'a/app:t3': /not within 48h/ },
  },
  {
    name: 'two tags on one digest, one kept: the digest stays and so does the other tag',
    repos: [
      repo('a/app', [
        ['v1.0.0', dg(1), 100],
        ['main-1', dg(1), 100],
        ['main-2', dg(2), 50],
        ['main-3', dg(3), 40],
      ]),
    ],
    expect: {
      'a/app:v1.0.0': 'keep',
      'a/app:main-1': 'keep',
      'a/app:main-2': 'keep',
      'a/app:main-3': 'keep',
    },
    reasons: { 'a/app:main-1': /beyond the 2 most recent; kept: tag v1\.0\.0 is kept/ },
    deletions: [],
    counts: { kept: 4, protected: 0 },
  },
  {
    name: 'two tags on one digest, both to delete: one deletion of the digest with both tags',
    policy: policy({ rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 1 } }] }),
    repos: [
      repo('a/app', [
        ['new', dg(9), 1],
        ['old-a', dg(1), 100],
        ['old-b', dg(1), 90],
      ]),
    ],
    expect: { 'a/app:new': 'keep', 'a/app:old-a': 'delete', 'a/app:old-b': 'delete' },
    deletions: [{ digest: dg(1), after: [] }],
  },
  {
    name: 'a multi-arch index and its children are one unit: deleted together, index first',
    policy: policy({ rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 1 } }] }),
    repos: [
      repo(
        'a/multi',
        [
          ['new', dg(9), 1],
          ['old', dg('a0'), 100],
        ],
        [
          { digest: dg('a0'), mediaType: 'oci-index', children: [dg('a1'), dg('a2')] },
          { digest: dg('a1'), hoursAgo: 100 },
          { digest: dg('a2'), hoursAgo: 100 },
        ],
      ),
    ],
    expect: {
      'a/multi:new': 'keep',
      'a/multi:old': 'delete',
      [`a/multi@${dg('a1')}`]: 'delete',
      [`a/multi@${dg('a2')}`]: 'delete',
    },
    deletions: [
      { digest: dg('a0'), after: [] },
      { digest: dg('a1'), after: [dg('a0')] },
      { digest: dg('a2'), after: [dg('a0')] },
    ],
    reasons: { [`a/multi@${dg('a1')}`]: /listed by index .* which is deleted/ },
  },
  {
    name: 'a kept index keeps its untagged children, even when untagged manifests are deleted',
    policy: policy({ untagged: { delete: true, olderThanMs: 0 } }),
    repos: [
      repo(
        'a/multi',
        [['v1.0.0', dg('a0'), 100]],
        [
          { digest: dg('a0'), mediaType: 'oci-index', children: [dg('a1'), dg('a2')] },
          { digest: dg('a1'), hoursAgo: 100 },
          { digest: dg('a2'), hoursAgo: 100 },
        ],
      ),
    ],
    expect: { 'a/multi:v1.0.0': 'keep', [`a/multi@${dg('a1')}`]: 'keep', [`a/multi@${dg('a2')}`]: 'keep' },
    reasons: { [`a/multi@${dg('a1')}`]: /listed by index .* which is kept/ },
  },
  {
    name: 'a child in use keeps its whole index; a child shared with a kept index survives the other',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
      untagged: { delete: true, olderThanMs: 0 },
    }),
    inUse: { digests: new Map([[`a/multi@${dg('b1')}`, 'Pod team/x']]), tags: new Map() },
    repos: [
      repo(
        'a/multi',
        [
          ['one', dg('a0'), 100],
          ['two', dg('b0'), 100],
        ],
        [
          { digest: dg('a0'), mediaType: 'oci-index', children: [dg('a1'), dg('s1')] },
          { digest: dg('b0'), mediaType: 'oci-index', children: [dg('b1'), dg('s1')] },
          { digest: dg('a1'), hoursAgo: 100 },
          { digest: dg('b1'), hoursAgo: 100 },
          { digest: dg('s1'), hoursAgo: 100 },
        ],
      ),
    ],
    expect: {
      'a/multi:one': 'delete',
      'a/multi:two': 'keep',
      [`a/multi@${dg('a1')}`]: 'delete',
      [`a/multi@${dg('b1')}`]: 'keep',
      [`a/multi@${dg('s1')}`]: 'keep',
    },
    reasons: { 'a/multi:two': /index of .* in use by Pod team\/x/ },
  },
  {
    name: 'a signature tag follows its subject: deleted with it',
    policy: policy({ rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 1 } }] }),
    repos: [
      repo('a/app', [
        ['new', dg(9), 1],
        ['old', dg(1), 100],
        [sigTag(dg(1)), dg(5), 100],
      ]),
    ],
    expect: { 'a/app:new': 'keep', 'a/app:old': 'delete', [`a/app:${sigTag(dg(1))}`]: 'delete' },
    deletions: [
      { digest: dg(1), after: [] },
      { digest: dg(5), after: [dg(1)] },
    ],
  },
  {
    name: 'a signature tag follows its subject: kept with it, though no rule keeps it and `*` would delete it',
    policy: policy({ rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 1 } }] }),
    repos: [
      repo('a/app', [
        ['new', dg(9), 1],
        ['old', dg(1), 100],
        [sigTag(dg(9)), dg(5), 100],
        [sigTag(dg(9), 'att'), dg(6), 100],
      ]),
    ],
    expect: {
      'a/app:new': 'keep',
      'a/app:old': 'delete',
      [`a/app:${sigTag(dg(9))}`]: 'keep',
      [`a/app:${sigTag(dg(9), 'att')}`]: 'keep',
    },
    reasons: { [`a/app:${sigTag(dg(9))}`]: /signature or referrer of .* which is kept/ },
  },
  {
    name: 'a signature whose subject is not in the repository is kept; an OCI referrer follows its subject',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
      untagged: { delete: false, olderThanMs: 0 },
    }),
    repos: [
      repo(
        'a/app',
        [
          ['old', dg(1), 100],
          [sigTag(dg(77)), dg(5), 100],
        ],
        [{ digest: dg(8), subject: dg(1), hoursAgo: 100 }],
      ),
    ],
    expect: { 'a/app:old': 'delete', [`a/app:${sigTag(dg(77))}`]: 'keep', [`a/app@${dg(8)}`]: 'delete' },
    reasons: { [`a/app:${sigTag(dg(77))}`]: /not in this repository/, [`a/app@${dg(8)}`]: /referrer of/ },
  },
  {
    name: 'untagged manifests: kept unless untagged.delete, then only once older than olderThan',
    policy: policy({ untagged: { delete: true, olderThanMs: 24 * H } }),
    repos: [
      repo(
        'a/app',
        [['v1.0.0', dg(1), 100]],
        [
          { digest: dg(2), hoursAgo: 25 },
          { digest: dg(3), hoursAgo: 23 },
        ],
      ),
    ],
    expect: { 'a/app:v1.0.0': 'keep', [`a/app@${dg(2)}`]: 'delete', [`a/app@${dg(3)}`]: 'keep' },
    reasons: { [`a/app@${dg(3)}`]: /not older than 24h/, [`a/app@${dg(2)}`]: /older than 24h/ },
  },
  {
    name: 'untagged manifests with untagged.delete false are kept',
    repos: [repo('a/app', [], [{ digest: dg(2), hoursAgo: 2500 }])],
    expect: { [`a/app@${dg(2)}`]: 'keep' },
    reasons: { [`a/app@${dg(2)}`]: /untagged.delete is false/ },
  },
  {
    name: 'minAge protects recently pushed tags and untagged manifests, and counts them as protected',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
      untagged: { delete: true, olderThanMs: 0 },
      protect: { inUse: true, minAgeMs: 2 * H },
    }),
    repos: [
      repo(
        'a/app',
        [
          ['fresh', dg(1), 1],
          ['old', dg(2), 3],
        ],
        [{ digest: dg(3), hoursAgo: 1 }],
      ),
    ],
    expect: { 'a/app:fresh': 'keep', 'a/app:old': 'delete', [`a/app@${dg(3)}`]: 'keep' },
    reasons: { 'a/app:fresh': /within minAge 2h/ },
    counts: { evaluated: 3, deleted: 1, kept: 0, protected: 2 },
  },
  {
    name: 'minAge: a digest re-tagged recently keeps its old tag too',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
      protect: { inUse: true, minAgeMs: 2 * H },
    }),
    repos: [
      repo('a/app', [
        ['old', dg(1), 300],
        ['retag', dg(1), 1],
      ]),
    ],
    expect: { 'a/app:old': 'keep', 'a/app:retag': 'keep' },
    counts: { protected: 2 },
  },
  {
    name: 'in use by digest (Pod imageID or @digest) and by tag protects the digest',
    policy: policy({ rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }] }),
    inUse: {
      digests: new Map([[`a/app@${dg(1)}`, 'Pod team-a/web-0']]),
      tags: new Map([['a/app:stable', 'Deployment team-a/web']]),
    },
    repos: [
      repo('a/app', [
        ['one', dg(1), 300],
        ['stable', dg(2), 300],
        ['also-two', dg(2), 300],
        ['three', dg(3), 300],
      ]),
    ],
    expect: {
      'a/app:one': 'keep',
      'a/app:stable': 'keep',
      'a/app:also-two': 'keep',
      'a/app:three': 'delete',
    },
    reasons: {
      'a/app:one': /in use by Pod team-a\/web-0/,
      'a/app:also-two': /tag stable is in use by Deployment team-a\/web/,
    },
    counts: { protected: 3, deleted: 1 },
  },
  {
    name: 'in use in another repository does not protect the same digest here',
    policy: policy({ rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }] }),
    inUse: { digests: new Map([[`b/other@${dg(1)}`, 'Pod x/y']]), tags: new Map() },
    repos: [repo('a/app', [['one', dg(1), 300]])],
    expect: { 'a/app:one': 'delete' },
  },
  {
    name: 'protect.inUse false ignores workloads',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
      protect: { inUse: false, minAgeMs: 0 },
    }),
    inUse: { digests: new Map([[`a/app@${dg(1)}`, 'Pod x/y']]), tags: new Map() },
    repos: [repo('a/app', [['one', dg(1), 300]])],
    expect: { 'a/app:one': 'delete' },
  },
  {
    name: 'maxDeletions.count: a run that would delete more is refused as a whole',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
      protect: { inUse: true, minAgeMs: 0, maxDeletions: { count: 2 } },
    }),
    repos: [
      repo('a/app', [
        ['a', dg(1), 300],
        ['b', dg(2), 300],
        ['c', dg(3), 300],
      ]),
    ],
    expect: { 'a/app:a': 'delete', 'a/app:b': 'delete', 'a/app:c': 'delete' },
    deletions: [],
    counts: { evaluated: 3, deleted: 0 },
  },
  {
    name: 'maxDeletions.percent: at the limit the run goes ahead',
    policy: policy({
      rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 2 } }],
      protect: { inUse: true, minAgeMs: 0, maxDeletions: { percent: 50 } },
    }),
    repos: [
      repo('a/app', [
        ['a', dg(1), 300],
        ['b', dg(2), 200],
        ['c', dg(3), 100],
        ['d', dg(4), 50],
      ]),
    ],
    expect: { 'a/app:a': 'delete', 'a/app:b': 'delete', 'a/app:c': 'keep', 'a/app:d': 'keep' },
    counts: { deleted: 2 },
  },
];

describe('planRetention', () => {
  test.each(cases)('$name', (c) => {
    const plan = planRetention(c.repos, c.policy ?? policy(), c.inUse ?? noUse, now);
    expect(decisions(plan)).toEqual(c.expect);
    for (const e of plan.entries) {
      expect(e.reason).not.toBe('');
      if (e.decision === 'delete' && e.tag && !followerSubject(e.tag)) expect(e.rule).toBeDefined();
    }
    if (c.deletions)
      expect(plan.deletions.map((d) => ({ digest: d.digest, after: d.after }))).toEqual(c.deletions);
    if (c.counts) expect(plan.counts).toMatchObject(c.counts);
    for (const [key, re] of Object.entries(c.reasons ?? {})) {
      const e = plan.entries.find(
        (x) => (x.tag ? `${x.repository}:${x.tag}` : `${x.repository}@${x.digest}`) === key,
      );
      expect(e?.reason).toMatch(re);
    }
    // Every deleted digest's tags are exactly the entries marked delete for it.
    for (const d of plan.deletions) {
      const tags = plan.entries.filter(
        (e) => e.repository === d.repository && e.digest === d.digest && e.tag,
      );
      expect(tags.every((e) => e.decision === 'delete')).toBe(true);
      expect(d.tags).toEqual(tags.map((e) => e.tag).sort());
    }
  });

  test('a refused plan says why and still reports what it would have deleted', () => {
    const plan = planRetention(
      [
        repo('a/app', [
          ['a', dg(1), 300],
          ['b', dg(2), 300],
        ]),
      ],
      policy({
        rules: [{ name: 'ci', include: ['*'], exclude: [], keep: { mostRecent: 0 } }],
        protect: { inUse: true, minAgeMs: 0, maxDeletions: { percent: 30 } },
      }),
      noUse,
      now,
    );
    expect(plan.refused).toBe(true);
    expect(plan.wouldDelete).toBe(2);
    expect(plan.refusedReason).toMatch(
      /TooManyDeletions: the run would delete 2 of 2 entries \(100\.0%\), more than maxDeletions.percent 30%/,
    );
  });

  test('the plan does not depend on the order of its input', () => {
    const r = repo('a/app', [
      ['main-3', dg(3), 10],
      ['main-1', dg(1), 10],
      ['main-2', dg(2), 10],
    ]);
    const reversed = { ...r, tags: [...r.tags].reverse(), manifests: [...r.manifests].reverse() };
    expect(planRetention([r], policy(), noUse, now)).toEqual(planRetention([reversed], policy(), noUse, now));
  });
});

describe('circuitBreaker', () => {
  test.each([
    { would: 5, of: 10, max: undefined, refused: false },
    { would: 5, of: 10, max: { count: 5 }, refused: false },
    { would: 6, of: 10, max: { count: 5 }, refused: true },
    { would: 3, of: 10, max: { percent: 30 }, refused: false },
    { would: 4, of: 10, max: { percent: 30 }, refused: true },
    { would: 1, of: 10, max: { count: 0 }, refused: true },
    { would: 0, of: 0, max: { count: 0, percent: 0 }, refused: false },
    { would: 4, of: 10, max: { count: 100, percent: 30 }, refused: true },
  ])('$would of $of with $max → refused $refused', ({ would, of, max, refused }) => {
    expect(circuitBreaker(would, of, max) !== undefined).toBe(refused);
  });
});

describe('followerSubject', () => {
  test.each([
    [sigTag(dg(1)), dg(1)],
    [sigTag(dg(1), 'att'), dg(1)],
    [sigTag(dg(1), 'sbom'), dg(1)],
    ['sha256-abc.sig', undefined],
    ['v1.0.0', undefined],
    [`${sigTag(dg(1))}.bak`, undefined],
  ])('%s → %s', (tag, subject) => expect(followerSubject(tag)).toBe(subject));
});
