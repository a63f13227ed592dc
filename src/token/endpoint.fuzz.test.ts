// Fuzzing the token endpoint over HTTP (fast-check): berth's token server on an ephemeral loopback
// port, each case a generated credential store (users, rotated secrets, grants, validity windows,
// anonymous pulls) and one generated request (method, Authorization header, OAuth2 form or raw
// body, scopes, service, raw query text). What must hold for every case:
// - no 5xx, and only the statuses the endpoint documents;
// - a token is issued only to a credential the request really carried (or to nobody, when the
//   store allows anonymous pulls), and its `access` claim holds no action on any resource that the
//   store's entries for that credential do not grant (checked against the store, decoding the JWT);
// - a well-formed request with a currently valid credential gets a token (no false refusals);
// - no plain secret of the store ever reaches the log.
// The number of cases and their outcomes are printed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { decodeJwt } from 'jose';
import picomatch from 'picomatch';
import winston from 'winston';
import { hashSecret } from '../credentials/secret.ts';
import {
  compileCredentialStore,
  parseCredentialStore,
  type CompiledStore,
  type CredentialEntry,
  type CredentialStore,
} from '../credentials/store.ts';
import { createSigningKey } from '../pki/certificates.ts';
import { createTokenMetrics } from './metrics.ts';
import { startTokenServer, type RunningTokenServer } from './server.ts';
import { TokenSigner } from './signer.ts';
import { CredentialStoreFile } from './store-file.ts';

const now = new Date('2026-11-24T09:00:00Z');
const settings = { issuer: 'berth/registry-system/main', service: 'main.registry-system', ttlMs: 300_000 };
const numRuns = Number(process.env.BERTH_FUZZ_RUNS ?? 10_000);

/** The store the server reads: switched per case (the cases run one after the other). */
class SwitchedStore extends CredentialStoreFile {
  store: CompiledStore = compileCredentialStore({ version: 1, anonymousPull: false, credentials: [] });
  override current(): CompiledStore {
    return this.store;
  }
}

// ---- generated stores ------------------------------------------------------------------------

interface GeneratedEntry {
  entry: CredentialEntry;
  /** The plain secret whose hash the entry holds. */
  secret: string;
}
interface GeneratedStore {
  store: CredentialStore;
  entries: GeneratedEntry[];
}

const usernames = ['admin', 'pull.team-a', 'push.team-a.web', 'u', 'x@y.z', 'A-b_c'];
const secretText = fc.string({ minLength: 0, maxLength: 24, unit: 'grapheme-ascii' });
const patterns = [
  '**',
  'team-a/*',
  'team-a/**',
  'team-a/web',
  'team-b/web',
  '{team-a,team-b}/api',
  'team-?/web',
  'team-[ab]/x',
  '*',
  '*/web',
  'team-a',
];
const grant = fc.record({
  repositories: fc.uniqueArray(fc.constantFrom(...patterns), { minLength: 1, maxLength: 3 }),
  actions: fc.uniqueArray(fc.constantFrom('pull', 'push', 'delete', '*'), { minLength: 1, maxLength: 3 }),
});
const at = (min: number, max: number) =>
  fc.integer({ min, max }).map((s) => new Date(now.getTime() + s * 1000).toISOString());
const entry = fc
  .record(
    {
      username: fc.constantFrom(...usernames),
      secret: secretText,
      grants: fc.array(grant, { maxLength: 3 }),
      catalog: fc.boolean(),
      notBefore: at(-7200, 1800), // mostly in force, sometimes not yet
      notAfter: at(-1800, 7200), // mostly in force, sometimes expired
    },
    { requiredKeys: ['username', 'secret', 'grants'] },
  )
  .map(({ secret, ...rest }): GeneratedEntry => {
    const e: CredentialEntry = {
      username: rest.username,
      secretHash: hashSecret(secret),
      grants: rest.grants,
    };
    if (rest.catalog !== undefined) e.catalog = rest.catalog;
    if (rest.notBefore !== undefined) e.notBefore = rest.notBefore;
    if (rest.notAfter !== undefined) e.notAfter = rest.notAfter;
    return { entry: e, secret };
  });
const generatedStore = fc
  .tuple(fc.array(entry, { minLength: 0, maxLength: 6 }), fc.boolean())
  .map(([entries, anonymousPull]): GeneratedStore => ({
    entries,
    store: { version: 1, anonymousPull, credentials: entries.map((e) => e.entry) },
  }));

// ---- generated requests ----------------------------------------------------------------------

