import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import {
  registryConfigDocument,
  renderRegistryConfig,
  RegistryConfigError,
  type RegistryConfigInput,
} from './config.ts';

const base: RegistryConfigInput = {
  storage: { kind: 'filesystem', rootDirectory: '/var/lib/registry' },
  readOnly: false,
  http: {
    addr: ':5000',
    secret: 'http-secret',
    tls: { certificate: '/etc/registry/tls/tls.crt', key: '/etc/registry/tls/tls.key' },
    debugAddr: ':5001',
  },
  auth: {
    realm: 'https://main.registry-system.svc:443/token',
    service: 'main.registry-system',
    issuer: 'berth/registry-system/main',
    rootCertBundle: '/etc/registry/token/tls.crt',
  },
};

function with_(patch: Partial<RegistryConfigInput>): RegistryConfigInput {
  return { ...base, ...patch };
}

describe('renderRegistryConfig', () => {
  it('renders the full default configuration', () => {
    expect(parse(renderRegistryConfig(base))).toEqual({
      version: 0.1,
      log: {
        level: 'info',
        formatter: 'json',
        accesslog: { disabled: false },
        fields: { service: 'registry' },
      },
      storage: {
        filesystem: { rootdirectory: '/var/lib/registry' },
        delete: { enabled: true },
        cache: { blobdescriptor: 'inmemory' },
        maintenance: {
          uploadpurging: { enabled: true, age: '168h', interval: '24h', dryrun: false },
          readonly: { enabled: false },
        },
      },
      http: {
        addr: ':5000',
        secret: 'http-secret',
        headers: { 'X-Content-Type-Options': ['nosniff'] },
        debug: { addr: ':5001', prometheus: { enabled: true, path: '/metrics' } },
        tls: { certificate: '/etc/registry/tls/tls.crt', key: '/etc/registry/tls/tls.key' },
      },
      auth: {
        token: {
          realm: 'https://main.registry-system.svc:443/token',
          service: 'main.registry-system',
          issuer: 'berth/registry-system/main',
          rootcertbundle: '/etc/registry/token/tls.crt',
          signingalgorithms: ['ES256'],
        },
      },
      health: { storagedriver: { enabled: true, interval: '10s', threshold: 3 } },
    });
  });

  it('is deterministic', () => {
    expect(renderRegistryConfig(base)).toBe(renderRegistryConfig(structuredClone(base)));
  });

  it.each<[string, Partial<RegistryConfigInput>, (doc: Record<string, unknown>) => unknown, unknown]>([
    [
      'emptyDir is a filesystem root',
      { storage: { kind: 'emptyDir', rootDirectory: '/data' } },
      (d) => d.storage,
      expect.objectContaining({ filesystem: { rootdirectory: '/data' } }),
    ],
    [
      's3 with an endpoint, path style and a root, never credentials',
      {
        storage: {
          kind: 's3',
          bucket: 'images',
          region: 'eu-west-1',
          regionEndpoint: 'http://minio.storage:9000',
          forcePathStyle: true,
          rootDirectory: '/main',
        },
      },
      (d) => d.storage,
      expect.objectContaining({
        s3: {
          bucket: 'images',
          region: 'eu-west-1',
          regionendpoint: 'http://minio.storage:9000',
          forcepathstyle: true,
          rootdirectory: '/main',
        },
        redirect: { disable: true },
      }),
    ],
    [
      's3 redirects on request',
      { storage: { kind: 's3', bucket: 'b', region: 'r', redirect: true } },
      (d) => (d.storage as Record<string, unknown>).redirect,
      { disable: false },
    ],
    [
      'read-only mode also stops upload purging',
      { readOnly: true },
      (d) => (d.storage as Record<string, unknown>).maintenance,
      {
        uploadpurging: { enabled: false, age: '168h', interval: '24h', dryrun: false },
        readonly: { enabled: true },
      },
    ],
    [
      'custom upload purging',
      { uploadPurging: { enabled: true, age: '48h', interval: '1h30m', dryRun: true } },
      (d) => ((d.storage as Record<string, unknown>).maintenance as Record<string, unknown>).uploadpurging,
      { enabled: true, age: '48h', interval: '1h30m', dryrun: true },
    ],
    [
      'deletes can be turned off',
      { deleteEnabled: false },
      (d) => (d.storage as Record<string, unknown>).delete,
      { enabled: false },
    ],
    [
      'no cache on request',
      { blobDescriptorCache: false },
      (d) => (d.storage as Record<string, unknown>).cache,
      undefined,
    ],
    [
      'TLS disabled: no tls section',
      { http: { ...base.http, tls: undefined } },
      (d) => (d.http as Record<string, unknown>).tls,
      undefined,
    ],
    [
      'an external host',
      { http: { ...base.http, host: 'https://registry.example.com' } },
      (d) => (d.http as Record<string, unknown>).host,
      'https://registry.example.com',
    ],
    [
      'more signing algorithms',
      { auth: { ...base.auth, signingAlgorithms: ['ES256', 'ES384'] } },
      (d) => ((d.auth as Record<string, unknown>).token as Record<string, unknown>).signingalgorithms,
      ['ES256', 'ES384'],
    ],
    [
      'log settings',
      { log: { level: 'debug', formatter: 'text', accessLog: false } },
      (d) => d.log,
      { level: 'debug', formatter: 'text', accesslog: { disabled: true }, fields: { service: 'registry' } },
    ],
    [
      'health settings',
      { health: { interval: '30s', threshold: 5 } },
      (d) => d.health,
      { storagedriver: { enabled: true, interval: '30s', threshold: 5 } },
    ],
  ])('%s', (_name, patch, pick, expected) => {
    expect(pick(parse(renderRegistryConfig(with_(patch))) as Record<string, unknown>)).toEqual(expected);
  });

  it.each<[string, Partial<RegistryConfigInput>, RegExp]>([
    [
      'a relative filesystem root',
      { storage: { kind: 'filesystem', rootDirectory: 'data' } },
      /rootDirectory must be an absolute path/,
    ],
    ['an empty bucket', { storage: { kind: 's3', bucket: '', region: 'r' } }, /s3 bucket must not be empty/],
    [
      'an endpoint without scheme',
      { storage: { kind: 's3', bucket: 'b', region: 'r', regionEndpoint: 'minio:9000' } },
      /regionEndpoint must be an http\(s\) URL/,
    ],
    ['an empty HTTP secret', { http: { ...base.http, secret: '' } }, /http secret must not be empty/],
    ['a bad address', { http: { ...base.http, addr: '5000' } }, /http addr must be HOST:PORT/],
    [
      'a relative TLS path',
      { http: { ...base.http, tls: { certificate: 'tls.crt', key: '/k' } } },
      /tls certificate must be an absolute path/,
    ],
    ['a realm that is not a URL', { auth: { ...base.auth, realm: 'token' } }, /auth realm must be a URL/],
    ['a realm with another scheme', { auth: { ...base.auth, realm: 'ftp://x/token' } }, /http\(s\) URL/],
    ['an empty issuer', { auth: { ...base.auth, issuer: '' } }, /auth issuer must not be empty/],
    [
      'a relative root bundle',
      { auth: { ...base.auth, rootCertBundle: 'tls.crt' } },
      /rootCertBundle must be an absolute path/,
    ],
    ['no algorithms', { auth: { ...base.auth, signingAlgorithms: [] } }, /must not be empty/],
    [
      'HS256',
      { auth: { ...base.auth, signingAlgorithms: ['HS256' as 'ES256'] } },
      /unsupported algorithm "HS256"/,
    ],
    [
      'a bad purge age',
      { uploadPurging: { enabled: true, age: '1 week' } },
      /uploadPurging age must be a Go duration/,
    ],
  ])('refuses %s', (_name, patch, error) => {
    expect(() => registryConfigDocument(with_(patch))).toThrow(RegistryConfigError);
    expect(() => registryConfigDocument(with_(patch))).toThrow(error);
  });

  it('sends manifest pushes to berth when notifications are asked for, and nothing otherwise', () => {
    expect(registryConfigDocument(base).notifications).toBeUndefined();
    const doc = registryConfigDocument(
      with_({
        notifications: { url: 'http://op.berth-system.svc:8082/registry-events/ns/main', token: 'tok_1-2' },
      }),
    );
    const n = doc.notifications as { endpoints: Record<string, unknown>[] };
    expect(n.endpoints).toHaveLength(1);
    expect(n.endpoints[0]).toMatchObject({
      name: 'berth',
      url: 'http://op.berth-system.svc:8082/registry-events/ns/main',
      headers: { Authorization: ['Bearer tok_1-2'] },
      ignore: { actions: ['pull', 'mount', 'delete'] },
    });
    expect(n.endpoints[0]?.ignoredmediatypes).toContain('application/octet-stream');
    expect((n.endpoints[0]?.ignore as { mediatypes: string[] }).mediatypes).toContain(
      'application/vnd.oci.image.layer.v1.tar+gzip',
    );
    expect(() => registryConfigDocument(with_({ notifications: { url: 'ftp://x', token: 't' } }))).toThrow(
      'notifications url must be an http(s) URL',
    );
    expect(() =>
      registryConfigDocument(with_({ notifications: { url: 'http://x', token: 'a b\nc' } })),
    ).toThrow('bearer token');
  });
});
