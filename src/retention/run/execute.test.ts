import { describe, expect, test } from '@jest/globals';
import {
  deleteBlocker,
  deletionUnits,
  executeDeletions,
  inUseBlocker,
  knownTagsOf,
  viewIsFresh,
} from './execute.ts';
import type { Deletion } from './model.ts';
import { FakeClock } from '../../runtime/clock.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;

describe('deleteBlocker', () => {
  const known = new Set(['v1', 'main-1', 'main-2']);
  test.each<[string, Pick<Deletion, 'digest' | 'tags'>, [string, string][], string | undefined]>([
    [
      'only its own tags point to it',
      { digest: B, tags: ['main-1'] },
      [
        ['main-1', B],
        ['v1', A],
      ],
      undefined,
    ],
    ['an untagged manifest nothing points to', { digest: C, tags: [] }, [['v1', A]], undefined],
    ['its own tag is gone already', { digest: B, tags: ['main-1'] }, [['v1', A]], undefined],
    [
      'a kept tag moved onto it (rollback)',
      { digest: B, tags: ['main-1'] },
      [
        ['main-1', B],
        ['v1', B],
      ],
      'tag v1, which the plan kept, now points to it',
    ],
    [
      'a kept tag moved onto an untagged manifest',
      { digest: C, tags: [] },
      [['v1', C]],
      'tag v1, which the plan kept, now points to it',
    ],
    [
      'a tag pushed since the plan',
      { digest: B, tags: ['main-1'] },
      [
        ['main-1', B],
        ['hotfix', B],
      ],
      'tag hotfix was pushed to it after the plan',
    ],
    ['its own tag moved away', { digest: B, tags: ['main-1'] }, [['main-1', A]], `tag main-1 moved to ${A}`],
  ])('%s', (_name, deletion, current, expected) =>
    expect(deleteBlocker(deletion, new Map(current), known)).toBe(expected),
  );
});

describe('viewIsFresh', () => {
  test.each([
    [0, 0, 2000, true],
    [2000, 10, 2000, true],
    [2001, 10, 2000, false],
    [7000, 2000, 2000, true], // a slow resolution is reused for four times its duration
    [8001, 2000, 2000, false],
  ])('age %d ms, took %d ms, refresh %d ms → %s', (age, took, refresh, fresh) =>
    expect(viewIsFresh(age, took, refresh)).toBe(fresh),
  );
});

/** A registry of one repository in memory; `onDelete` may move tags between deletes. */
function fakeRegistry(tags: Record<string, string>, onDelete?: (digest: string) => void) {
  const calls = { tags: 0, head: 0, deleted: [] as string[] };
  return {
    calls,
    tags: async () => {
      calls.tags++;
      return Object.keys(tags);
    },
    head: async (_repo: string, tag: string) => {
      calls.head++;
      const digest = tags[tag];
      return digest ? { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' } : undefined;
    },
    deleteManifest: async (_repo: string, digest: string) => {
      calls.deleted.push(digest);
      for (const [t, d] of Object.entries(tags)) if (d === digest) delete tags[t];
      onDelete?.(digest);
      return 'deleted' as const;
    },
  };
}

const executionPlan: Deletion[] = [
  { repository: 'app', digest: B, tags: ['main-1'], after: [] },
  { repository: 'app', digest: C, tags: ['main-2'], after: [] },
];
const known = new Map([['app', new Set(['v1', 'main-1', 'main-2', 'old-index'])]]);

test('knownTagsOf: the tags of one repository, from the entries of the plan', () => {
  const entry = (repository: string, tag?: string) => ({
    repository,
    digest: A,
    decision: 'keep' as const,
    reason: '',
    ...(tag ? { tag } : {}),
  });
  const known = knownTagsOf([entry('a', 'v1'), entry('a'), entry('a', 'v2'), entry('b', 'v1'), entry('c')]);
  expect([...known('a')]).toEqual(['v1', 'v2']);
  expect([...known('b')]).toEqual(['v1']);
  expect([...known('c')]).toEqual([]);
  expect([...known('d')]).toEqual([]);
});

describe('executeDeletions', () => {
  const plan = executionPlan;

  test('resolves every tag once after the plan and keeps a digest a kept tag moved onto', async () => {
    const registry = fakeRegistry({ v1: B, 'main-1': B, 'main-2': C });
    const res = await executeDeletions(plan, known, registry, { clock: new FakeClock(0) });
    expect(res.outcomes.get(`app@${B}`)).toEqual({
      status: 'skipped',
      reason: 'tag v1, which the plan kept, now points to it',
    });
    expect(res.outcomes.get(`app@${C}`)).toEqual({ status: 'deleted' });
    expect(registry.calls.deleted).toEqual([C]);
    expect(registry.calls).toMatchObject({ tags: 1, head: 3 });
  });

  test('resolves again once the view is older than the refresh interval', async () => {
    const clock = new FakeClock(0);
    // While the first delete runs, v1 is moved onto the second doomed digest and time passes.
    const tags: Record<string, string> = { v1: A, 'main-1': B, 'main-2': C };
    const registry = fakeRegistry(tags, () => {
      tags.v1 = C;
      clock.advance(5_000);
    });
    const res = await executeDeletions(plan, known, registry, {
      clock,
      refreshMs: 2_000,
      perRepository: 1,
    });
    expect(res.outcomes.get(`app@${B}`)).toEqual({ status: 'deleted' });
    expect(res.outcomes.get(`app@${C}`)).toMatchObject({ status: 'skipped' });
    expect(registry.calls.deleted).toEqual([B]);
    expect(registry.calls.tags).toBe(2);
  });

  test('a deletion whose index was not deleted is skipped; a failed listing fails the deletion', async () => {
    const registry = fakeRegistry({ v1: B, 'main-1': B });
    const res = await executeDeletions(
      [
        { repository: 'app', digest: B, tags: ['main-1'], after: [] },
        { repository: 'app', digest: C, tags: [], after: [B] },
      ],
      known,
      registry,
    );
    expect(res.outcomes.get(`app@${C}`)).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(B),
    });
    const broken = { ...fakeRegistry({}), tags: () => Promise.reject(new Error('HTTP 503')) };
    const failed = await executeDeletions(plan.slice(0, 1), known, broken);
    expect(failed.outcomes.get(`app@${B}`)).toEqual({
      status: 'failed',
      reason: 'could not resolve the tags again: HTTP 503',
    });
  });
});

