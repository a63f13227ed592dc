import { describe, expect, it } from '@jest/globals';
import type { NodeAccessConfig } from '../model/node-access-config.ts';
import { mergeHostsFile, planNode, renderMarker, type Desired, type NodeState } from './plan.ts';

const registry = 'ns/main';
const config: NodeAccessConfig = {
  version: 1,
  registry,
  server: 'https://10.0.0.1:443',
  hosts: ['main.ns.svc:443'],
  aliases: { ip: '10.0.0.1', names: ['main.ns.svc'] },
};
const want = (over: Partial<Desired> = {}): Desired => ({
  registry,
  config,
  caPem: 'CA\n',
  hostCertsDir: '/etc/containerd/certs.d',
  ...over,
});
const ours = (files: Record<string, string> = {}) => ({
  marker: { registry, files: ['ca.crt', 'hosts.toml'] },
  files: { '.berth-node-agent': renderMarker({ registry, files: ['ca.crt', 'hosts.toml'] }), ...files },
});
const kinds = (state: NodeState, d = want()) =>
  planNode(d, state).actions.map(
    (a) => `${a.kind}${'folder' in a ? ` ${a.folder}` : ''}${'file' in a ? `/${a.file}` : ''}`,
  );

describe('planNode', () => {
  const steady = planNode(want(), { folders: {} }).actions;
  const toml = steady.find((a) => a.kind === 'write' && a.file === 'hosts.toml');
  const hostsToml = toml && 'content' in toml ? toml.content : '';
  const cases: {
    name: string;
    state: NodeState;
    desired?: Desired;
    actions: string[];
    conflicts?: number;
  }[] = [
    {
      name: 'an empty node: folder, marker first, then the files, and the hosts block',
      state: { folders: {}, hostsFile: '127.0.0.1 localhost\n' },
      actions: [
        'mkdir main.ns.svc:443',
        'write main.ns.svc:443/.berth-node-agent',
        'write main.ns.svc:443/ca.crt',
        'write main.ns.svc:443/hosts.toml',
        'hosts',
      ],
    },
    {
      name: 'a node in sync: nothing',
      state: {
        folders: { 'main.ns.svc:443': ours({ 'ca.crt': 'CA\n', 'hosts.toml': hostsToml }) },
        hostsFile: mergeHostsFile('', registry, ['10.0.0.1 main.ns.svc']),
      },
      actions: [],
    },
    {
      name: 'a rotated CA: only ca.crt',
      state: { folders: { 'main.ns.svc:443': ours({ 'ca.crt': 'OLD\n', 'hosts.toml': hostsToml }) } },
      actions: ['write main.ns.svc:443/ca.crt'],
    },
    {
      name: 'a folder without berth’s marker: a conflict, untouched',
      state: { folders: { 'main.ns.svc:443': { marker: null, files: { 'hosts.toml': 'x' } } } },
      actions: [],
      conflicts: 1,
    },
    {
      name: 'another Registry’s folder: a conflict, untouched',
      state: {
        folders: { 'main.ns.svc:443': { marker: { registry: 'other/main', files: ['ca.crt'] }, files: {} } },
      },
      actions: [],
      conflicts: 1,
    },
    {
      name: 'an old host of ours: its files, marker last, then the folder',
      state: {
        folders: {
          'main.ns.svc:443': ours({ 'ca.crt': 'CA\n', 'hosts.toml': hostsToml }),
          'main.ns.svc:8443': ours({ 'ca.crt': 'CA\n', 'hosts.toml': 'old' }),
          'docker.io': { marker: null, files: { 'hosts.toml': 'theirs' } },
        },
      },
      actions: [
        'remove main.ns.svc:8443/ca.crt',
        'remove main.ns.svc:8443/hosts.toml',
        'remove main.ns.svc:8443/.berth-node-agent',
        'rmdir main.ns.svc:8443',
      ],
    },
    {
      name: 'cleanup: everything of ours, nothing else, and the block',
      desired: want({ config: undefined }),
      state: {
        folders: { 'main.ns.svc:443': ours({ 'ca.crt': 'CA\n' }), 'docker.io': { marker: null, files: {} } },
        hostsFile: `a\n${mergeHostsFile('', registry, ['10.0.0.1 main.ns.svc'])}`,
      },
      actions: [
        'remove main.ns.svc:443/ca.crt',
        'remove main.ns.svc:443/.berth-node-agent',
        'rmdir main.ns.svc:443',
        'hosts',
      ],
    },
    {
      name: 'TLS disabled (no CA): a ca.crt written before is removed',
      desired: want({ caPem: undefined }),
      state: { folders: { 'main.ns.svc:443': ours({ 'ca.crt': 'CA\n', 'hosts.toml': hostsToml }) } },
      actions: [
        'write main.ns.svc:443/.berth-node-agent',
        'write main.ns.svc:443/hosts.toml',
        'remove main.ns.svc:443/ca.crt',
      ],
    },
  ];
  it.each(cases)('$name', ({ state, desired, actions, conflicts }) => {
    expect(kinds(state, desired)).toEqual(actions);
    expect(planNode(desired ?? want(), state).conflicts).toHaveLength(conflicts ?? 0);
  });

  it('hosts.toml points containerd at the cluster IP and berth’s CA, pull and resolve only', () => {
    expect(hostsToml).toContain('server = "https://10.0.0.1:443"');
    expect(hostsToml).toContain('capabilities = ["pull", "resolve"]');
    expect(hostsToml).toContain('ca = "/etc/containerd/certs.d/main.ns.svc:443/ca.crt"');
  });
});

describe('mergeHostsFile', () => {
  const b = (r: string, lines: string[]) =>
    [`# BEGIN berth node agent ${r} (managed: do not edit)`, ...lines, `# END berth node agent ${r}`].join(
      '\n',
    );
  const cases: { name: string; current: string; entries: string[]; want: string }[] = [
    {
      name: 'appends to a file',
      current: 'a\nb\n',
      entries: ['1.2.3.4 x'],
      want: `a\nb\n${b(registry, ['1.2.3.4 x'])}\n`,
    },
    {
      name: 'appends to a file without a final newline',
      current: 'a',
      entries: ['1.2.3.4 x'],
      want: `a\n${b(registry, ['1.2.3.4 x'])}\n`,
    },
    {
      name: 'replaces in place',
      current: `a\n${b(registry, ['9.9.9.9 x'])}\nz\n`,
      entries: ['1.2.3.4 x'],
      want: `a\n${b(registry, ['1.2.3.4 x'])}\nz\n`,
    },
    {
      name: 'removes only its block',
      current: `a\n${b(registry, ['9.9.9.9 x'])}\nz\n`,
      entries: [],
      want: 'a\nz\n',
    },
    {
      name: 'leaves another Registry’s block',
      current: `${b('o/r', ['5.5.5.5 y'])}\n`,
      entries: [],
      want: `${b('o/r', ['5.5.5.5 y'])}\n`,
    },
    {
      name: 'a damaged block (no END): only its header goes, the lines after stay',
      current: `a\n# BEGIN berth node agent ${registry} (managed: do not edit)\nz\n`,
      entries: [],
      want: 'a\nz\n',
    },
    { name: 'nothing to add to a file without a block: unchanged', current: 'a\n', entries: [], want: 'a\n' },
  ];
  it.each(cases)('$name', ({ current, entries, want }) => {
    expect(mergeHostsFile(current, registry, entries)).toBe(want);
  });
});
