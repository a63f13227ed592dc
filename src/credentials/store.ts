// The credential store: the document the operator writes (into a Secret) and the token service
// reads (from the mounted file). It holds hashed secrets only, never plain ones.
//
// Format (JSON, versioned by `version`):
//   {
//     "version": 1,
//     "anonymousPull": false,
//     "credentials": [
//       { "username": "admin", "secretHash": "sha256:<64 hex>",
//         "grants": [{ "repositories": ["**"], "actions": ["*"] }], "catalog": true },
//       { "username": "ns-team-a", "secretHash": "sha256:...",
//         "grants": [{ "repositories": ["team-a/*"], "actions": ["pull"] }],
//         "notBefore": "2026-11-24T08:00:00Z", "notAfter": "2026-11-25T10:00:00Z" }
//     ]
//   }
//
// Repository patterns are picomatch globs over repository paths: `team-a/web` (exact),
// `team-a/*` (one level below team-a), `team-a/**` (any depth below team-a), `**` (everything).
// Several entries may share a username (rotation: the new secret and the old one, the old one
// with a `notAfter` at the end of its grace period).
//
// One bad entry never invalidates the store: the reader skips it and reports it (index and
// reason, never secret material), and keeps every other entry. Only a document that is not a
// store at all (not JSON, another version, no credentials list) is refused as a whole.
import picomatch from 'picomatch';
import { isRepositoryName } from './repository-name.ts';
import { usernamePattern } from './usernames.ts';

export const credentialStoreVersion = 1;

/** Actions on a repository, as Distribution names them; `*` means all of them. */
export const repositoryActions = ['pull', 'push', 'delete', '*'] as const;
export type RepositoryAction = (typeof repositoryActions)[number];

export interface Grant {
  /** Repository path patterns (picomatch globs: `*` one path segment, `**` any depth). */
  repositories: string[];
  actions: RepositoryAction[];
}

export interface CredentialEntry {
  username: string;
  /** `sha256:` + the hex SHA-256 of the secret's UTF-8 bytes. */
  secretHash: string;
  grants: Grant[];
  /** May list the whole registry (`registry:catalog:*`). */
  catalog?: boolean;
  /** RFC 3339; the credential is refused before this instant. */
  notBefore?: string;
  /** RFC 3339; the credential is refused from this instant on (end of a rotation grace period). */
  notAfter?: string;
  /** Free text for people (which namespace or Repository it belongs to); never a secret. */
  description?: string;
}

/**
 * What a Kubernetes ServiceAccount may do when it presents its own token (docs/identity.md): the
 * token service validates the token (TokenReview) and grants these. No secret is stored.
 */
export interface ServiceAccountGrant {
  namespace: string;
  name: string;
  grants: Grant[];
}

export interface CredentialStore {
  version: typeof credentialStoreVersion;
  /** Anyone, without credentials, may pull every repository. */
  anonymousPull: boolean;
  credentials: CredentialEntry[];
  /** ServiceAccounts' grants (left out when there are none; older token services ignore it). */
  serviceAccounts?: ServiceAccountGrant[];
}

/** A store entry prepared for fast checks: hash bytes decoded, patterns compiled. */
export interface CompiledEntry {
  entry: CredentialEntry;
  hash: Buffer;
  notBefore?: number;
  notAfter?: number;
  grants: { match: (path: string) => boolean; actions: ReadonlySet<RepositoryAction> }[];
}

export interface CompiledStore {
  anonymousPull: boolean;
  byUsername: ReadonlyMap<string, CompiledEntry[]>;
  size: number;
  /** ServiceAccounts' compiled grants by `<namespace>/<name>` (serviceAccountKey). */
  serviceAccounts?: ReadonlyMap<string, CompiledEntry['grants']>;
}

export type ParseResult<T> = { success: true; data: T } | { success: false; error: string };

/** An entry the reader left out, and why (secret-free). */
export interface SkippedEntry {
  /** The shard it was in (a sharded store, src/credentials/sharded.ts). */
  shard?: number;
  /** Position in `credentials`. */
  index: number;
  /** The entry's username when it is a valid one (so a person can find it), else undefined. */
  username?: string;
  error: string;
}

