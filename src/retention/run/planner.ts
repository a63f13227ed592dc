// The retention planner: a pure function from what the registry holds (tags, manifests, push times),
// what workloads use, a policy and a clock to a plan with a decision, a rule and a reason for every
// tag and every untagged manifest.
//
// How it decides, per repository:
// 1. Each tag that is not a signature/attestation tag (`sha256-<hex>.sig|.att|.sbom`) belongs to the
//    first rule whose globs match it; tags no rule matches are kept. Within a rule, its tags are
//    counted newest first by push time (ties by name); a tag is kept by `all`, by being among the
//    `mostRecent`, or by having been pushed within `pushedWithin` (criteria OR'ed), else the rule
//    wants it deleted.
// 2. Deletion is decided per manifest (digest). A manifest is kept ("live") when it has a reason of
//    its own: a tag a rule keeps, a protection (in use by digest or tag, pushed within minAge), an
//    untagged manifest that `untagged` does not allow to delete yet, a signature whose subject is not
//    in the repository. Liveness then spreads through a unit: an index keeps its children, a subject
//    keeps its signatures and referrers, and a child or referrer with a reason of its own keeps its
//    index or subject. Every manifest not kept is deleted, with all its tags.
// 3. `protected` counts entries that would be deleted without protections; the circuit breaker
//    refuses the whole run when the deletions exceed maxDeletions.count or .percent of the entries.
import picomatch from 'picomatch';
import { formatDuration } from '../../util/duration.ts';
import type {
  Deletion,
  InUse,
  ManifestState,
  Plan,
  PlanEntry,
  PlannerPolicy,
  PlannerRule,
  RepositoryState,
  TagState,
} from './model.ts';

const followerTagPattern = /^sha256-([a-f0-9]{64})\.(sig|att|sbom)$/;

/** The subject digest of a signature, attestation or SBOM tag, or undefined for an ordinary tag. */
export function followerSubject(tag: string): string | undefined {
  const m = followerTagPattern.exec(tag);
  return m ? `sha256:${m[1]}` : undefined;
}

const globOptions = { dot: true, nonegate: true, noextglob: true } as const;

interface CompiledRule {
  rule: PlannerRule;
  matches(tag: string): boolean;
}

function compileRules(rules: PlannerRule[]): CompiledRule[] {
  return rules.map((rule) => {
    const include = picomatch(rule.include, globOptions);
    const exclude = rule.exclude.length > 0 ? picomatch(rule.exclude, globOptions) : () => false;
    return { rule, matches: (tag) => include(tag) && !exclude(tag) };
  });
}

const age = (ms: number): string => formatDuration(Math.max(0, ms));

export interface TagVerdict {
  tag: TagState;
  /** The subject digest, for a signature/attestation/SBOM tag. */
  subject?: string;
  rule?: string;
  wantDelete: boolean;
  reason: string;
}