const repositoryNames = [
  'team-a/web',
  'team-a/api',
  'team-b/web',
  'team-b/api',
  'team-a/x',
  'team-a/x/y',
  'team-c/web',
  'web',
  'TEAM-A/web',
  'team-a/../team-b/web',
  'team-a//web',
  'team-a/web:evil',
  '-x/y',
  'a'.repeat(256),
];
const actionLists = ['pull', 'push', 'delete', '*', 'pull,push', 'push,pull,delete', 'pull,pull', '*,pull'];
/** Well-formed scopes: `type[(class)]:name:actions` with lowercase actions. */
const wellFormedScope = fc.oneof(
  fc
    .tuple(fc.constantFrom(...repositoryNames), fc.constantFrom(...actionLists))
    .map(([n, a]) => `repository:${n}:${a}`),
  fc.constantFrom(
    'registry:catalog:*',
    'registry:catalog:pull',
    'repository(plugin):team-a/web:pull',
    'registry:other:*',
    'foo:team-a/web:pull',
  ),
);
const anyScope = fc.oneof(
  { weight: 19, arbitrary: wellFormedScope },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('repository:team-a/web:PULL', 'repository:team-a/web:', 'repository::pull', 'nonsense'),
    ),
  },
);

type CredentialChoice =
  | { kind: 'none' }
  | { kind: 'valid'; index: number }
  | { kind: 'wrong-secret'; index: number; secret: string }
  | { kind: 'random'; username: string; secret: string }
  | { kind: 'raw'; header: string };

const headerText = fc.string({
  maxLength: 80,
  // what an HTTP header value can carry: visible ASCII, space, and Latin-1 (not DEL)
  unit: fc
    .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff }))
    .map((c) => String.fromCharCode(c)),
});
const credentialChoice: fc.Arbitrary<CredentialChoice> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<CredentialChoice>({ kind: 'none' }) },
  { weight: 6, arbitrary: fc.nat(20).map<CredentialChoice>((index) => ({ kind: 'valid', index })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.nat(20), secretText)
      .map<CredentialChoice>(([index, secret]) => ({ kind: 'wrong-secret', index, secret })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.oneof(fc.constantFrom(...usernames), fc.string({ maxLength: 200 })), secretText)
      .map<CredentialChoice>(([username, secret]) => ({ kind: 'random', username, secret })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        headerText,
        headerText.map((t) => `Basic ${t}`),
        fc.string({ maxLength: 60 }).map((t) => `Basic ${Buffer.from(t).toString('base64')}`),
        fc.constantFrom('Bearer abc', 'Basic', 'Basic ', 'basic Og==', 'Basic ====', 'Basic @@@'),
      )
      .map<CredentialChoice>((header) => ({ kind: 'raw', header })),
  },
);

const serviceParam = fc.oneof(
  { weight: 4, arbitrary: fc.constant<string | undefined>(undefined) },
  { weight: 5, arbitrary: fc.constant<string | undefined>(settings.service) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map<string | undefined>((s) => s) },
);

interface GeneratedRequest {
  method: string;
  credential: CredentialChoice;
  scopes: string[];
  /** Several scopes in one space-separated parameter (the OAuth2 form) instead of repeated ones. */
  joinScopes: boolean;
  service: string | undefined;
  /** Raw text appended to the query string (GET) or sent as the body (POST), when set. */
  raw: string | undefined;
  contentType: string;
  grantType: string | undefined;
  oversized: boolean;
}

const request: fc.Arbitrary<GeneratedRequest> = fc.record({
  method: fc.oneof(
    { weight: 6, arbitrary: fc.constant('GET') },
    { weight: 3, arbitrary: fc.constant('POST') },
    { weight: 1, arbitrary: fc.constantFrom('PUT', 'DELETE', 'HEAD', 'OPTIONS') },
  ),
  credential: credentialChoice,
  scopes: fc.array(anyScope, { maxLength: 4 }),
  joinScopes: fc.boolean(),
  service: serviceParam,
  raw: fc.oneof(
    { weight: 9, arbitrary: fc.constant<string | undefined>(undefined) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.string({ maxLength: 60 }),
        fc.constantFrom(
          '%zz',
          '%',
          '&&&',
          '=x',
          'scope=%00',
          'scope=repository%3Ateam-a%2Fweb%3Apull%20',
          'a=b&a=c',
        ),
      ),
    },
  ),
  contentType: fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/x-www-form-urlencoded') },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'application/x-www-form-urlencoded; charset=utf-8',
        'APPLICATION/X-WWW-FORM-URLENCODED',
        'application/json',
        '',
        'text/plain',
      ),
    },
  ),
  grantType: fc.oneof(
    { weight: 8, arbitrary: fc.constant<string | undefined>('password') },
    {
      weight: 1,
      arbitrary: fc.constantFrom<string | undefined>(undefined, 'refresh_token', 'client_credentials', ''),
    },
  ),
  oversized: fc
    .boolean()
    .chain((b) => (b ? fc.boolean() : fc.constant(false)))
    .chain((b) => (b ? fc.boolean() : fc.constant(false))),
});

