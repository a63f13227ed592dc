import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../api/index.ts';
import { names } from '../model/names.ts';
import type { Check } from '../model/status.ts';
import { checksum } from '../util/secrets.ts';
import {
  certManagerSecretCheck,
  claimCheck,
  clusterIPsOf,
  lastCertificate,
  nodeIngressHost,
  s3SecretCheck,
  tlsSecretNameOf,
  userTLSCheck,
  workloadsAllowed,
} from './checks.ts';

const ref = { name: 'main', namespace: 'ns' };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (data: Record<string, string>): k8s.V1Secret => ({
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});
const pem = (n: string) => `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`;
const reason = (c: Check) => (c.ok ? 'ok' : c.reason);
const bad = (r: string): Check => ({ ok: false, reason: r, message: r });
const ok: Check = { ok: true };

describe('tlsSecretNameOf', () => {
  const reg = (tls: object | undefined) => ({ spec: { storage: {}, tls } }) as unknown as Registry;
  it.each([
    { name: 'default: berth’s', tls: undefined, want: names.tlsSecret(ref) },
    { name: 'CertManager: berth’s', tls: { mode: 'CertManager' }, want: names.tlsSecret(ref) },
    { name: 'Secret: the user’s', tls: { mode: 'Secret', secretName: 'mine' }, want: 'mine' },
    { name: 'Secret without a name', tls: { mode: 'Secret' }, want: '' },
  ])('$name', (c) => expect(tlsSecretNameOf(reg(c.tls), ref)).toBe(c.want));
});

describe('clusterIPsOf', () => {
  it.each([
    { name: 'none yet', spec: undefined, want: [] },
    { name: 'headless', spec: { clusterIPs: ['None'] }, want: [] },
    { name: 'dual stack', spec: { clusterIPs: ['10.0.0.1', '', 'fd00::1'] }, want: ['10.0.0.1', 'fd00::1'] },
  ])('$name', (c) => expect(clusterIPsOf({ spec: c.spec } as k8s.V1Service)).toEqual(c.want));
});

describe('s3SecretCheck', () => {
  it.each([
    { name: 'missing', s: undefined, want: 'StorageSecretMissing' },
    { name: 'no secret key', s: secret({ accessKeyID: 'a' }), want: 'StorageSecretInvalid' },
    { name: 'both keys', s: secret({ accessKeyID: 'a', secretAccessKey: 'b' }), want: 'ok' },
  ])('$name', (c) => expect(reason(s3SecretCheck(c.s, 'ns', 'creds'))).toBe(c.want));

  it('names the missing keys', () => {
    const c = s3SecretCheck(secret({}), 'ns', 'creds');
    expect(c.ok ? '' : c.message).toContain('has no accessKeyID or secretAccessKey');
  });
});

describe('userTLSCheck', () => {
  const chain = pem('a') + pem('root');
  it.each([
    { name: 'missing', s: undefined, want: 'TLSSecretMissing', ca: undefined, sum: '' },
    { name: 'no key', s: secret({ 'tls.crt': pem('a') }), want: 'TLSSecretInvalid', ca: undefined, sum: '' },
    {
      name: 'its ca.crt',
      s: secret({ 'tls.crt': pem('a'), 'tls.key': 'k', 'ca.crt': pem('ca') }),
      want: 'ok',
      ca: pem('ca'),
      sum: checksum(pem('a'), 'k'),
    },
    {
      name: 'else the chain’s last',
      s: secret({ 'tls.crt': chain, 'tls.key': 'k' }),
      want: 'ok',
      ca: pem('root'),
      sum: checksum(chain, 'k'),
    },
  ])('$name', (c) => {
    const out = userTLSCheck(c.s, 'ns', 'mine');
    expect([reason(out.check), out.caPem, out.checksum]).toEqual([c.want, c.ca, c.sum]);
  });
});

describe('certManagerSecretCheck', () => {
  it.each([
    { name: 'not issued', s: undefined, want: 'CertificateIssuing', ca: undefined },
    { name: 'no key yet', s: secret({ 'tls.crt': pem('a') }), want: 'CertificateIssuing', ca: undefined },
    {
      name: 'issued, with ca.crt',
      s: secret({ 'tls.crt': pem('a'), 'tls.key': 'k', 'ca.crt': pem('ca') }),
      want: 'ok',
      ca: pem('ca'),
    },
    { name: 'issued, without', s: secret({ 'tls.crt': pem('a'), 'tls.key': 'k' }), want: 'ok', ca: pem('a') },
  ])('$name', (c) => {
    const out = certManagerSecretCheck(c.s, ref);
    expect([reason(out.check), out.caPem, out.checksum === '']).toEqual([c.want, c.ca, c.want !== 'ok']);
  });
});

describe('claimCheck', () => {
  it.each([
    { name: 'bound', storage: ok, phase: 'Bound', want: 'ok' },
    { name: 'pending', storage: ok, phase: 'Pending', want: 'PVCPending' },
    { name: 'no phase yet', storage: ok, phase: undefined, want: 'PVCPending' },
    {
      name: 'an earlier problem stays',
      storage: bad('StorageSecretMissing'),
      phase: 'Pending',
      want: 'StorageSecretMissing',
    },
  ])('$name', (c) => expect(reason(claimCheck(c.storage, c.phase, ref))).toBe(c.want));

  it('says what it waits for', () => {
    const c = claimCheck(ok, undefined, ref);
    expect(c.ok ? '' : c.message).toMatch(/is not bound yet: waiting for a volume$/);
  });
});

describe('workloadsAllowed', () => {
  it.each([
    { name: 'all ready', certificate: ok, storage: ok, tls: true, want: true },
    { name: 'no certificate', certificate: bad('CertificateIssuing'), storage: ok, tls: true, want: false },
    { name: 'no certificate needed', certificate: bad('X'), storage: ok, tls: false, want: true },
    { name: 'waiting for a volume', certificate: ok, storage: bad('PVCPending'), tls: true, want: true },
    { name: 'storage broken', certificate: ok, storage: bad('StorageSecretMissing'), tls: true, want: false },
  ])('$name', (c) => expect(workloadsAllowed(c, c.tls)).toBe(c.want));
});

describe('nodeIngressHost', () => {
  it.each([
    { name: 'no host', host: { kind: 'none' as const }, want: undefined },
    {
      name: 'own, on the nodes',
      host: { kind: 'own' as const, host: 'r.example', nodes: true as const },
      want: { nodes: true },
    },
    {
      name: 'own, not on the nodes',
      host: {
        kind: 'own' as const,
        host: 'r.example',
        nodes: false as const,
        reason: 'HostNotAllowed' as const,
        message: 'm',
      },
      want: { nodes: false, reason: 'HostNotAllowed', message: 'm' },
    },
    {
      name: 'claimed by another',
      host: {
        kind: 'conflict' as const,
        host: 'r.example',
        reason: 'HostConflict' as const,
        message: 'c',
        with: 'a/b',
      },
      want: { nodes: false, reason: 'HostConflict', message: 'c' },
    },
  ])('$name', (c) => expect(nodeIngressHost(c.host)).toEqual(c.want));
});

describe('lastCertificate', () => {
  it.each([
    { name: 'none', bundle: 'x', want: undefined },
    { name: 'one', bundle: pem('a'), want: pem('a') },
    { name: 'a chain', bundle: pem('a') + pem('b'), want: pem('b') },
  ])('$name', (c) => expect(lastCertificate(c.bundle)).toBe(c.want));
});
