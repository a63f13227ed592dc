// The sharded credential store (version 2): the same store as version 1 (src/credentials/store.ts),
// laid out in a fixed number of shard documents so that no Kubernetes object passes its limits
// (a Secret's data may total 1 MiB) at tens of thousands of credentials.
//
// Each shard is one file (one key of one Secret; the token service mounts them all into one folder
// with a projected volume): `store.json` is shard 0 and the head, `store-<i>.json` is shard i.
// A credential lives in the shard `shardOf(username)`, so every credential of a username (a
// rotation's old and new secret) is in one file, and a change of one namespace's credential
// rewrites one shard, not the store.
//
//   {
//     "version": 2, "shards": 16, "shard": 0,
//     "anonymousPull": false,                                  // head (shard 0) only
//     "grants": [                                              // grant sets, each stored once
//       [{ "repositories": ["**"], "actions": ["*"] }],
//       [{ "repositories": ["team-a/web", "team-b/base"], "actions": ["pull"] }]
//     ],
//     "credentials": [
//       { "u": "admin", "h": "<base64url SHA-256>", "g": 0, "c": true },
//       { "u": "pull.team-a", "h": "...", "g": 1, "e": 1796189400123 }
//     ],
//     "serviceAccounts": [                                     // only when there are some
//       { "s": "team-a/ci", "g": 1 }
//     ]
//   }
//
// A ServiceAccount's grants (docs/identity.md) live in the shard of its username
// `system:serviceaccount:<namespace>:<name>` (`serviceAccountShard`), as `s` (`<namespace>/<name>`)
// and the index `g` of a grant set of that shard.
//
// Entry keys: `u` username, `h` the secret's SHA-256 (32 bytes as base64url: 43 characters, against
// 71 for `sha256:<hex>`; random, so no encoding or compression makes it smaller), `g` index of its
// grant set, `c` catalog, `b`/`e` notBefore/notAfter in milliseconds since the epoch. Descriptions
// are not stored (the token service never needs them): they follow from the username
// (`describeUsername`).
//
// The reader keeps version 1's robustness: an invalid entry is skipped and reported (shard, index,
// username when valid, reason; never secret material), an invalid grant set skips only the entries
// that use it, and a shard that is not a shard at all is refused alone.
import {
  parseGrant,
  type CredentialEntry,
  type CredentialStore,
  type Grant,
  type ParseResult,
  type PreparedEntry,
  type ServiceAccountGrant,
  type SkippedEntry,
  isServiceAccountName,
} from './store.ts';
import { usernamePattern } from './usernames.ts';

export const shardedStoreVersion = 2;

/** Shards of a sharded store: fixed, so the token service's pod spec never depends on the size. */
export const storeShards = 16;

/** The file (Secret key) of shard `i`: `store.json` for the head, `store-<i>.json` for the others. */
export function shardFileName(i: number, headName = 'store.json'): string {
  if (i === 0) return headName;
  const dot = headName.lastIndexOf('.');
  return dot > 0 ? `${headName.slice(0, dot)}-${i}${headName.slice(dot)}` : `${headName}-${i}`;
}

/**
 * The shard a username's credentials live in: FNV-1a (32 bits) of its UTF-16 code units. Stable
 * across versions (the writer alone decides placement; the reader does not depend on it), cheap
 * next to a SHA-256, and even enough over berth's usernames.
 */
