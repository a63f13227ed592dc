// Fuzzing the credential store reader that the token service loads (fast-check): arbitrary JSON,
// and stores whose entries are each either valid or broken in one field. The reader must never
// throw, must refuse only documents that are not a store, must keep exactly the valid entries (in
// order) and list exactly the broken ones, and what it keeps must compile. The counts are printed.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { hashSecret } from './secret.ts';
import {
  compileCredentialStore,
  parseCredentialEntry,
  parseCredentialStore,
  parseCredentialStoreText,
  serializeCredentialStore,
} from './store.ts';

const counts = { arbitrary: 0, refused: 0, stores: 0, entries: 0, kept: 0, skipped: 0 };

const validUsername = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/);
const validHash = fc.string({ maxLength: 12 }).map(hashSecret);
const pattern = fc.oneof(
  fc.constantFrom('**', 'team-a/*', 'team-a/**', 'team-a/web', '{a,b}/c', 'x/[ab]', 'a/?', '!neg', '@(x)'),
  fc.string({ minLength: 1, maxLength: 30 }),
);
const action = fc.constantFrom('pull', 'push', 'delete', '*');
const validGrant = fc.record({
  repositories: fc.array(pattern, { minLength: 1, maxLength: 3 }),
  actions: fc.uniqueArray(action, { minLength: 1, maxLength: 4 }),
});
const time = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const validEntry = fc.record(
  {
    username: validUsername,
    secretHash: validHash,
    grants: fc.array(validGrant, { maxLength: 3 }),
    catalog: fc.boolean(),
    notBefore: time,
    notAfter: time,
    description: fc.string({ maxLength: 40 }),
  },
  { requiredKeys: ['username', 'secretHash', 'grants'] },
);

/** One field set to something the store format does not allow. */
const breakage = fc.oneof(
  fc.record({
    username: fc.oneof(
      fc.constantFrom('', 'a:b', '-x', 'ü', 'a b'),
      fc.string({ minLength: 129, maxLength: 300 }).map((s) => `u${s.replace(/[^a-z]/g, 'a')}`),
      fc.integer(),
    ),
  }),
  fc.record({ secretHash: fc.oneof(fc.string({ maxLength: 70 }), fc.constant(`sha256:${'A'.repeat(64)}`)) }),
  fc.record({ grants: fc.oneof(fc.string(), fc.constant(null), fc.dictionary(fc.string(), fc.string())) }),
  fc.record({ grants: fc.constant([{ repositories: [], actions: ['pull'] }]) }),
  fc.record({ grants: fc.constant([{ repositories: [''], actions: ['pull'] }]) }),
  fc.record({ grants: fc.constant([{ repositories: ['x'], actions: [] }]) }),
  fc.record({
    grants: fc
      .string({ minLength: 1, maxLength: 8 })
      .filter((a) => !['pull', 'push', 'delete', '*'].includes(a))
      .map((a) => [{ repositories: ['x'], actions: [a] }]),
  }),
  fc.record({ catalog: fc.oneof(fc.string(), fc.integer(), fc.constant(null)) }),
  fc.record({ notBefore: fc.oneof(fc.integer(), fc.constantFrom('soon', '', 'not a date')) }),
  fc.record({ notAfter: fc.oneof(fc.boolean(), fc.constantFrom('tomorrow', '2026-13-45T99:00:00Z')) }),
  fc.record({ description: fc.oneof(fc.integer(), fc.constant([])) }),
);

const generatedEntry = fc.oneof(
  validEntry.map((e) => ({ value: e as unknown, valid: true })),
  fc.tuple(validEntry, breakage).map(([e, b]) => ({ value: { ...e, ...b } as unknown, valid: false })),
  fc.oneof(fc.constant(null), fc.string(), fc.integer(), fc.array(fc.string())).map((v) => ({
    value: v as unknown,
    valid: false,
  })),
);

describe('the credential store reader, fuzzed', () => {
  it('never throws on arbitrary JSON, and refuses only what is not a store', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.record({ version: fc.constant(1), credentials: fc.array(fc.jsonValue({ maxDepth: 3 })) }),
          fc
            .tuple(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })), fc.jsonValue({ maxDepth: 2 }))
            .map(([extra, anonymousPull]) => ({ ...extra, version: 1, credentials: [], anonymousPull })),
        ),
        (value) => {
          counts.arbitrary++;
          const r = parseCredentialStore(value);
          const isStore =
            typeof value === 'object' &&
            value !== null &&
            !Array.isArray(value) &&
            (value as Record<string, unknown>).version === 1 &&
            Array.isArray((value as Record<string, unknown>).credentials) &&
            // absent or null anonymousPull reads as false
            ['boolean', 'undefined'].includes(
              typeof ((value as Record<string, unknown>).anonymousPull ?? undefined),
            );
          expect(r.success).toBe(isStore);
          if (!r.success) counts.refused++;
          else compileCredentialStore(r.data);
        },
      ),
      { numRuns: 4000 },
    );
    // and arbitrary text
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (text) => {
        counts.arbitrary++;
        const r = parseCredentialStoreText(text);
        if (!r.success) counts.refused++;
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps exactly the valid entries of a store, in order, and lists the others', () => {
    fc.assert(
      fc.property(
        fc.array(generatedEntry, { maxLength: 12 }),
        fc.option(fc.boolean(), { nil: undefined }),
        (entries, anonymousPull) => {
          counts.stores++;
          counts.entries += entries.length;
          const doc = {
            version: 1,
            ...(anonymousPull === undefined ? {} : { anonymousPull }),
            credentials: entries.map((e) => e.value),
          };
          // Through the text form, as the token service reads the mounted file.
          const r = parseCredentialStoreText(JSON.stringify(doc));
          expect(r.success).toBe(true);
          if (!r.success) return;
          const validIndexes = entries.flatMap((e, i) => (e.valid ? [i] : []));
          expect(r.skipped.map((s) => s.index)).toEqual(entries.flatMap((e, i) => (e.valid ? [] : [i])));
          expect(r.data.credentials).toEqual(validIndexes.map((i) => entries[i]?.value));
          expect(r.data.anonymousPull).toBe(anonymousPull ?? false);
          for (const s of r.skipped) expect(s.error).toMatch(new RegExp(`^credentials\\[${s.index}\\]`));
          for (const c of r.data.credentials) expect(parseCredentialEntry(c, 'x').success).toBe(true);
          const compiled = compileCredentialStore(r.data);
          expect(compiled.size).toBe(validIndexes.length);
          // What berth writes back reads the same, with nothing skipped.
          const again = parseCredentialStoreText(serializeCredentialStore(r.data));
          expect(again.success && again.skipped).toEqual([]);
          counts.kept += r.data.credentials.length;
          counts.skipped += r.skipped.length;
        },
      ),
      { numRuns: 10_000 },
    );
    console.log(
      `credential store fuzz: ${counts.arbitrary} arbitrary documents (${counts.refused} refused as not a store), ` +
        `${counts.stores} generated stores with ${counts.entries} entries: ${counts.kept} kept, ${counts.skipped} skipped`,
    );
    expect(counts.stores).toBeGreaterThanOrEqual(10_000);
  });
});
