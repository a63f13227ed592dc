// berth's token service in front of the real Distribution registry, driven by a real client
// (crane) with docker configs exactly as berth's pull and push Secrets hold them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { TokenSigner } from '../../src/token/signer.ts';
import { createCA } from '../../src/pki/certificates.ts';
import { waitFor } from '../harness/net.ts';
import type { RegistryClient } from '../harness/registry.ts';
import {
  issuer,
  mint,
  service,
  startTokenGround,
  storeText,
  type Credential,
  type TokenGround,
} from './fixture.ts';

const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });
const team = mint({ username: 'ns-team-a', grants: [{ repositories: ['team-a/*'], actions: ['pull'] }] });
const pusher = mint({
  username: 'push-team-a-web',
  grants: [{ repositories: ['team-a/web'], actions: ['pull', 'push'] }],
});
const everyone = [admin, team, pusher];

let g: TokenGround;
let host: string;
let webDigest: string;

const refused = /401|UNAUTHORIZED|DENIED|authentication required|unauthorized/i;

/** Tries to push a new image; returns crane's error text, or undefined when the push worked. */
async function pushError(client: RegistryClient, ref: string): Promise<string | undefined> {
  try {
    await client.pushRandomImage(ref);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

async function tokenFor(
  credential: Credential | undefined,
  scope: string,
): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = credential
    ? {
        authorization: `Basic ${Buffer.from(`${credential.username}:${credential.secret}`).toString('base64')}`,
      }
    : {};
  return g.get(
    `${g.tokenService.server.url}/token?service=${service}&scope=${encodeURIComponent(scope)}`,
    headers,
  );
}

beforeAll(async () => {
  g = await startTokenGround({ credentials: everyone });
  host = g.registry.host;
  // Content that the other tests read.
  const a = g.client(admin);
  webDigest = await a.pushRandomImage(`${host}/team-a/web:v1`, { layers: 2, layerBytes: 2048 });
  await a.pushRandomImage(`${host}/team-b/app:v1`);
}, 120_000);

afterAll(async () => {
  await g?.stop();
});

describe('the admin credential', () => {
  it('pushes and pulls by tag and by digest, and lists the catalog', async () => {
    const a = g.client(admin);
    const digest = await a.pushRandomImage(`${host}/ops/tool:1.0`);
    expect(await a.tags(`${host}/ops/tool`)).toEqual(['1.0']);
    const byTag = await a.pull(`${host}/ops/tool:1.0`);
    expect(byTag.stderr).toBe('');
    expect(byTag.ok).toBe(true);
    const byDigest = await a.pull(`${host}/team-a/web@${webDigest}`);
    expect(byDigest.ok).toBe(true);
    expect(await a.digest(`${host}/ops/tool:1.0`)).toBe(digest);
    expect((await a.catalog(host)).sort()).toEqual(['ops/tool', 'team-a/web', 'team-b/app']);
  });
});

describe('a push credential for team-a/web', () => {
  it('pushes and pulls its own path', async () => {
    const p = g.client(pusher);
    const digest = await p.pushRandomImage(`${host}/team-a/web:v2`);
    expect(await p.digest(`${host}/team-a/web:v2`)).toBe(digest);
    expect((await p.pull(`${host}/team-a/web:v1`)).ok).toBe(true);
  });

  it.each(['team-a/api:v1', 'team-b/app:v2', 'team-a/web/sub:v1'])('is denied a push to %s', async (ref) => {
    expect(await pushError(g.client(pusher), `${host}/${ref}`)).toMatch(refused);
    expect((await g.client(admin).run(['digest', `${host}/${ref}`])).ok).toBe(false);
  });

  it('cannot pull another team or list the catalog', async () => {
    const p = g.client(pusher);
    const res = await p.pull(`${host}/team-b/app:v1`);
    expect(res.ok).toBe(false);
    expect(res.stderr).toMatch(refused);
    const cat = await p.run(['catalog', host]);
    expect(cat.ok).toBe(false);
  });
});

describe('a namespace pull credential for team-a/*', () => {
  it('pulls team-a repositories by tag and digest', async () => {
    const t = g.client(team);
    expect((await t.pull(`${host}/team-a/web:v1`)).ok).toBe(true);
    expect((await t.pull(`${host}/team-a/web@${webDigest}`)).ok).toBe(true);
    // v1 from the setup (the push-credential test may have added v2 by now)
    expect(await t.tags(`${host}/team-a/web`)).toContain('v1');
  });

  it('is denied team-b and pushes', async () => {
    const t = g.client(team);
    const pull = await t.pull(`${host}/team-b/app:v1`);
    expect(pull.ok).toBe(false);
    expect(pull.stderr).toMatch(refused);
    expect(await pushError(t, `${host}/team-a/web:evil`)).toMatch(refused);
    expect(await g.client(admin).tags(`${host}/team-a/web`)).not.toContain('evil');
  });
});

describe('refused credentials', () => {
  it.each<[string, Credential]>([
    ['a wrong password', { ...admin, secret: 'not-the-secret' }],
    ['an unknown user', { ...admin, username: 'mallory' }],
  ])('%s gets 401 from the token service and cannot pull', async (_name, credential) => {
    const res = await g.client(credential).pull(`${host}/team-a/web:v1`);
    expect(res.ok).toBe(false);
    expect(res.stderr).toMatch(refused);
    const direct = await tokenFor(credential, 'repository:team-a/web:pull');
    expect(direct.status).toBe(401);
    expect(JSON.parse(direct.body)).toEqual({
      errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }],
    });
  });

  it('writes audit lines for grants and refusals without any secret', () => {
    const lines = g.auditLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.event === 'token.issued' && l.subject === 'admin')).toBe(true);
    expect(
      lines.some((l) => l.event === 'token.refused' && l.reason === 'wrong-secret' && l.subject === 'admin'),
    ).toBe(true);
    expect(lines.some((l) => l.event === 'token.refused' && l.reason === 'unknown-user')).toBe(true);
    const all = g.auditLines.join('\n');
    for (const c of everyone) {
      expect(all).not.toContain(c.secret);
      expect(all).not.toContain(Buffer.from(`${c.username}:${c.secret}`).toString('base64'));
    }
  });
});