export function shardOf(username: string, shards = storeShards): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < username.length; i++) {
    h ^= username.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/** What people read about a credential, from its username (berth's usernames say what they are). */
export function describeUsername(username: string): string | undefined {
  if (username === 'admin') return 'the Registry admin credential (status.adminSecret)';
  if (username.startsWith('pull.')) return `pull secret of namespace ${username.slice(5)}`;
  // push.<namespace>.<repository>: a namespace name has no dots
  const push = /^push\.([^.]+)\.(.+)$/.exec(username);
  if (push) return `push secret of Repository ${push[1]}/${push[2]}`;
  return undefined;
}

interface WireEntry {
  u: string;
  h: string;
  g: number;
  c?: true;
  b?: number;
  e?: number;
}

interface WireServiceAccount {
  s: string;
  g: number;
}

interface WireShard {
  version: typeof shardedStoreVersion;
  shards: number;
  shard: number;
  anonymousPull?: boolean;
  grants: Grant[][];
  credentials: WireEntry[];
  serviceAccounts: WireServiceAccount[];
}

/** The shard a ServiceAccount's grants live in: that of its Kubernetes username. */
export function serviceAccountShard(namespace: string, name: string, shards = storeShards): number {
  return shardOf(`system:serviceaccount:${namespace}:${name}`, shards);
}

const hexHash = /^sha256:([0-9a-f]{64})$/;

/**
 * The shard documents of `store` (index = shard). Entries keep their order within a shard;
 * grant sets are shared by content. Throws on an entry that is not valid (the writer checks
 * every entry first, src/model/store.ts).
 */
export function serializeShardedStore(store: CredentialStore, shards = storeShards): string[] {
  const docs: WireShard[] = [];
  const grantIndex: Map<string, number>[] = [];
  for (let i = 0; i < shards; i++) {
    docs.push({
      version: shardedStoreVersion,
      shards,
      shard: i,
      grants: [],
      credentials: [],
      serviceAccounts: [],
    });
    grantIndex.push(new Map());
  }
  (docs[0] as WireShard).anonymousPull = store.anonymousPull;
  // Grant sets are keyed by their JSON, computed once per distinct array (entries share arrays).
  const keys = new Map<Grant[], string>();
  const grantSet = (s: number, grants: Grant[]): number => {
    const doc = docs[s] as WireShard;
    const index = grantIndex[s] as Map<string, number>;
    let key = keys.get(grants);
    if (key === undefined) {
      key = JSON.stringify(grants);
      keys.set(grants, key);
    }
    let g = index.get(key);
    if (g === undefined) {
      g = doc.grants.length;
      doc.grants.push(grants);
      index.set(key, g);
    }
    return g;
  };
  let lastUsername = '';
  let s = 0;
  for (const entry of store.credentials) {
    if (entry.username !== lastUsername) s = shardOf((lastUsername = entry.username), shards);
    const doc = docs[s] as WireShard;
    const g = grantSet(s, entry.grants);
    const hex = hexHash.exec(entry.secretHash)?.[1];
    if (hex === undefined) throw new Error(`credential ${entry.username}: the hash is not sha256:<hex>`);
    const wire: WireEntry = { u: entry.username, h: Buffer.from(hex, 'hex').toString('base64url'), g };
    if (entry.catalog) wire.c = true;
    if (entry.notBefore !== undefined) wire.b = Date.parse(entry.notBefore);
    if (entry.notAfter !== undefined) wire.e = Date.parse(entry.notAfter);
    doc.credentials.push(wire);
  }
  for (const sa of store.serviceAccounts ?? []) {
    const at = serviceAccountShard(sa.namespace, sa.name, shards);
    (docs[at] as WireShard).serviceAccounts.push({
      s: `${sa.namespace}/${sa.name}`,
      g: grantSet(at, sa.grants),
    });
  }
  return docs.map(serializeShard);
}

/** One shard's text: one line per grant set and per entry (readable, diffable), trailing newline. */
function serializeShard(doc: WireShard): string {
  const head = { version: doc.version, shards: doc.shards, shard: doc.shard };
  const settings = doc.anonymousPull === undefined ? '' : `"anonymousPull":${doc.anonymousPull},`;
  const list = (items: unknown[]) =>
    items.length === 0 ? '[]' : `[\n${items.map((i) => JSON.stringify(i)).join(',\n')}\n]`;
  const serviceAccounts =
    doc.serviceAccounts.length === 0 ? '' : `,\n"serviceAccounts":${list(doc.serviceAccounts)}`;
  return (
    `${JSON.stringify(head).slice(0, -1)},${settings}\n"grants":${list(doc.grants)},\n` +
    `"credentials":${list(doc.credentials)}${serviceAccounts}}\n`
  );
}

/** A shard as read: its place, the head's settings, and its valid entries. */
export interface ParsedShard {
  shards: number;
  shard: number;
  /** Set in the head (shard 0) only. */
  anonymousPull?: boolean;
  credentials: CredentialEntry[];
  /** Each credential's decoded hash and times, in the same order (for compileEntries). */
  prepared: PreparedEntry[];
  /** ServiceAccounts' grants in this shard. */
  serviceAccounts: ServiceAccountGrant[];
  skipped: SkippedEntry[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const base64urlHash = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/; // 32 bytes: the last digit's low bits are 0
const maxTime = 8.64e15;

function validMillis(v: unknown): v is number | undefined {
  return v === undefined || (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= maxTime);
}

/** Validates one shard entry against its shard's grant sets (undefined: that set is invalid). */
function parseWireEntry(
  v: unknown,
  where: string,
  grants: (Grant[] | string)[],
): ParseResult<{ entry: CredentialEntry; prepared: PreparedEntry }> {
  if (!isRecord(v)) return { success: false, error: `${where} must be an object` };
  const { u, h, g, c, b, e } = v;
  if (typeof u !== 'string' || !usernamePattern.test(u))
    return { success: false, error: `${where}.u (username) must match ${usernamePattern.source}` };
  if (typeof h !== 'string' || !base64urlHash.test(h))
    return { success: false, error: `${where}.h must be a SHA-256 in base64url (43 characters)` };
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g >= grants.length)
    return { success: false, error: `${where}.g must be the index of one of the shard's grant sets` };
  const set = grants[g] as Grant[] | string;
  if (typeof set === 'string') return { success: false, error: `${where}.g: ${set}` };
  if (c !== undefined && typeof c !== 'boolean')
    return { success: false, error: `${where}.c (catalog) must be a boolean` };
  if (!validMillis(b))
    return { success: false, error: `${where}.b (notBefore) must be milliseconds since the epoch` };
  if (!validMillis(e))
    return { success: false, error: `${where}.e (notAfter) must be milliseconds since the epoch` };
  const hash = Buffer.from(h, 'base64url');
  const entry: CredentialEntry = { username: u, secretHash: `sha256:${hash.toString('hex')}`, grants: set };
  const prepared: PreparedEntry = { hash };
  if (c === true) entry.catalog = true;
  if (b !== undefined) {
    entry.notBefore = new Date(b).toISOString();
    prepared.notBefore = b;
  }
  if (e !== undefined) {
    entry.notAfter = new Date(e).toISOString();
    prepared.notAfter = e;
  }
  return { success: true, data: { entry, prepared } };
}

export type ShardParseResult = { success: true; data: ParsedShard } | { success: false; error: string };

interface ShardHeader {
  shards: number;
  anonymousPull: boolean | undefined;
  grants: unknown[];
  credentials: unknown[];
  serviceAccounts: unknown[];
}

/**
 * The layout fields of a shard (version, shard count and index, the head's anonymousPull) and its
 * two lists, checked in that order; the first problem refuses the shard. Pure.
 */
function parseShardHeader(
  value: unknown,
  expect: { shard: number; shards?: number },
): ParseResult<ShardHeader> {
  if (!isRecord(value)) return { success: false, error: 'the shard must be a JSON object' };
  if (value.version !== shardedStoreVersion)
    return {
      success: false,
      error: `unsupported shard version ${String(JSON.stringify(value.version)).slice(0, 40)} (this reader reads ${shardedStoreVersion})`,
    };
  const { shards, shard } = value;
  if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > 1024)
    return { success: false, error: 'shards must be a whole number from 1 to 1024' };
  if (expect.shards !== undefined && shards !== expect.shards)
    return { success: false, error: `the shard is one of ${shards}, the head says ${expect.shards}` };
  if (shard !== expect.shard) return { success: false, error: `the file holds shard ${String(shard)}` };
  let anonymousPull: boolean | undefined;
  if (expect.shard === 0) {
    const a = value.anonymousPull ?? false;
    if (typeof a !== 'boolean') return { success: false, error: 'anonymousPull must be a boolean' };
    anonymousPull = a;
  }
  if (!Array.isArray(value.grants)) return { success: false, error: 'grants must be a list' };
  if (!Array.isArray(value.credentials)) return { success: false, error: 'credentials must be a list' };
  const serviceAccounts = value.serviceAccounts ?? [];
  if (!Array.isArray(serviceAccounts)) return { success: false, error: 'serviceAccounts must be a list' };
  return {
    success: true,
    data: {
      shards,
      anonymousPull,
      grants: value.grants as unknown[],
      credentials: value.credentials as unknown[],
      serviceAccounts: serviceAccounts as unknown[],
    },
  };
}

/** Each grant set validated once; an invalid one becomes its error, carried to the entries using it. Pure. */
function parseGrantSets(sets: unknown[]): (Grant[] | string)[] {
  return sets.map((set, i) => {
    if (!Array.isArray(set)) return `grants[${i}] must be a list`;
    const parsed: Grant[] = [];
    for (const [j, g] of set.entries()) {
      const r = parseGrant(g, `grants[${i}][${j}]`);
      if (!r.success) return r.error;
      parsed.push(r.data);
    }
    return parsed;
  });
}

/** The shard's entries: the valid ones (with their prepared form) and the skipped ones, reported. Pure. */
function parseEntries(
  list: unknown[],
  shard: number,
  grants: (Grant[] | string)[],
): Pick<ParsedShard, 'credentials' | 'prepared' | 'skipped'> {
  const credentials: CredentialEntry[] = [];
  const prepared: PreparedEntry[] = [];
  const skipped: SkippedEntry[] = [];
  for (const [index, e] of list.entries()) {
    const r = parseWireEntry(e, `credentials[${index}]`, grants);
    if (r.success) {
      credentials.push(r.data.entry);
      prepared.push(r.data.prepared);
      continue;
    }
    const u = isRecord(e) ? e.u : undefined;
    skipped.push({
      shard,
      index,
      ...(typeof u === 'string' && usernamePattern.test(u) ? { username: u } : {}),
      error: r.error,
    });
  }
  return { credentials, prepared, skipped };
}

/** The shard's ServiceAccount entries (`{s: "<namespace>/<name>", g}`): the valid ones and the skipped ones. Pure. */
function parseWireServiceAccounts(
  list: unknown[],
  shard: number,
  grants: (Grant[] | string)[],
): { serviceAccounts: ServiceAccountGrant[]; skipped: SkippedEntry[] } {
  const serviceAccounts: ServiceAccountGrant[] = [];
  const skipped: SkippedEntry[] = [];
  for (const [index, e] of list.entries()) {
    const where = `serviceAccounts[${index}]`;
    const fail = (error: string) => skipped.push({ shard, index, error });
    if (!isRecord(e)) {
      fail(`${where} must be an object`);
      continue;
    }
    const [namespace = '', name = '', ...rest] = typeof e.s === 'string' ? e.s.split('/') : [];
    if (rest.length > 0 || !isServiceAccountName(namespace, name)) {
      fail(`${where}.s must be <namespace>/<name> of a ServiceAccount`);
      continue;
    }
    const g = e.g;
    if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g >= grants.length) {
      fail(`${where}.g must be the index of one of the shard's grant sets`);
      continue;
    }
    const set = grants[g] as Grant[] | string;
    if (typeof set === 'string') fail(`${where}.g: ${set}`);
    else serviceAccounts.push({ namespace, name, grants: set });
  }
  return { serviceAccounts, skipped };
}

/**
 * Validates a parsed JSON value as a shard of a sharded store. `expect` is what the head said
 * (shard count) and which file this is: a shard of another layout is refused, never mixed in.
 */
export function parseShard(value: unknown, expect: { shard: number; shards?: number }): ShardParseResult {
  const header = parseShardHeader(value, expect);
  if (!header.success) return header;
  const { shards, anonymousPull } = header.data;
  const grants = parseGrantSets(header.data.grants);
  const entries = parseEntries(header.data.credentials, expect.shard, grants);
  const sa = parseWireServiceAccounts(header.data.serviceAccounts, expect.shard, grants);
  return {
    success: true,
    data: {
      shards,
      shard: expect.shard,
      ...(anonymousPull === undefined ? {} : { anonymousPull }),
      ...entries,
      serviceAccounts: sa.serviceAccounts,
      skipped: [...entries.skipped, ...sa.skipped],
    },
  };
}

/** Parses one shard file's text. */
export function parseShardText(text: string, expect: { shard: number; shards?: number }): ShardParseResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { success: false, error: `the shard is not valid JSON: ${(err as Error).message}` };
  }
  return parseShard(json, expect);
}