// ---- sending ---------------------------------------------------------------------------------

interface Sent {
  /** The (username, secret) the request carried in a form berth reads, if the test built it so. */
  presented?: { username: string; secret: string };
  /** Whether the request carried anything that could be a credential. */
  carriedCredential: boolean;
  status: number;
  body: string;
}

function credentialsOf(
  choice: CredentialChoice,
  g: GeneratedStore,
): { username: string; secret: string } | { raw: string } | undefined {
  const pick = (i: number) => g.entries[i % Math.max(1, g.entries.length)];
  switch (choice.kind) {
    case 'none':
      return undefined;
    case 'valid': {
      const e = pick(choice.index);
      return e ? { username: e.entry.username, secret: e.secret } : undefined;
    }
    case 'wrong-secret': {
      const e = pick(choice.index);
      return e ? { username: e.entry.username, secret: choice.secret } : undefined;
    }
    case 'random':
      return { username: choice.username, secret: choice.secret };
    case 'raw':
      return { raw: choice.header };
  }
}

let agent: http.Agent;
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function perform(base: string, r: GeneratedRequest, g: GeneratedStore): Promise<Sent> {
  const cred = credentialsOf(r.credential, g);
  const params = new URLSearchParams();
  if (r.service !== undefined) params.set('service', r.service);
  if (r.joinScopes && r.scopes.length > 0) params.set('scope', r.scopes.join(' '));
  else for (const s of r.scopes) params.append('scope', s);
  const headers: Record<string, string> = {};
  let presented: Sent['presented'];
  let carriedCredential = false;
  let body: string | undefined;
  let path = '/token';
  if (r.method === 'POST') {
    headers['content-type'] = r.contentType;
    if (r.grantType !== undefined) params.set('grant_type', r.grantType);
    if (cred && 'username' in cred) {
      params.set('username', cred.username);
      params.set('password', cred.secret);
      presented = cred;
      carriedCredential = true;
    } else if (cred && 'raw' in cred) {
      headers.authorization = cred.raw; // ignored by the OAuth2 form
    }
    body = r.raw ?? params.toString();
    if (r.raw !== undefined) carriedCredential = true; // raw text might spell username=…&password=…
    if (r.oversized) body = `${body}&pad=${'x'.repeat(17 * 1024)}`;
  } else {
    if (cred && 'username' in cred) {
      headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.secret}`).toString('base64')}`;
      presented = cred;
      carriedCredential = true;
    } else if (cred && 'raw' in cred) {
      headers.authorization = cred.raw;
      carriedCredential = cred.raw !== '';
    }
    const query = params.toString();
    // Raw text as it comes (malformed percent-escapes included); only what HTTP cannot carry in a
    // request line is escaped.
    const raw = r.raw?.replace(/[^\x21-\x7e]|#/g, (c) => encodeURIComponent(c));
    path = `/token?${query}${raw !== undefined ? `&${raw}` : ''}`;
  }
  const res = await send(`${base}${path}`, r.method, headers, body);
  return { ...(presented ? { presented } : {}), carriedCredential, status: res.status, body: res.body };
}

// ---- the oracle ------------------------------------------------------------------------------

const globOptions = { dot: true, nonegate: true, noextglob: true } as const;
const distributionName =
  /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$/;

const validAt = (e: CredentialEntry, t: number) =>
  (e.notBefore === undefined || t >= Date.parse(e.notBefore)) &&
  (e.notAfter === undefined || t < Date.parse(e.notAfter));

/** Whether `entries` (all of one credential) allow `action` on repository `name`. */
function allows(entries: CredentialEntry[], name: string, action: string): boolean {
  if (!distributionName.test(name) || name.length > 255) return false;
  return entries.some((e) =>
    e.grants.some(
      (g) =>
        picomatch(g.repositories, globOptions)(name) &&
        (g.actions.includes(action as never) ||
          (g.actions.includes('*') && ['pull', 'push', 'delete', '*'].includes(action))),
    ),
  );
}

const allowedStatuses = new Set([200, 400, 401, 404, 405, 413, 415]);

// ---- the test --------------------------------------------------------------------------------

let server: RunningTokenServer;
let storeFile: SwitchedStore;
let secretsInForce: string[] = [];
const leaks: string[] = [];