describe('in use again before the delete (the listing after the plan)', () => {
  const D = `sha256:${'d'.repeat(64)}`;
  const index: Deletion = { repository: 'app', digest: A, tags: ['old-index'], after: [] };
  const child1: Deletion = { repository: 'app', digest: B, tags: [], after: [A] };
  const child2: Deletion = { repository: 'app', digest: C, tags: [], after: [A] };
  const alone: Deletion = { repository: 'app', digest: D, tags: ['main-1'], after: [] };
  const noneInUse = () => ({ digests: new Map<string, string>(), tags: new Map<string, string>() });

  test('deletionUnits joins an index and its children, and leaves the rest alone', () => {
    const units = deletionUnits([index, child1, child2, alone]);
    expect(
      units
        .get(B)
        ?.map((d) => d.digest)
        .sort(),
    ).toEqual([A, B, C]);
    expect(units.get(A)).toBe(units.get(C));
    expect(units.get(D)).toEqual([alone]);
  });

  test.each<[string, Deletion, [string, string][], [string, string][], string | undefined]>([
    ['nothing in use', alone, [], [], undefined],
    ['its digest', alone, [[`app@${D}`, 'Pod a/p']], [], 'it is in use by Pod a/p'],
    ['a tag the plan deletes with it', alone, [], [['app:main-1', 'Deployment a/d']], 'tag main-1 of it'],
    ['a sibling in its unit', child1, [[`app@${C}`, 'Pod a/p']], [], `${C}, of its unit, is in use`],
    ['the index of a child', child2, [], [['app:old-index', 'Pod a/q']], 'tag old-index of'],
    ['another repository', alone, [[`other@${D}`, 'Pod a/p']], [], undefined],
  ])('%s', (_name, deletion, digests, tags, reason) => {
    const units = deletionUnits([index, child1, child2, alone]);
    const got = inUseBlocker('app', deletion, units.get(deletion.digest) ?? [], {
      digests: new Map(digests),
      tags: new Map(tags),
    });
    if (reason === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(reason);
  });

  test('the listing is taken after the plan: an image in use since is not deleted, nor its unit', async () => {
    const registry = fakeRegistry({ 'old-index': A, 'main-1': D });
    let listings = 0;
    const inUse = async () => {
      listings++;
      return { digests: new Map([[`app@${B}`, 'Pod team/new']]), tags: new Map<string, string>() };
    };
    const res = await executeDeletions([index, child1, child2, alone], known, registry, {
      clock: new FakeClock(0),
      inUse,
    });
    expect(listings).toBe(1); // once for the whole run while it is fresh
    expect(registry.calls.deleted).toEqual([D]);
    expect(res.outcomes.get(`app@${A}`)).toEqual({
      status: 'skipped',
      reason: `${B}, of its unit, is in use by Pod team/new (listed again before the delete)`,
    });
    for (const d of [B, C]) expect(res.outcomes.get(`app@${d}`)).toMatchObject({ status: 'skipped' });
  });

  test('listed again once the listing is older than its bound; a failed listing fails the deletion', async () => {
    const clock = new FakeClock(0);
    let inUseNow = noneInUse();
    const registry = fakeRegistry({ 'main-1': B, 'main-2': C }, () => {
      // While the first delete runs, a Pod starts with main-2, and 11 s pass.
      inUseNow = { digests: new Map(), tags: new Map([['app:main-2', 'Pod team/late']]) };
      clock.advance(11_000);
    });
    const res = await executeDeletions(executionPlan, known, registry, {
      clock,
      perRepository: 1,
      inUse: async () => inUseNow,
    });
    expect(registry.calls.deleted).toEqual([B]);
    expect(res.outcomes.get(`app@${C}`)).toEqual({
      status: 'skipped',
      reason: 'tag main-2 of it is in use by Pod team/late (listed again before the delete)',
    });
    const failed = await executeDeletions(executionPlan, known, fakeRegistry({ 'main-1': B }), {
      inUse: () => Promise.reject(new Error('pods is forbidden')),
    });
    expect(failed.outcomes.get(`app@${B}`)).toEqual({
      status: 'failed',
      reason: 'could not list the images in use again: pods is forbidden',
    });
  });
});
