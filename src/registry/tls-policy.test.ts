import { describe, expect, it } from '@jest/globals';
import { caLifetimeMs, decideCA, decideServing, type CertFacts } from './tls-policy.ts';

const day = 24 * 3600_000;
const t0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

function cert(overrides: Partial<CertFacts> = {}): CertFacts {
  return {
    notBefore: t0,
    notAfter: at(90 * day),
    dnsNames: ['main.registry-system.svc', 'registry.example.com'],
    ipAddresses: ['10.96.0.10'],
    issuer: 'CN=berth main CA',
    subject: 'CN=main.registry-system.svc',
    ...overrides,
  };
}

const wanted = {
  dnsNames: ['registry.example.com', 'main.registry-system.svc'],
  ipAddresses: ['10.96.0.10'],
  caSubject: 'CN=berth main CA',
  renewBeforeMs: 30 * day,
};

describe('decideServing', () => {
  const cases: {
    name: string;
    now: Date;
    cert?: CertFacts & { signedByCA?: boolean };
    want: Partial<typeof wanted>;
    expect: string;
  }[] = [
    { name: 'missing certificate is issued', now: t0, want: {}, expect: 'issue:Missing' },
    {
      name: 'valid certificate is kept',
      now: at(10 * day),
      cert: cert(),
      want: {},
      expect: 'keep:UpToDate',
    },
    {
      name: 'names compare as sets',
      now: at(1 * day),
      cert: cert({ dnsNames: ['registry.example.com', 'main.registry-system.svc'] }),
      want: {},
      expect: 'keep:UpToDate',
    },
    {
      name: 'renewed at notAfter minus renewBefore',
      now: at(60 * day),
      cert: cert(),
      want: {},
      expect: 'issue:Renewing',
    },
    {
      name: 'kept one second before the renewal time',
      now: at(60 * day - 1000),
      cert: cert(),
      want: {},
      expect: 'keep:UpToDate',
    },
    {
      name: 'a new dnsName reissues',
      now: at(1 * day),
      cert: cert(),
      want: { dnsNames: [...wanted.dnsNames, 'other.example.com'] },
      expect: 'issue:NamesChanged',
    },
    {
      name: 'a new cluster IP reissues',
      now: at(1 * day),
      cert: cert(),
      want: { ipAddresses: ['10.96.0.11'] },
      expect: 'issue:NamesChanged',
    },
    {
      name: 'a new CA reissues',
      now: at(1 * day),
      cert: cert(),
      want: { caSubject: 'CN=berth main CA 2' },
      expect: 'issue:IssuerChanged',
    },
    {
      name: 'a CA made again under the same name (its key did not sign it) reissues',
      now: at(1 * day),
      cert: { ...cert(), signedByCA: false },
      want: {},
      expect: 'issue:IssuerChanged',
    },
    {
      name: 'signed by the current CA and valid: kept',
      now: at(1 * day),
      cert: { ...cert(), signedByCA: true },
      want: {},
      expect: 'keep:UpToDate',
    },
  ];
  it.each(cases)('$name', (c) => {
    const d = decideServing(c.now, c.cert, { ...wanted, ...c.want });
    expect(`${d.action}:${d.reason}`).toBe(c.expect);
  });

  it('asks to be looked at again when renewal is due', () => {
    const d = decideServing(at(1 * day), cert(), wanted);
    expect(d.action === 'keep' && d.recheckAt).toEqual(at(60 * day));
  });
});

describe('decideCA', () => {
  it.each([
    { name: 'missing', now: t0, ca: undefined, expect: 'issue:Missing' },
    { name: 'fresh', now: at(day), ca: cert({ notAfter: at(caLifetimeMs) }), expect: 'keep:UpToDate' },
    {
      name: 'within its last year',
      now: at(caLifetimeMs - 300 * day),
      ca: cert({ notAfter: at(caLifetimeMs) }),
      expect: 'issue:Expiring',
    },
  ])('$name', (c) => {
    const d = decideCA(c.now, c.ca);
    expect(`${d.action}:${d.reason}`).toBe(c.expect);
  });
});
