import { describe, expect, test } from '@jest/globals';
import { groupByAddress, parseAddress } from './server.ts';

describe('groupByAddress', () => {
  const m = (name: string, address: string) => ({ name, address });
  test.each([
    ['nothing', [], []],
    [
      'two addresses',
      [m('health', ':8081'), m('metrics', ':8080')],
      [
        [':8081', ['health']],
        [':8080', ['metrics']],
      ],
    ],
    [
      'a shared address, in order',
      [m('health', ':8080'), m('metrics', ':8080'), m('events', ':9000')],
      [
        [':8080', ['health', 'metrics']],
        [':9000', ['events']],
      ],
    ],
    [
      '"0" and empty disable a mount',
      [m('health', '0'), m('metrics', ''), m('events', ':9000')],
      [[':9000', ['events']]],
    ],
  ] as const)('%s', (_what, mounts, expected) => {
    const grouped = [...groupByAddress(mounts)].map(([address, on]) => [address, on.map((x) => x.name)]);
    expect(grouped).toEqual(expected);
  });
});

describe('parseAddress', () => {
  test.each([
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:9090', { host: '::1', port: 9090 }],
    ['8080', { host: '0.0.0.0', port: 8080 }],
  ])('%s', (address, expected) => {
    expect(parseAddress(address)).toEqual(expected);
  });
  test.each(['host:port', ':70000', 'a:-1'])('%s is refused', (address) => {
    expect(() => parseAddress(address)).toThrow('is not a host:port address');
  });
});