function tagVerdicts(repo: RepositoryState, rules: CompiledRule[], now: number): TagVerdict[] {
  const verdicts: TagVerdict[] = [];
  const owned = new Map<CompiledRule, TagState[]>();
  for (const tag of repo.tags) {
    const subject = followerSubject(tag.tag);
    if (subject) {
      verdicts.push({ tag, subject, wantDelete: true, reason: '' });
      continue;
    }
    const owner = rules.find((r) => r.matches(tag.tag));
    if (!owner) {
      verdicts.push({ tag, wantDelete: false, reason: 'no rule matches the tag' });
      continue;
    }
    const list = owned.get(owner) ?? [];
    list.push(tag);
    owned.set(owner, list);
  }
  for (const [{ rule }, tags] of owned) {
    tags.sort((a, b) => b.pushedAt - a.pushedAt || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
    tags.forEach((tag, i) => {
      const { keep } = rule;
      const v: TagVerdict = { tag, rule: rule.name, wantDelete: false, reason: '' };
      if (keep.all) v.reason = 'the rule keeps all its tags';
      else if (keep.mostRecent !== undefined && i < keep.mostRecent)
        v.reason = `number ${i + 1} of the ${keep.mostRecent} most recent`;
      else if (keep.pushedWithinMs !== undefined && now - tag.pushedAt < keep.pushedWithinMs)
        v.reason = `pushed ${age(now - tag.pushedAt)} ago, within ${age(keep.pushedWithinMs)}`;
      else {
        v.wantDelete = true;
        const parts: string[] = [];
        if (keep.mostRecent !== undefined)
          parts.push(`number ${i + 1} by push time, beyond the ${keep.mostRecent} most recent`);
        if (keep.pushedWithinMs !== undefined)
          parts.push(`pushed ${age(now - tag.pushedAt)} ago, not within ${age(keep.pushedWithinMs)}`);
        v.reason = parts.join('; ');
      }
      verdicts.push(v);
    });
  }
  return verdicts;
}

interface Graph {
  manifests: Map<string, ManifestState>;
  tagsOf: Map<string, TagVerdict[]>;
  /** digest → indexes (in this repository) that list it */
  parents: Map<string, string[]>;
  /** digest → the subject (in this repository) it is a signature or referrer of */
  subjectOf: Map<string, string>;
  /** digest → its signatures and referrers */
  followers: Map<string, string[]>;
  /** signature-tagged digests whose subject is not in the repository */
  orphanSignatures: Map<string, string>;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) {
    if (!list.includes(value)) list.push(value);
  } else map.set(key, [value]);
}

function buildGraph(repo: RepositoryState, verdicts: TagVerdict[]): Graph {
  const manifests = new Map<string, ManifestState>();
  for (const m of repo.manifests) manifests.set(m.digest, m);
  const tagsOf = new Map<string, TagVerdict[]>();
  for (const v of verdicts) {
    push(tagsOf, v.tag.digest, v);
    // A tag whose manifest the storage listing missed still counts as a manifest of the repository.
    if (!manifests.has(v.tag.digest))
      manifests.set(v.tag.digest, {
        digest: v.tag.digest,
        mediaType: '',
        children: [],
        pushedAt: v.tag.pushedAt,
      });
  }
  const parents = new Map<string, string[]>();
  const subjectOf = new Map<string, string>();
  const followers = new Map<string, string[]>();
  const orphanSignatures = new Map<string, string>();
  for (const m of manifests.values()) {
    for (const child of m.children) if (manifests.has(child)) push(parents, child, m.digest);
    if (m.subject && manifests.has(m.subject) && m.subject !== m.digest) {
      subjectOf.set(m.digest, m.subject);
      push(followers, m.subject, m.digest);
    }
  }
  for (const v of verdicts) {
    if (!v.subject) continue;
    if (manifests.has(v.subject) && v.subject !== v.tag.digest) {
      if (!subjectOf.has(v.tag.digest)) {
        subjectOf.set(v.tag.digest, v.subject);
        push(followers, v.subject, v.tag.digest);
      }
    } else orphanSignatures.set(v.tag.digest, v.subject);
  }
  return { manifests, tagsOf, parents, subjectOf, followers, orphanSignatures };
}

interface LivenessOptions {
  protections: boolean;
}

/** What ownReason reads of one manifest and its place in the repository's graph. */
export interface ManifestFacts {
  digest: string;
  pushedAt: number;
  /** Its tags, with the rules' verdicts. */
  tags: readonly TagVerdict[];
  /** The subject its signature tag names, when that subject is not in the repository. */
  orphanOf: string | undefined;
  /** An index in the repository lists it. */
  hasParent: boolean;
  /** It is a signature or referrer of a manifest in the repository. */
  hasSubject: boolean;
}

/** The policy and clock ownReason applies. */
export interface OwnReasonRules {
  repository: string;
  /** What workloads use; undefined when in-use protection does not apply. */
  inUse: InUse | undefined;
  /** 0 when the minAge protection does not apply. */
  minAgeMs: number;
  untagged: PlannerPolicy['untagged'];
  now: number;
}

/**
 * Why a manifest is kept for a reason of its own (before liveness spreads through its unit), or
 * undefined. In order: in use (by digest, then by tag); for a tagged manifest, a tag a rule keeps,
 * a tag within minAge, a signature whose subject is not here; for an untagged one, stored within
 * minAge, then (unless it follows an index or subject) untagged.delete false or not old enough. Pure.
 */