describe('tokens at the registry', () => {
  const manifestUrl = () => `${g.registry.url}/v2/team-a/web/manifests/v1`;
  const accept = {
    accept:
      'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
  };
  const access = [{ type: 'repository', name: 'team-a/web', actions: ['pull'] }];

  it('accepts a token from the token service (GET, as docker and crane fetch it)', async () => {
    const res = await tokenFor(team, 'repository:team-a/web:pull');
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as { token: string; expires_in: number };
    expect(body.expires_in).toBe(300);
    expect(decodeJwt(body.token)).toMatchObject({ iss: issuer, aud: service, sub: 'ns-team-a', access });
    const m = await g.get(manifestUrl(), { ...accept, authorization: `Bearer ${body.token}` });
    expect(m.status).toBe(200);
  });

  it('accepts a token from the OAuth2 password form (as containerd fetches it)', async () => {
    const form = new URLSearchParams({
      grant_type: 'password',
      service,
      client_id: 'containerd',
      scope: 'repository:team-a/web:pull',
      username: team.username,
      password: team.secret,
    });
    const res = await g.post(`${g.tokenService.server.url}/token`, form);
    expect(res.status).toBe(200);
    const { access_token } = JSON.parse(res.body) as { access_token: string };
    const m = await g.get(manifestUrl(), { ...accept, authorization: `Bearer ${access_token}` });
    expect(m.status).toBe(200);
  });

  it('refuses an expired token signed with the trusted key', async () => {
    const signer = new TokenSigner(g.signing.keyPem);
    const valid = await signer.sign({
      issuer,
      subject: 'x',
      audience: service,
      access,
      issuedAt: new Date(),
      ttlMs: 300_000,
    });
    const expired = await signer.sign({
      issuer,
      subject: 'x',
      audience: service,
      access,
      issuedAt: new Date(Date.now() - 3600_000),
      ttlMs: 300_000, // expired 55 minutes ago, far beyond the registry's 60 s leeway
    });
    expect((await g.get(manifestUrl(), { ...accept, authorization: `Bearer ${valid.token}` })).status).toBe(
      200,
    );
    const res = await g.get(manifestUrl(), { ...accept, authorization: `Bearer ${expired.token}` });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('refuses a token signed by another key, or for another audience', async () => {
    const other = await createCA({
      commonName: 'intruder',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
    });
    const forged = await new TokenSigner(other.keyPem).sign({
      issuer,
      subject: 'x',
      audience: service,
      access,
      issuedAt: new Date(),
      ttlMs: 300_000,
    });
    expect((await g.get(manifestUrl(), { ...accept, authorization: `Bearer ${forged.token}` })).status).toBe(
      401,
    );
    const wrongAudience = await new TokenSigner(g.signing.keyPem).sign({
      issuer,
      subject: 'x',
      audience: 'elsewhere',
      access,
      issuedAt: new Date(),
      ttlMs: 300_000,
    });
    expect(
      (await g.get(manifestUrl(), { ...accept, authorization: `Bearer ${wrongAudience.token}` })).status,
    ).toBe(401);
  });
});

describe('changing the credential store while running', () => {
  async function setStore(credentials: Credential[], anonymousPull: boolean, probe: () => Promise<boolean>) {
    g.store.write({ 'store.json': storeText(credentials, anonymousPull) });
    await waitFor('the token service to load the new store', probe, { timeoutMs: 10_000, intervalMs: 100 });
  }

  it('allows anonymous pulls only while anonymousPull is true', async () => {
    const nobody = g.client();
    const closed = await nobody.pull(`${host}/team-a/web:v1`);
    expect(closed.ok).toBe(false);
    expect(closed.stderr).toMatch(refused);

    await setStore(
      everyone,
      true,
      async () => (await tokenFor(undefined, 'repository:team-a/web:pull')).status === 200,
    );
    expect((await nobody.pull(`${host}/team-a/web:v1`)).ok).toBe(true);
    expect(await pushError(nobody, `${host}/team-a/web:anon`)).toMatch(refused);

    await setStore(
      everyone,
      false,
      async () => (await tokenFor(undefined, 'repository:team-a/web:pull')).status === 401,
    );
    expect((await nobody.pull(`${host}/team-a/web:v1`)).ok).toBe(false);
  });

  it('accepts a newly minted credential and drops a removed one, without a restart', async () => {
    const newcomer = mint({
      username: 'ns-team-a',
      grants: [{ repositories: ['team-a/*'], actions: ['pull'] }],
    });
    expect((await g.client(newcomer).pull(`${host}/team-a/web:v1`)).ok).toBe(false);

    // Rotation: the new secret joins, the old one is kept for a grace period that has already ended.
    const rotatedOut: Credential = {
      ...team,
      entry: { ...team.entry, notAfter: new Date(Date.now() - 1000).toISOString() },
    };
    await setStore(
      [admin, pusher, newcomer, rotatedOut],
      false,
      async () => (await tokenFor(newcomer, 'repository:team-a/web:pull')).status === 200,
    );
    expect((await g.client(newcomer).pull(`${host}/team-a/web:v1`)).ok).toBe(true);
    const old = await g.client(team).pull(`${host}/team-a/web:v1`);
    expect(old.ok).toBe(false);
    expect(old.stderr).toMatch(refused);
    const direct = await tokenFor(team, 'repository:team-a/web:pull');
    expect(direct.status).toBe(401);
    expect(direct.body).toMatch(/expired or was revoked/);

    // Removal: the pusher disappears from the store.
    await setStore(
      [admin, newcomer],
      false,
      async () => (await tokenFor(pusher, 'repository:team-a/web:pull')).status === 401,
    );
    expect((await g.client(pusher).pull(`${host}/team-a/web:v1`)).ok).toBe(false);
    expect((await g.client(admin).pull(`${host}/team-a/web:v1`)).ok).toBe(true);
  });

  it('keeps the current store when a broken one is written', async () => {
    g.store.write({ 'store.json': '{"version": 1, "credentials": "oops"}' });
    await waitFor(
      'the broken store to be noticed',
      async () => g.auditLines.some((l) => l.includes('"event":"store.invalid"')),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect((await g.client(admin).pull(`${host}/team-a/web:v1`)).ok).toBe(true);
  });
});

describe('health and metrics', () => {
  it('serves /healthz and counts issued and refused tokens', async () => {
    const h = await g.get(`${g.tokenService.server.url}/healthz`);
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'ok', credentials: 2 });
    const m = await g.get(`${g.tokenService.server.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/berth_token_issued_total\{principal="credential"\} [1-9]\d*/);
    expect(m.body).toMatch(/berth_token_issued_total\{principal="anonymous"\} [1-9]\d*/);
    expect(m.body).toMatch(/berth_token_refused_total\{reason="wrong-secret"\} [1-9]\d*/);
    expect(m.body).toMatch(/berth_token_store_reloads_total\{result="error"\} 1/);
  });
});
