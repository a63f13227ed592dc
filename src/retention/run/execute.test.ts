import { describe, expect, test } from '@jest/globals';
import { deleteBlocker, executeDeletions, viewIsFresh } from './execute.ts';
import type { Deletion } from './model.ts';

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

describe('executeDeletions', () => {
  const plan: Deletion[] = [
    { repository: 'app', digest: B, tags: ['main-1'], after: [] },
    { repository: 'app', digest: C, tags: ['main-2'], after: [] },
  ];
  const known = new Map([['app', new Set(['v1', 'main-1', 'main-2'])]]);

  test('resolves every tag once after the plan and keeps a digest a kept tag moved onto', async () => {
    const registry = fakeRegistry({ v1: B, 'main-1': B, 'main-2': C });
    const res = await executeDeletions(plan, known, registry, { clock: () => 0 });
    expect(res.outcomes.get(`app@${B}`)).toEqual({
      status: 'skipped',
      reason: 'tag v1, which the plan kept, now points to it',
    });
    expect(res.outcomes.get(`app@${C}`)).toEqual({ status: 'deleted' });
    expect(registry.calls.deleted).toEqual([C]);
    expect(registry.calls).toMatchObject({ tags: 1, head: 3 });
  });

  test('resolves again once the view is older than the refresh interval', async () => {
    let now = 0;
    // While the first delete runs, v1 is moved onto the second doomed digest and time passes.
    const tags: Record<string, string> = { v1: A, 'main-1': B, 'main-2': C };
    const registry = fakeRegistry(tags, () => {
      tags.v1 = C;
      now += 5_000;
    });
    const res = await executeDeletions(plan, known, registry, {
      clock: () => now,
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