export function ownReason(facts: ManifestFacts, rules: OwnReasonRules): string | undefined {
  return (
    inUseReason(facts, rules) ??
    (facts.tags.length > 0 ? taggedReason(facts, rules) : untaggedReason(facts, rules))
  );
}

function inUseReason(facts: ManifestFacts, { repository, inUse }: OwnReasonRules): string | undefined {
  if (!inUse) return undefined;
  const by = inUse.digests.get(`${repository}@${facts.digest}`);
  if (by) return `in use by ${by}`;
  for (const t of facts.tags) {
    const byTag = inUse.tags.get(`${repository}:${t.tag.tag}`);
    if (byTag) return `tag ${t.tag.tag} is in use by ${byTag}`;
  }
  return undefined;
}

function taggedReason(
  { tags, orphanOf, hasSubject }: ManifestFacts,
  rules: OwnReasonRules,
): string | undefined {
  const { now, minAgeMs } = rules;
  const kept = tags.find((t) => !t.subject && !t.wantDelete);
  if (kept) return `tag ${kept.tag.tag} is kept (${kept.rule ? `rule ${kept.rule}: ` : ''}${kept.reason})`;
  for (const t of tags)
    if (now - t.tag.pushedAt < minAgeMs)
      return `tag ${t.tag.tag} was pushed ${age(now - t.tag.pushedAt)} ago, within minAge ${age(minAgeMs)}`;
  if (orphanOf && !hasSubject) return `signature of ${orphanOf}, which is not in this repository`;
  return undefined;
}

function untaggedReason(
  facts: ManifestFacts,
  { now, minAgeMs, untagged }: OwnReasonRules,
): string | undefined {
  const stored = now - facts.pushedAt;
  if (stored < minAgeMs) return `stored ${age(stored)} ago, within minAge ${age(minAgeMs)}`;
  if (facts.hasParent || facts.hasSubject) return undefined; // follows its unit
  if (!untagged.delete) return 'untagged manifests are kept (untagged.delete is false)';
  if (stored < untagged.olderThanMs)
    return `untagged, stored ${age(stored)} ago, not older than ${age(untagged.olderThanMs)}`;
  return undefined;
}

/** digest → why it is kept; digests absent are deleted. */
function liveness(
  repo: RepositoryState,
  graph: Graph,
  policy: PlannerPolicy,
  inUse: InUse,
  now: number,
  { protections }: LivenessOptions,
): Map<string, string> {
  const rules: OwnReasonRules = {
    repository: repo.name,
    inUse: protections && policy.protect.inUse ? inUse : undefined,
    minAgeMs: protections ? policy.protect.minAgeMs : 0,
    untagged: policy.untagged,
    now,
  };
  const own = new Map<string, string>();
  for (const m of graph.manifests.values()) {
    const d = m.digest;
    const reason = ownReason(
      {
        digest: d,
        pushedAt: m.pushedAt,
        tags: graph.tagsOf.get(d) ?? [],
        orphanOf: graph.orphanSignatures.get(d),
        hasParent: graph.parents.has(d),
        hasSubject: graph.subjectOf.has(d),
      },
      rules,
    );
    if (reason) own.set(d, reason);
  }
  return spreadLiveness(graph, own);
}

/**
 * Liveness through units, from the manifests with a reason of their own: upward first (a kept
 * child keeps its index, a kept signature or referrer its subject), then downward from everything
 * kept (a kept index keeps its children, a kept subject its signatures and referrers).
 */
function spreadLiveness(graph: Graph, own: Map<string, string>): Map<string, string> {
  const live = new Map<string, string>(own);
  const queue = [...own.keys()];
  const keep = (d: string, why: string) => {
    live.set(d, why);
    queue.push(d);
  };
  for (const [d, why] of own) {
    for (const p of graph.parents.get(d) ?? [])
      if (!live.has(p)) keep(p, `index of ${d}, which is kept: ${why}`);
    const s = graph.subjectOf.get(d);
    if (s && !live.has(s)) keep(s, `subject of ${d}, which is kept: ${why}`);
  }
  for (let i = 0; i < queue.length; i++) {
    const d = queue[i] as string;
    for (const c of graph.manifests.get(d)?.children ?? [])
      if (graph.manifests.has(c) && !live.has(c)) keep(c, `listed by index ${d}, which is kept`);
    for (const f of graph.followers.get(d) ?? [])
      if (!live.has(f)) keep(f, `signature or referrer of ${d}, which is kept`);
  }
  return live;
}

