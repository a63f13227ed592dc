// Pure edits of a ServiceAccount's imagePullSecrets. The list is atomic for the API server, so
// berth reads, edits and writes it whole (with a resourceVersion precondition). It appends its
// entry without reordering anyone else's, and records what it added in an annotation so that a
// removal drops only berth's entries, never a same-named entry someone else put there first.

export const managedEntriesAnnotation = 'berth.dev/image-pull-secrets';

export interface ServiceAccountLike {
  metadata?: { annotations?: Record<string, string> };
  imagePullSecrets?: { name?: string }[];
}

export interface Edit {
  imagePullSecrets: { name: string }[];
  /** The new value of the annotation, or null to remove it. */
  annotation: string | null;
}

function recorded(sa: ServiceAccountLike): string[] {
  const v = sa.metadata?.annotations?.[managedEntriesAnnotation];
  return v ? v.split(',').filter(Boolean) : [];
}

const entries = (sa: ServiceAccountLike) => (sa.imagePullSecrets ?? []).map((e) => ({ name: e.name ?? '' }));

/** Adds `secretName`; undefined when the ServiceAccount already has it. */
export function addPullSecret(sa: ServiceAccountLike, secretName: string): Edit | undefined {
  const current = entries(sa);
  if (current.some((e) => e.name === secretName)) return undefined; // present: ours or someone else's
  const mine = [...new Set([...recorded(sa), secretName])].sort();
  return { imagePullSecrets: [...current, { name: secretName }], annotation: mine.join(',') };
}

/** Removes `secretName` if berth added it; undefined when there is nothing of berth's to remove. */
export function removePullSecret(sa: ServiceAccountLike, secretName: string): Edit | undefined {
  const mine = recorded(sa);
  if (!mine.includes(secretName)) return undefined;
  const rest = mine.filter((n) => n !== secretName);
  return {
    imagePullSecrets: entries(sa).filter((e) => e.name !== secretName),
    annotation: rest.length ? rest.join(',') : null,
  };
}

/**
 * ServiceAccounts that still carry berth's entry `secretName` in a namespace that is not selected
 * and has no Secret of that name: left behind when a removal read a cached ServiceAccount from
 * before berth's own append (the removal is keyed by berth's Secrets, so nothing else finds them).
 */
export function orphanedEntries<T extends ServiceAccountLike & { metadata?: { namespace?: string } }>(
  serviceAccounts: readonly T[],
  secretName: string,
  selected: ReadonlySet<string>,
  hasSecret: (namespace: string) => boolean,
): T[] {
  return serviceAccounts.filter((sa) => {
    const ns = sa.metadata?.namespace ?? '';
    return !selected.has(ns) && !hasSecret(ns) && recorded(sa).includes(secretName);
  });
}

/** Which ServiceAccounts of a namespace get the secret. */
export function targetsServiceAccount(
  policy: { names?: string[]; all?: boolean } | undefined,
  serviceAccountName: string,
): boolean {
  if (!policy) return serviceAccountName === 'default';
  if (policy.all) return true;
  return (policy.names ?? ['default']).includes(serviceAccountName);
}
