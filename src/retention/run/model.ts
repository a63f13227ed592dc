// The retention planner's input and output. Everything is plain data, times are epoch milliseconds,
// so the planner is a pure function and the run (src/retention/run.ts) only gathers and executes.

/** A tag as the registry records it. */
export interface TagState {
  tag: string;
  digest: string;
  /** When the tag was last pushed: the modification time of its link in the registry's storage. */
  pushedAt: number;
}

/** A manifest stored in a repository, tagged or not. */
export interface ManifestState {
  digest: string;
  mediaType: string;
  /** For an index (OCI image index, Docker manifest list): the digests it lists. */
  children: string[];
  /** OCI 1.1 `subject`: this manifest is a referrer (signature, attestation, SBOM) of that digest. */
  subject?: string;
  /** When the manifest was first stored: the modification time of its revision link. */
  pushedAt: number;
}

export interface RepositoryState {
  name: string;
  tags: TagState[];
  /** Every manifest revision of the repository (tagged and untagged). */
  manifests: ManifestState[];
}

/** What workloads use, already normalised to this registry's repository paths. */
export interface InUse {
  /** `<repository>@<digest>` → who uses it (for the report), e.g. `Pod team-a/web-0`. */
  digests: Map<string, string>;
  /** `<repository>:<tag>` → who uses it. */
  tags: Map<string, string>;
}

export interface PlannerRule {
  name: string;
  include: string[];
  exclude: string[];
  keep: { all?: boolean; mostRecent?: number; pushedWithinMs?: number };
}

/** A RetentionPolicy's spec, with defaults applied and durations parsed (see policy.ts). */
export interface PlannerPolicy {
  rules: PlannerRule[];
  untagged: { delete: boolean; olderThanMs: number };
  protect: {
    inUse: boolean;
    minAgeMs: number;
    maxDeletions?: { count?: number; percent?: number };
  };
}

export type Decision = 'delete' | 'keep';

/** One line of the report: one per tag and one per untagged manifest. */
export interface PlanEntry {
  repository: string;
  tag?: string;
  digest: string;
  decision: Decision;
  rule?: string;
  reason: string;
}

/** A manifest to delete, in execution order (an index before its children, a subject before its signatures). */
export interface Deletion {
  repository: string;
  digest: string;
  /** Tags pointing to it when planned: each is resolved again before the delete. */
  tags: string[];
  /** Deletions (digests in the same repository) that must have succeeded first. */
  after: string[];
}

export interface PlanCounts {
  /** Report entries: tags and untagged manifests. */
  evaluated: number;
  /** Entries the plan deletes (0 when the circuit breaker refuses the run). */
  deleted: number;
  /** Entries kept by a rule, because no rule matched, or with a kept manifest. */
  kept: number;
  /** Entries a rule would delete but a protection (in use, minimum age) keeps. */
  protected: number;
}

export interface Plan {
  entries: PlanEntry[];
  deletions: Deletion[];
  counts: PlanCounts;
  /** Entries the plan would delete, whether or not the run is refused. */
  wouldDelete: number;
  refused: boolean;
  refusedReason?: string;
}
