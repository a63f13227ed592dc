import { describe, expect, it } from '@jest/globals';
import { parseTokenServiceArgs, UsageError } from './command.ts';
import { parseListenAddress } from '../util/listen.ts';

const required = ['--signing-key=/k/tls.key', '--store=/s/store.json', '--issuer=iss', '--service=svc'];

describe('parseTokenServiceArgs', () => {
  it('applies defaults', () => {
    expect(parseTokenServiceArgs(required, {})).toEqual({
      logLevel: 'info',
      workers: 'auto',
      config: {
        listen: { host: '0.0.0.0', port: 5001 },
        signingKeyPath: '/k/tls.key',
        storePath: '/s/store.json',
        issuer: 'iss',
        service: 'svc',
        ttlMs: 300_000,
        storePollMs: 5_000,
      },
    });
  });

  it('reads every flag, the operator’s Deployment arguments included', () => {
    const { config, logLevel } = parseTokenServiceArgs(
      [
        ...required,
        '--listen=0.0.0.0:5001',
        '--health-listen=0.0.0.0:8081',
        '--tls-cert=/t/tls.crt',
        '--tls-key=/t/tls.key',
        '--signing-cert=/k/tls.crt',
        '--ttl=10m',
        '--store-poll=2s',
        '--log-level=debug',
      ],
      {},
    );
    expect(logLevel).toBe('debug');
    expect(config).toMatchObject({
      healthListen: { host: '0.0.0.0', port: 8081 },
      tlsCertPath: '/t/tls.crt',
      tlsKeyPath: '/t/tls.key',
      signingCertPath: '/k/tls.crt',
      ttlMs: 600_000,
      storePollMs: 2_000,
    });
  });

  it('falls back to the environment, flags win', () => {
    const { config } = parseTokenServiceArgs(['--issuer=flag'], {
      BERTH_TOKEN_SIGNING_KEY: '/env/key',
      BERTH_TOKEN_STORE: '/env/store',
      BERTH_TOKEN_ISSUER: 'env',
      BERTH_TOKEN_SERVICE: 'svc',
      BERTH_TOKEN_TTL: '90s',
    });
    expect(config).toMatchObject({
      signingKeyPath: '/env/key',
      storePath: '/env/store',
      issuer: 'flag',
      ttlMs: 90_000,
    });
  });

  it.each([
    [
      'a missing store',
      required.filter((a) => !a.startsWith('--store')),
      /--store \(or BERTH_TOKEN_STORE\) is required/,
    ],
    ['a certificate without its key', [...required, '--tls-cert=/c'], /--tls-cert and --tls-key go together/],
    ['a bad TTL', [...required, '--ttl=soon'], /--ttl: "soon" is not a duration/],
    ['a sub-second TTL', [...required, '--ttl=10ms'], /at least 1s/],
    ['an unknown flag', [...required, '--port=1'], /Unknown option '--port'/],
    ['a bad log level', [...required, '--log-level=trace'], /--log-level/],
    ['no workers', [...required, '--workers=0'], /--workers must be auto or a number from 1 to 256/],
    ['a fraction of a worker', [...required, '--workers=1.5'], /--workers must be auto/],
    ['a worker count that is not a number', [...required, '--workers=many'], /--workers must be auto/],
  ])('refuses %s', (_name, args, error) => {
    expect(() => parseTokenServiceArgs(args, {})).toThrow(UsageError);
    expect(() => parseTokenServiceArgs(args, {})).toThrow(error);
  });
});

describe('the worker count', () => {
  it.each<[string, string[], Record<string, string>, number | 'auto']>([
    ['auto by default', [], {}, 'auto'],
    ['auto when asked', ['--workers=auto'], {}, 'auto'],
    ['a number', ['--workers=3'], {}, 3],
    ['one (a single process)', ['--workers=1'], {}, 1],
    ['from the environment', [], { BERTH_TOKEN_WORKERS: '2' }, 2],
  ])('%s', (_name, flags, env, workers) => {
    expect(parseTokenServiceArgs([...required, ...flags], env).workers).toBe(workers);
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:5001', { host: '127.0.0.1', port: 5001 }],
    [':5001', { host: '0.0.0.0', port: 5001 }],
    ['[::1]:443', { host: '::1', port: 443 }],
  ])('%s', (text, expected) => {
    expect(parseListenAddress(text, 'listen')).toEqual(expected);
  });

  it.each(['5001', 'host:', 'host:99999'])('refuses %s', (text) => {
    expect(() => parseListenAddress(text, 'listen')).toThrow(/HOST:PORT/);
  });
});