function deletionOrder(repo: string, graph: Graph, deleted: Set<string>): Deletion[] {
  const after = new Map<string, string[]>();
  for (const d of deleted) {
    const deps = [...(graph.parents.get(d) ?? [])];
    const s = graph.subjectOf.get(d);
    if (s) deps.push(s);
    after.set(
      d,
      deps.filter((x) => deleted.has(x)),
    );
  }
  const out: Deletion[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (d: string) => {
    if (done.has(d) || visiting.has(d)) return;
    visiting.add(d);
    for (const x of after.get(d) ?? []) visit(x);
    visiting.delete(d);
    done.add(d);
    out.push({
      repository: repo,
      digest: d,
      tags: (graph.tagsOf.get(d) ?? []).map((t) => t.tag.tag).sort(),
      after: after.get(d) ?? [],
    });
  };
  for (const d of [...deleted].sort()) visit(d);
  return out;
}

/** Plans one repository: its report entries and its deletions (before the circuit breaker). */
export function planRepository(
  repo: RepositoryState,
  policy: PlannerPolicy,
  inUse: InUse,
  now: number,
  rules: CompiledRule[] = compileRules(policy.rules),
): { entries: PlanEntry[]; deletions: Deletion[]; protected: number } {
  const verdicts = tagVerdicts(repo, rules, now);
  const graph = buildGraph(repo, verdicts);
  const live = liveness(repo, graph, policy, inUse, now, { protections: true });
  const hasProtections = policy.protect.inUse || policy.protect.minAgeMs > 0;
  const unprotected = hasProtections
    ? liveness(repo, graph, policy, inUse, now, { protections: false })
    : live;
  const entries: PlanEntry[] = [];
  let protectedCount = 0;
  const entry = (e: PlanEntry) => {
    entries.push(e);
    if (e.decision === 'keep' && !unprotected.has(e.digest)) protectedCount++;
  };
  const sortedTags = [...verdicts].sort((a, b) => (a.tag.tag < b.tag.tag ? -1 : 1));
  for (const v of sortedTags) entry(tagEntry(repo.name, v, live.get(v.tag.digest)));
  const untagged = [...graph.manifests.values()]
    .filter((m) => !graph.tagsOf.has(m.digest))
    .sort((a, b) => (a.digest < b.digest ? -1 : 1));
  for (const m of untagged) {
    const why = live.get(m.digest);
    entry(
      why
        ? { repository: repo.name, digest: m.digest, decision: 'keep', reason: why }
        : untaggedDeletion(repo.name, m, graph, policy, now),
    );
  }
  const deleted = new Set([...graph.manifests.keys()].filter((d) => !live.has(d)));
  return { entries, deletions: deletionOrder(repo.name, graph, deleted), protected: protectedCount };
}

/**
 * A tag's report entry, given why its manifest is kept (`why`, undefined if it is deleted): a
 * signature tag follows its manifest; a tag its rule keeps is kept; a tag its rule would delete is
 * kept when its manifest is, else deleted. Pure.
 */
export function tagEntry(repository: string, v: TagVerdict, why: string | undefined): PlanEntry {
  const base = { repository, tag: v.tag.tag, digest: v.tag.digest };
  const rule = v.rule ? { rule: v.rule } : {};
  if (v.subject)
    return {
      ...base,
      decision: why ? 'keep' : 'delete',
      reason: why ?? `signature of ${v.subject}, which is deleted`,
    };
  if (!v.wantDelete) return { ...base, ...rule, decision: 'keep', reason: v.reason };
  if (why) return { ...base, ...rule, decision: 'keep', reason: `${v.reason}; kept: ${why}` };
  return { ...base, ...rule, decision: 'delete', reason: v.reason };
}

/** The entry of an untagged manifest that is deleted: with its index, its subject, or for its age. */
function untaggedDeletion(
  repository: string,
  m: ManifestState,
  graph: Graph,
  policy: PlannerPolicy,
  now: number,
): PlanEntry {
  const parent = graph.parents.get(m.digest)?.[0];
  const subject = graph.subjectOf.get(m.digest);
  const reason = parent
    ? `listed by index ${parent}, which is deleted`
    : subject
      ? `referrer of ${subject}, which is deleted`
      : `untagged, stored ${age(now - m.pushedAt)} ago, older than ${age(policy.untagged.olderThanMs)}`;
  return { repository, digest: m.digest, decision: 'delete', reason };
}

/** One repository's part of a plan (planRepository's result), with the repository's name. */
export interface RepositoryPlan {
  name: string;
  entries: PlanEntry[];
  deletions: Deletion[];
  protected: number;
}

/**
 * Plans repositories one at a time, so a run can plan each as soon as its snapshot is read and let
 * the snapshot go: `add` plans one, `finish` puts the parts in repository order and applies the
 * circuit breaker. `planRetention` is the same over a list.
 */
export interface RetentionPlanner {
  add(repo: RepositoryState): RepositoryPlan;
  finish(): Plan;
}

export function createPlanner(policy: PlannerPolicy, inUse: InUse, now: number): RetentionPlanner {
  const rules = compileRules(policy.rules);
  const parts: RepositoryPlan[] = [];
  return {
    add(repo) {
      const part = { name: repo.name, ...planRepository(repo, policy, inUse, now, rules) };
      parts.push(part);
      return part;
    },
    finish() {
      return assemblePlan(parts, policy);
    },
  };
}

/** The parts of a plan, in repository order, as one plan, with the circuit breaker applied. */
function assemblePlan(parts: RepositoryPlan[], policy: PlannerPolicy): Plan {
  const sorted = [...parts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: PlanEntry[] = [];
  const deletions: Deletion[] = [];
  let protectedCount = 0;
  let wouldDelete = 0;
  for (const r of sorted) {
    for (const e of r.entries) {
      entries.push(e);
      if (e.decision === 'delete') wouldDelete++;
    }
    for (const d of r.deletions) deletions.push(d);
    protectedCount += r.protected;
  }
  const evaluated = entries.length;
  const kept = evaluated - wouldDelete - protectedCount;
  const refusedReason = circuitBreaker(wouldDelete, evaluated, policy.protect.maxDeletions);
  const plan: Plan = {
    entries,
    deletions: refusedReason ? [] : deletions,
    counts: { evaluated, deleted: refusedReason ? 0 : wouldDelete, kept, protected: protectedCount },
    wouldDelete,
    refused: refusedReason !== undefined,
  };
  if (refusedReason) plan.refusedReason = refusedReason;
  return plan;
}

/** Plans a whole run, then applies the circuit breaker. */
export function planRetention(
  repositories: RepositoryState[],
  policy: PlannerPolicy,
  inUse: InUse,
  now: number,
): Plan {
  const planner = createPlanner(policy, inUse, now);
  for (const repo of repositories) planner.add(repo);
  return planner.finish();
}

/** The reason a run that would delete `wouldDelete` of `evaluated` entries is refused, if it is. */
export function circuitBreaker(
  wouldDelete: number,
  evaluated: number,
  max: PlannerPolicy['protect']['maxDeletions'],
): string | undefined {
  if (!max) return undefined;
  if (max.count !== undefined && wouldDelete > max.count)
    return `TooManyDeletions: the run would delete ${wouldDelete} of ${evaluated} entries, more than maxDeletions.count ${max.count}; nothing was deleted`;
  if (max.percent !== undefined && wouldDelete * 100 > max.percent * evaluated)
    return `TooManyDeletions: the run would delete ${wouldDelete} of ${evaluated} entries (${((wouldDelete * 100) / Math.max(1, evaluated)).toFixed(1)}%), more than maxDeletions.percent ${max.percent}%; nothing was deleted`;
  return undefined;
}