export type StoreParseResult =
  { success: true; data: CredentialStore; skipped: SkippedEntry[] } | { success: false; error: string };

const hashPattern = /^sha256:[0-9a-f]{64}$/;
const globOptions = { dot: true, nonegate: true, noextglob: true } as const;

// A pattern that is a repository name (no glob syntax in that grammar) matches exactly itself: a
// set lookup, no compiled matcher. berth grants a namespace its Repositories' exact paths, so
// most patterns are literal, and a store of 10,000 namespaces compiles in milliseconds.
const isLiteral = (pattern: string): boolean => isRepositoryName(pattern);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseTime(v: unknown, where: string): ParseResult<number | undefined> {
  if (v === undefined) return { success: true, data: undefined };
  if (typeof v !== 'string') return { success: false, error: `${where} must be an RFC 3339 string` };
  const t = Date.parse(v);
  if (Number.isNaN(t))
    return { success: false, error: `${where} is not a valid time: ${JSON.stringify(v).slice(0, 60)}` };
  return { success: true, data: t };
}

/** Validates one grant; the error names the field. */
export function parseGrant(v: unknown, where: string): ParseResult<Grant> {
  if (!isRecord(v)) return { success: false, error: `${where} must be an object` };
  const { repositories, actions } = v;
  if (
    !Array.isArray(repositories) ||
    repositories.length === 0 ||
    !repositories.every((r) => typeof r === 'string' && r !== '')
  )
    return { success: false, error: `${where}.repositories must be a non-empty list of patterns` };
  if (!Array.isArray(actions) || actions.length === 0)
    return { success: false, error: `${where}.actions must be a non-empty list` };
  for (const a of actions)
    if (!(repositoryActions as readonly unknown[]).includes(a))
      return {
        success: false,
        error: `${where}.actions: unknown action ${JSON.stringify(a)?.slice(0, 40)} (pull, push, delete or *)`,
      };
  try {
    for (const r of repositories as string[]) if (!isLiteral(r)) picomatch(r, globOptions);
  } catch {
    return { success: false, error: `${where}.repositories: a pattern cannot be compiled` };
  }
  return {
    success: true,
    data: { repositories: repositories as string[], actions: actions as RepositoryAction[] },
  };
}

/** Validates one store entry; the error names the field, never a value that could be secret. */
/** `<where>.grants`: a list of grants, each valid. */
function parseGrants(grants: unknown, where: string): ParseResult<Grant[]> {
  if (!Array.isArray(grants)) return { success: false, error: `${where}.grants must be a list` };
  const parsed: Grant[] = [];
  for (const [i, g] of grants.entries()) {
    const r = parseGrant(g, `${where}.grants[${i}]`);
    if (!r.success) return r;
    parsed.push(r.data);
  }
  return { success: true, data: parsed };
}

export function parseCredentialEntry(v: unknown, where: string): ParseResult<CredentialEntry> {
  if (!isRecord(v)) return { success: false, error: `${where} must be an object` };
  const { username, secretHash, grants, catalog, notBefore, notAfter, description } = v;
  if (typeof username !== 'string' || !usernamePattern.test(username))
    return { success: false, error: `${where}.username must match ${usernamePattern.source}` };
  // The hash is not secret, but say nothing about its value anyway.
  if (typeof secretHash !== 'string' || !hashPattern.test(secretHash))
    return {
      success: false,
      error: `${where}.secretHash must be "sha256:" followed by 64 lowercase hex digits`,
    };
  const parsed = parseGrants(grants, where);
  if (!parsed.success) return parsed;
  const parsedGrants = parsed.data;
  if (catalog !== undefined && typeof catalog !== 'boolean')
    return { success: false, error: `${where}.catalog must be a boolean` };
  for (const [name, value] of [
    ['notBefore', notBefore],
    ['notAfter', notAfter],
  ] as const) {
    const r = parseTime(value, `${where}.${name}`);
    if (!r.success) return r;
  }
  if (description !== undefined && typeof description !== 'string')
    return { success: false, error: `${where}.description must be a string` };
  const entry: CredentialEntry = { username, secretHash, grants: parsedGrants };
  if (catalog !== undefined) entry.catalog = catalog;
  if (notBefore !== undefined) entry.notBefore = notBefore as string;
  if (notAfter !== undefined) entry.notAfter = notAfter as string;
  if (description !== undefined) entry.description = description;
  return { success: true, data: entry };
}

const namespacePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const subdomainPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether `namespace`/`name` can name a ServiceAccount (a DNS label and a DNS subdomain). */
export function isServiceAccountName(namespace: string, name: string): boolean {
  return (
    namespace.length <= 63 &&
    namespacePattern.test(namespace) &&
    name.length <= 253 &&
    subdomainPattern.test(name)
  );
}

/** The lookup key of a ServiceAccount in a compiled store. */
export function serviceAccountKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Validates one ServiceAccount's grants; the error names the field. */
export function parseServiceAccountGrant(v: unknown, where: string): ParseResult<ServiceAccountGrant> {
  if (!isRecord(v)) return { success: false, error: `${where} must be an object` };
  const { namespace, name, grants } = v;
  if (typeof namespace !== 'string' || typeof name !== 'string' || !isServiceAccountName(namespace, name))
    return { success: false, error: `${where}: namespace and name must name a ServiceAccount` };
  const parsed = parseGrants(grants, where);
  if (!parsed.success) return parsed;
  return { success: true, data: { namespace, name, grants: parsed.data } };
}

/** The valid ServiceAccount entries of `list` and the skipped ones (index, reason). */
export function parseServiceAccountGrants(
  list: unknown[],
  shard?: number,
): { serviceAccounts: ServiceAccountGrant[]; skipped: SkippedEntry[] } {
  const serviceAccounts: ServiceAccountGrant[] = [];
  const skipped: SkippedEntry[] = [];
  for (const [index, e] of list.entries()) {
    const r = parseServiceAccountGrant(e, `serviceAccounts[${index}]`);
    if (r.success) serviceAccounts.push(r.data);
    else skipped.push({ ...(shard === undefined ? {} : { shard }), index, error: r.error });
  }
  return { serviceAccounts, skipped };
}

/**
 * Validates a parsed JSON value as a credential store. Invalid entries are skipped and listed;
 * errors never contain secret material.
 */
export function parseCredentialStore(value: unknown): StoreParseResult {
  if (!isRecord(value)) return { success: false, error: 'the credential store must be a JSON object' };
  if (value.version !== credentialStoreVersion)
    return {
      success: false,
      error: `unsupported credential store version ${String(JSON.stringify(value.version)).slice(0, 40)} (this build reads ${credentialStoreVersion})`,
    };
  const anonymousPull = value.anonymousPull ?? false;
  if (typeof anonymousPull !== 'boolean') return { success: false, error: 'anonymousPull must be a boolean' };
  if (!Array.isArray(value.credentials)) return { success: false, error: 'credentials must be a list' };
  const credentials: CredentialEntry[] = [];
  const skipped: SkippedEntry[] = [];
  for (const [index, e] of (value.credentials as unknown[]).entries()) {
    const r = parseCredentialEntry(e, `credentials[${index}]`);
    if (r.success) {
      credentials.push(r.data);
      continue;
    }
    const username = isRecord(e) ? e.username : undefined;
    skipped.push({
      index,
      ...(typeof username === 'string' && usernamePattern.test(username) ? { username } : {}),
      error: r.error,
    });
  }
  const data: CredentialStore = { version: credentialStoreVersion, anonymousPull, credentials };
  if (value.serviceAccounts !== undefined) {
    if (!Array.isArray(value.serviceAccounts))
      return { success: false, error: 'serviceAccounts must be a list' };
    const sa = parseServiceAccountGrants(value.serviceAccounts as unknown[]);
    data.serviceAccounts = sa.serviceAccounts;
    skipped.push(...sa.skipped);
  }
  return { success: true, data, skipped };
}

