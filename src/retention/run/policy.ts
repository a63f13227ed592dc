// A RetentionPolicy's spec → the planner's policy (defaults of the schema applied, durations parsed),
// and which repositories the policy may touch (its globs, narrowed by the namespace scope).
import picomatch from 'picomatch';
import type { RetentionPolicy, Repository } from '../../api/index.ts';
import { parseDuration } from '../../util/duration.ts';
import type { PlannerPolicy } from './model.ts';

export class PolicyError extends Error {
  override name = 'PolicyError';
}

function duration(text: string | undefined, fallback: string, field: string): number {
  try {
    return parseDuration(text ?? fallback);
  } catch (err) {
    throw new PolicyError(`${field}: ${(err as Error).message}`);
  }
}

export function plannerPolicy(policy: RetentionPolicy): PlannerPolicy {
  const spec = policy.spec;
  const out: PlannerPolicy = {
    rules: spec.rules.map((r, i) => {
      const keep: PlannerPolicy['rules'][number]['keep'] = { all: r.keep.all === true };
      if (r.keep.mostRecent !== undefined) keep.mostRecent = r.keep.mostRecent;
      if (r.keep.pushedWithin !== undefined)
        keep.pushedWithinMs = duration(r.keep.pushedWithin, '', `spec.rules[${i}].keep.pushedWithin`);
      if (!keep.all && keep.mostRecent === undefined && keep.pushedWithinMs === undefined)
        throw new PolicyError(`spec.rules[${i}].keep must be {all: true} or set a criterion`);
      return { name: r.name, include: r.tags.include, exclude: r.tags.exclude ?? [], keep };
    }),
    untagged: {
      delete: spec.untagged?.delete === true,
      olderThanMs: duration(spec.untagged?.olderThan, '24h', 'spec.untagged.olderThan'),
    },
    protect: {
      inUse: spec.protect?.inUse !== false,
      minAgeMs: duration(spec.protect?.minAge, '2h', 'spec.protect.minAge'),
    },
  };
  const max = spec.protect?.maxDeletions;
  if (max) {
    out.protect.maxDeletions = {};
    if (max.count !== undefined) out.protect.maxDeletions.count = max.count;
    if (max.percent !== undefined) out.protect.maxDeletions.percent = max.percent;
  }
  return out;
}

/** The namespace and name of the Registry a policy or Repository refers to. */
export function registryOf(obj: {
  metadata?: { namespace?: string };
  spec: { registryRef: { name: string; namespace?: string } };
}): { name: string; namespace: string } {
  return {
    name: obj.spec.registryRef.name,
    namespace: obj.spec.registryRef.namespace || obj.metadata?.namespace || '',
  };
}

/** A Repository's path: `spec.path`, default `<namespace>/<name>`. */
export function repositoryPath(repo: Repository): string {
  return repo.spec.path ?? `${repo.metadata?.namespace ?? ''}/${repo.metadata?.name ?? ''}`;
}

export type Scope = { kind: 'registry' } | { kind: 'namespace'; namespace: string; paths: Set<string> };

/**
 * What a policy may touch: the whole registry when it lives in the Registry's namespace; otherwise
 * only the paths its namespace owns through Repository objects of the same Registry (and under
 * `<namespace>/`, whatever an object claims).
 */
export function policyScope(policy: RetentionPolicy, repositories: Repository[]): Scope {
  const registry = registryOf(policy);
  const ns = policy.metadata?.namespace ?? '';
  if (ns === registry.namespace) return { kind: 'registry' };
  const paths = new Set<string>();
  for (const r of repositories) {
    if (r.metadata?.namespace !== ns) continue;
    const ref = registryOf(r);
    if (ref.name !== registry.name || ref.namespace !== registry.namespace) continue;
    const p = repositoryPath(r);
    if (p.startsWith(`${ns}/`)) paths.add(p);
  }
  return { kind: 'namespace', namespace: ns, paths };
}

const globOptions = { dot: true, nonegate: true, noextglob: true } as const;

/** A predicate over repository paths: the policy's include/exclude globs within its scope. */
export function repositoryFilter(policy: RetentionPolicy, scope: Scope): (path: string) => boolean {
  const include = picomatch(policy.spec.repositories.include, globOptions);
  const excludeGlobs = policy.spec.repositories.exclude ?? [];
  const exclude = excludeGlobs.length > 0 ? picomatch(excludeGlobs, globOptions) : () => false;
  return (path) => (scope.kind === 'registry' || scope.paths.has(path)) && include(path) && !exclude(path);
}
