// Scopes: what a client asks for (`repository:team-a/web:pull,push`, `registry:catalog:*`) and
// what a credential is granted of it. The grant is the intersection of the request with the
// credential's grants; what is not granted is simply left out (the Docker token specification),
// and the registry then refuses the operation.
import { isRepositoryName } from './repository-name.ts';
import type { CompiledEntry, RepositoryAction } from './store.ts';

export interface Scope {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

/** One entry of the token's `access` claim, exactly as Distribution reads it. */
export interface ResourceActions {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

const scopePattern = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?:(.+):([a-z*]+(?:,[a-z*]+)*)$/;

/** Parses one scope string; undefined when it is not in the `type[(class)]:name:actions` form. */
export function parseScope(text: string): Scope | undefined {
  const m = scopePattern.exec(text);
  if (!m) return undefined;
  const [, type = '', cls, name = '', actions = ''] = m;
  const scope: Scope = { type, name, actions: [...new Set(actions.split(','))] };
  if (cls !== undefined) scope.class = cls;
  return scope;
}

/**
 * Splits the `scope` parameters of a token request (repeated parameters, each possibly holding
 * several space-separated scopes, as the OAuth2 form sends them) into parsed scopes and the
 * strings that could not be parsed.
 */
export function parseScopes(params: string[]): { scopes: Scope[]; invalid: string[] } {
  const scopes: Scope[] = [];
  const invalid: string[] = [];
  for (const param of params)
    for (const text of param.split(' ')) {
      if (text === '') continue;
      const s = parseScope(text);
      if (s) scopes.push(s);
      else invalid.push(text);
    }
  return { scopes, invalid };
}

/**
 * Who is asking: an authenticated credential, a ServiceAccount whose token the API server vouched
 * for (with the grants Repositories give it: possibly none), or nobody (anonymous).
 */
export type Principal =
  | { kind: 'credential'; entry: CompiledEntry }
  | { kind: 'serviceAccount'; subject: string; grants: CompiledEntry['grants'] }
  | { kind: 'anonymous'; anonymousPull: boolean };

/** The name a principal is known by (a token's `sub`, the audit log's subject); empty for anonymous. */
export function principalSubject(principal: Principal): string {
  if (principal.kind === 'credential') return principal.entry.entry.username;
  if (principal.kind === 'serviceAccount') return principal.subject;
  return '';
}

const concreteActions: readonly RepositoryAction[] = ['pull', 'push', 'delete'];

/** The actions `principal` holds on repository `name`. */
function repositoryActionsFor(principal: Principal, name: string): Set<RepositoryAction> {
  const held = new Set<RepositoryAction>();
  if (principal.kind === 'anonymous') {
    if (principal.anonymousPull) held.add('pull');
    return held;
  }
  const grants = principal.kind === 'credential' ? principal.entry.grants : principal.grants;
  for (const grant of grants) {
    if (!grant.match(name)) continue;
    for (const a of grant.actions) held.add(a);
  }
  if (held.has('*')) for (const a of concreteActions) held.add(a);
  return held;
}

/** The actions of `scope` that `principal` is granted (possibly none). */
export function grantedActions(principal: Principal, scope: Scope): string[] {
  if (scope.type === 'repository') {
    if (!isRepositoryName(scope.name)) return [];
    const held = repositoryActionsFor(principal, scope.name);
    return scope.actions.filter((a) => held.has(a as RepositoryAction));
  }
  if (scope.type === 'registry' && scope.name === 'catalog') {
    const allowed = principal.kind === 'credential' && principal.entry.entry.catalog === true;
    return allowed ? scope.actions.filter((a) => a === '*') : [];
  }
  return [];
}

export interface AccessDecision {
  /** The token's `access` claim: only resources with at least one granted action. */
  access: ResourceActions[];
  /** Requested actions that were not granted, per resource, for the audit log. */
  refused: { scope: string; actions: string[] }[];
}

function scopeKey(s: { type: string; class?: string; name: string }): string {
  return `${s.type}${s.class ? `(${s.class})` : ''}:${s.name}`;
}

/** Decides a whole request: merges repeated resources, grants what is allowed, lists the rest. */
export function decideAccess(principal: Principal, scopes: Scope[]): AccessDecision {
  const merged = new Map<string, Scope>();
  for (const s of scopes) {
    const key = scopeKey(s);
    const prev = merged.get(key);
    if (prev) prev.actions = [...new Set([...prev.actions, ...s.actions])];
    else merged.set(key, { ...s, actions: [...s.actions] });
  }
  const access: ResourceActions[] = [];
  const refused: AccessDecision['refused'] = [];
  for (const [key, scope] of merged) {
    const granted = grantedActions(principal, scope);
    if (granted.length > 0) {
      const ra: ResourceActions = { type: scope.type, name: scope.name, actions: granted };
      if (scope.class !== undefined) ra.class = scope.class;
      access.push(ra);
    }
    const denied = scope.actions.filter((a) => !granted.includes(a));
    if (denied.length > 0) refused.push({ scope: key, actions: denied });
  }
  return { access, refused };
}
