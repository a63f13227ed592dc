import { describe, expect, it } from '@jest/globals';
import {
  parseNodeAccessConfig,
  renderNodeAccessConfig,
  type NodeAccessConfig,
} from './node-access-config.ts';

const good: NodeAccessConfig = {
  version: 1,
  registry: 'ns/main',
  server: 'https://10.0.0.1:443',
  hosts: ['main.ns.svc:443', 'main.ns.svc'],
  aliases: { ip: '10.0.0.1', names: ['main.ns.svc'] },
};

describe('parseNodeAccessConfig', () => {
  it('round-trips what the operator renders', () => {
    expect(parseNodeAccessConfig(renderNodeAccessConfig(good))).toEqual({ ok: true, value: good });
    const v6 = {
      ...good,
      server: 'https://[fd00::1]:443',
      aliases: { ip: 'fd00::1', names: ['main.ns.svc'] },
    };
    expect(parseNodeAccessConfig(renderNodeAccessConfig(v6))).toEqual({ ok: true, value: v6 });
  });
  const bad: { name: string; value: unknown; error: RegExp }[] = [
    { name: 'not JSON', value: '{', error: /not JSON/ },
    { name: 'another version', value: { ...good, version: 2 }, error: /version 2/ },
    { name: 'a host that is a path', value: { ...good, hosts: ['../../etc'] }, error: /hosts/ },
    { name: 'a server by name', value: { ...good, server: 'https://evil.example.com:443' }, error: /server/ },
    {
      name: 'an alias with a newline',
      value: { ...good, aliases: { ip: '10.0.0.1', names: ['a\nb'] } },
      error: /aliases/,
    },
    {
      name: 'an alias IP with text',
      value: { ...good, aliases: { ip: '10.0.0.1 evil', names: ['a'] } },
      error: /aliases/,
    },
  ];
  it.each(bad)('refuses $name', ({ value, error }) => {
    const parsed = parseNodeAccessConfig(typeof value === 'string' ? value : JSON.stringify(value));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(error);
  });
});
