import { describe, expect, it } from '@jest/globals';
import type { Registry } from '../api/index.ts';
import { registryConfigInput, storageConfig, tokenRealm } from './config-input.ts';

const ref = { name: 'main', namespace: 'ns' };
const reg = (spec: object): Registry =>
  ({
    metadata: { name: 'main', namespace: 'ns' },
    spec: { storage: { emptyDir: {} }, ...spec },
  }) as unknown as Registry;
const facts = { ref, tls: true, readOnly: false, httpSecret: 'h', eventsToken: 't' };

describe('tokenRealm', () => {
  it.each([
    {
      name: 'the Ingress host',
      spec: { expose: { ingress: { host: 'r.example.com' } } },
      tls: false,
      want: 'https://r.example.com/token',
    },
    { name: 'the Service, TLS', spec: {}, tls: true, want: /^https:\/\/main\.ns\.svc.*:\d+\/token$/ },
    { name: 'the Service, plain', spec: {}, tls: false, want: /^http:\/\/main\.ns\.svc.*:\d+\/token$/ },
  ])('$name', (c) => expect(tokenRealm(ref, reg(c.spec), c.tls)).toMatch(c.want));
});

describe('storageConfig', () => {
  it.each([
    { name: 'emptyDir', storage: { emptyDir: {} }, want: { kind: 'emptyDir' } },
    { name: 'a claim', storage: { persistentVolumeClaim: { size: '1Gi' } }, want: { kind: 'filesystem' } },
    {
      name: 'S3, only what is set',
      storage: { s3: { bucket: 'b', region: 'r', forcePathStyle: false, secretRef: { name: 's' } } },
      want: { kind: 's3', bucket: 'b', region: 'r', forcePathStyle: false },
    },
  ])('$name', (c) => expect(storageConfig(reg({ storage: c.storage }))).toMatchObject(c.want));

  it('S3 has no rootDirectory unless set', () => {
    const s = storageConfig(reg({ storage: { s3: { bucket: 'b', region: 'r', secretRef: { name: 's' } } } }));
    expect(s).not.toHaveProperty('rootDirectory');
  });
});

describe('registryConfigInput', () => {
  it.each([
    { name: 'TLS, no events', tls: true, eventsUrl: undefined, tlsSet: true, notifications: false },
    { name: 'plain, events', tls: false, eventsUrl: 'http://op:8080', tlsSet: false, notifications: true },
  ])('$name', (c) => {
    const input = registryConfigInput({ ...facts, registry: reg({}), tls: c.tls, eventsUrl: c.eventsUrl });
    expect([!!input.http.tls, !!input.notifications]).toEqual([c.tlsSet, c.notifications]);
    expect(input.http.secret).toBe('h');
    if (input.notifications) expect(input.notifications.token).toBe('t');
  });

  it('passes the maintenance mode through', () => {
    expect(registryConfigInput({ ...facts, registry: reg({}), readOnly: true }).readOnly).toBe(true);
  });
});
