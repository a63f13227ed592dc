// The phases of a garbage collection (status.garbageCollection.phase) and what they mean for the
// rest of berth: the registry runs read-only in some (the Registry controller renders that), and a
// collection in progress holds the lock that retention runs wait for (src/jobs/lock.ts).
import type { RegistryStatusGarbageCollection as GCStatus } from '../api/generated/registry.ts';

export type Phase = NonNullable<GCStatus['phase']>;

/** Phases in which the registry runs with the read-only configuration. */
export const readOnlyPhases: readonly Phase[] = ['ReadOnly', 'Collecting', 'Restarting', 'Failed'];

/** Phases of a collection in progress. */
export const activePhases: readonly Phase[] = [
  'Pending',
  'ReadOnly',
  'Collecting',
  'Restarting',
  'ReadWrite',
  'Verifying',
];
export const isActive = (phase: Phase | undefined): boolean => !!phase && activePhases.includes(phase);
export const isReadOnly = (phase: Phase | undefined): boolean => !!phase && readOnlyPhases.includes(phase);