/** Parses the store's file text. */
export function parseCredentialStoreText(text: string): StoreParseResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { success: false, error: `the credential store is not valid JSON: ${(err as Error).message}` };
  }
  return parseCredentialStore(json);
}

/** The store's canonical text (stable key order as built, 2-space indent, trailing newline). */
export function serializeCredentialStore(store: CredentialStore): string {
  return `${JSON.stringify(store, null, 2)}\n`;
}

/** A matcher for `patterns`: literal ones by set lookup, globs compiled once on first use. */
function matcher(patterns: string[]): (path: string) => boolean {
  const literal = new Set(patterns.filter(isLiteral));
  const globs = patterns.filter((p) => !isLiteral(p));
  if (globs.length === 0) return (path) => literal.has(path);
  let glob: ((path: string) => boolean) | undefined;
  return (path) => literal.has(path) || (glob ??= picomatch(globs, globOptions))(path);
}

type CompiledGrants = CompiledEntry['grants'];

/** Compiles grants; entries that share a grants array (a sharded store's grant sets) share the result. */
export function compileGrants(grants: Grant[], cache?: Map<Grant[], CompiledGrants>): CompiledGrants {
  const cached = cache?.get(grants);
  if (cached) return cached;
  const compiled = grants.map((g) => ({ match: matcher(g.repositories), actions: new Set(g.actions) }));
  cache?.set(grants, compiled);
  return compiled;
}

/** What a reader already decoded of an entry (a sharded store's), so compiling does not again. */
export interface PreparedEntry {
  hash: Buffer;
  notBefore?: number;
  notAfter?: number;
}

/**
 * Groups valid entries by username: patterns become matchers, hashes become bytes. `prepared`,
 * when given, holds each entry's decoded hash and times (same order as `entries`).
 */
export function compileEntries(
  entries: readonly CredentialEntry[],
  byUsername = new Map<string, CompiledEntry[]>(),
  prepared?: readonly PreparedEntry[],
): Map<string, CompiledEntry[]> {
  const cache = new Map<Grant[], CompiledGrants>();
  for (const [i, entry] of entries.entries()) {
    const ready = prepared?.[i];
    const compiled: CompiledEntry = {
      entry,
      hash: ready?.hash ?? Buffer.from(entry.secretHash.slice('sha256:'.length), 'hex'),
      grants: compileGrants(entry.grants, cache),
    };
    if (ready) {
      if (ready.notBefore !== undefined) compiled.notBefore = ready.notBefore;
      if (ready.notAfter !== undefined) compiled.notAfter = ready.notAfter;
    } else {
      if (entry.notBefore !== undefined) compiled.notBefore = Date.parse(entry.notBefore);
      if (entry.notAfter !== undefined) compiled.notAfter = Date.parse(entry.notAfter);
    }
    const list = byUsername.get(entry.username);
    if (list) list.push(compiled);
    else byUsername.set(entry.username, [compiled]);
  }
  return byUsername;
}

/** ServiceAccounts' grants by serviceAccountKey, compiled (one ServiceAccount's entries unioned). */
export function compileServiceAccounts(
  list: readonly ServiceAccountGrant[],
  into = new Map<string, CompiledGrants>(),
): Map<string, CompiledGrants> {
  const cache = new Map<Grant[], CompiledGrants>();
  for (const sa of list) {
    const key = serviceAccountKey(sa.namespace, sa.name);
    into.set(key, [...(into.get(key) ?? []), ...compileGrants(sa.grants, cache)]);
  }
  return into;
}

/** Compiles a valid store for lookups: patterns become matchers, hashes become bytes. */
export function compileCredentialStore(store: CredentialStore): CompiledStore {
  const byUsername = compileEntries(store.credentials);
  return {
    anonymousPull: store.anonymousPull,
    byUsername,
    size: store.credentials.length,
    serviceAccounts: compileServiceAccounts(store.serviceAccounts ?? []),
  };
}
