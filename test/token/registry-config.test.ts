// The configuration that src/registry/config.ts renders, as the real registry reads it: deletes
// are enabled (retention needs them) and the read-only maintenance switch (garbage collection
// needs it) refuses pushes and deletes while pulls go on.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mint, startTokenGround, type TokenGround } from './fixture.ts';

const admin = mint({ username: 'admin', grants: [{ repositories: ['**'], actions: ['*'] }], catalog: true });
let g: TokenGround;

beforeAll(async () => {
  g = await startTokenGround({ credentials: [admin] });
}, 120_000);

afterAll(async () => {
  await g?.stop();
});

describe('the rendered registry configuration', () => {
  it('enables deletes', async () => {
    const a = g.client(admin);
    const digest = await a.pushRandomImage(`${g.registry.host}/ops/old:1`);
    const del = await a.run(['delete', `${g.registry.host}/ops/old@${digest}`]);
    expect(del.stderr).toBe('');
    expect(del.ok).toBe(true);
    expect((await a.pull(`${g.registry.host}/ops/old@${digest}`)).ok).toBe(false);
  });

  it('read-only mode refuses pushes and deletes but serves pulls, and switches back', async () => {
    const a = g.client(admin);
    const host = g.registry.host;
    const digest = await a.pushRandomImage(`${host}/ops/app:1`);

    await g.reconfigure({ readOnly: true });
    expect((await a.pull(`${host}/ops/app:1`)).ok).toBe(true);
    const push = await a.run(['copy', `${host}/ops/app:1`, `${host}/ops/app:2`]);
    expect(push.ok).toBe(false);
    expect(push.stderr).toMatch(/UNSUPPORTED|read-only|405|Method Not Allowed/i);
    const del = await a.run(['delete', `${host}/ops/app@${digest}`]);
    expect(del.ok).toBe(false);
    expect(await a.tags(`${host}/ops/app`)).toEqual(['1']);

    await g.reconfigure({ readOnly: false });
    await a.must(['copy', `${host}/ops/app:1`, `${host}/ops/app:2`]);
    expect(await a.tags(`${host}/ops/app`)).toEqual(['1', '2']);
  });
});