beforeAll(async () => {
  const logger = winston.createLogger({
    format: winston.format.json(),
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk: Buffer, _enc, cb) {
            const line = chunk.toString();
            for (const s of secretsInForce) if (s.length >= 8 && line.includes(s)) leaks.push(line);
            cb();
          },
        }),
      }),
    ],
  });
  const metrics = createTokenMetrics();
  const clock = { now: () => now.getTime() };
  storeFile = new SwitchedStore('/nonexistent/store.json', { logger, metrics, clock });
  const signer = new TokenSigner((await createSigningKey()).privateKeyPem);
  agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  server = await startTokenServer(
    settings,
    { clock, signer, logger, metrics, storeFile },
    {
      listen: { host: '127.0.0.1', port: 0 },
    },
  );
});

afterAll(async () => {
  agent?.destroy();
  await server?.close();
});

describe('the token endpoint, fuzzed over HTTP', () => {
  it(`issues nothing beyond the store, never fails with 5xx (${numRuns} cases)`, async () => {
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    let cases = 0;
    let tokens = 0;
    let grantedActions = 0;
    await fc.assert(
      fc.asyncProperty(generatedStore, request, async (g, r) => {
        cases++;
        const parsed = parseCredentialStore(JSON.parse(JSON.stringify(g.store)));
        expect(parsed.success && parsed.skipped).toEqual([]);
        storeFile.store = compileCredentialStore(g.store);
        secretsInForce = g.entries.map((e) => e.secret);
        const sent = await perform(server.url, r, g);
        count(`${r.method} ${sent.status}`);
        expect(allowedStatuses.has(sent.status) || (r.method === 'HEAD' && sent.status === 405)).toBe(true);
        if (sent.status !== 200) {
          // No false refusal: a well-formed GET with a currently valid credential gets a token.
          const wellFormed =
            r.method === 'GET' &&
            r.raw === undefined &&
            (r.service === undefined || r.service === settings.service) &&
            r.scopes.every((s) => /^[a-z0-9]+(?:\([a-z0-9]+\))?:[^\s]+:[a-z*]+(?:,[a-z*]+)*$/.test(s));
          const holder =
            sent.presented &&
            g.entries.some(
              (e) =>
                e.entry.username === sent.presented?.username &&
                e.secret === sent.presented.secret &&
                validAt(e.entry, now.getTime()),
            );
          if (wellFormed && holder) throw new Error(`refused a valid request: ${sent.status} ${sent.body}`);
          return;
        }
        const answer = JSON.parse(sent.body) as { token?: string; access_token?: string };
        const token = answer.token ?? answer.access_token ?? '';
        const claims = decodeJwt(token) as { sub?: string; iss?: string; aud?: unknown; access?: unknown };
        tokens++;
        expect(claims.iss).toBe(settings.issuer);
        expect(claims.aud).toBe(settings.service);
        const access = (claims.access ?? []) as { type: string; name: string; actions: string[] }[];
        if (claims.sub === '') {
          // Anonymous: only when the store allows it and nothing was presented; pull only.
          expect(g.store.anonymousPull).toBe(true);
          expect(sent.carriedCredential).toBe(false);
          expect(r.method).toBe('GET');
          for (const a of access) {
            expect(a.type).toBe('repository');
            expect(a.actions).toEqual(['pull']);
            expect(distributionName.test(a.name)).toBe(true);
          }
          grantedActions += access.reduce((n, a) => n + a.actions.length, 0);
          return;
        }
        // A credential: exactly the one presented, valid now.
        expect(sent.presented?.username).toBe(claims.sub);
        const entries = g.entries
          .filter(
            (e) =>
              e.entry.username === claims.sub &&
              e.secret === sent.presented?.secret &&
              validAt(e.entry, now.getTime()),
          )
          .map((e) => e.entry);
        expect(entries.length).toBeGreaterThan(0);
        for (const a of access) {
          expect(a.actions.length).toBeGreaterThan(0);
          for (const action of a.actions) {
            if (a.type === 'registry') {
              expect(a.name).toBe('catalog');
              expect(action).toBe('*');
              expect(entries.some((e) => e.catalog === true)).toBe(true);
            } else {
              expect(a.type).toBe('repository');
              if (!allows(entries, a.name, action))
                throw new Error(
                  `granted ${action} on ${a.name} to ${claims.sub}, which the store does not allow`,
                );
            }
            grantedActions++;
          }
        }
      }),
      { numRuns, interruptAfterTimeLimit: 120_000 },
    );
    const summary = [...outcomes.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    console.log(
      `token endpoint fuzz: ${cases} cases (each a generated store and request), ${tokens} tokens issued ` +
        `holding ${grantedActions} granted actions, all within the store; outcomes by method and status: ${summary}`,
    );
    expect(leaks).toEqual([]);
    expect(cases).toBeGreaterThanOrEqual(numRuns);
  }, 180_000);
});
