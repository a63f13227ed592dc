// X.509 certificates and keys for berth: a CA per Registry, serving certificates, and the
// test ground's control-plane PKI. Built on @peculiar/x509 over Node's WebCrypto (ECDSA P-256).
import 'reflect-metadata'; // required by @peculiar/x509's dependency injection
import { X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A certificate with its private key, both PEM encoded. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateOptions {
  commonName: string;
  organization?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore: Date;
  notAfter: Date;
  usage: 'server' | 'client' | 'server+client';
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block in private key');
  const privateKey = (await webcrypto.subtle.importKey('pkcs8', der, algorithm, true, ['sign'])) as CryptoKey;
  const jwk = await webcrypto.subtle.exportKey('jwk', privateKey);
  delete jwk.d;
  jwk.key_ops = ['verify'];
  const publicKey = (await webcrypto.subtle.importKey('jwk', jwk, algorithm, true, ['verify'])) as CryptoKey;
  return { privateKey, publicKey };
}

function subject(commonName: string, organization: string[] = []): string {
  const esc = (s: string) => s.replace(/([,+"\\<>;=])/g, '\\$1');
  return [`CN=${esc(commonName)}`, ...organization.map((o) => `O=${esc(o)}`)].join(', ');
}

function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

/** Creates a self-signed certificate authority. */
export async function createCA(opts: {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
}): Promise<KeyPair> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subject(opts.commonName),
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** Issues a leaf certificate signed by `ca`. */
export async function issueCertificate(ca: KeyPair, opts: CertificateOptions): Promise<KeyPair> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKeys = await importKey(ca.keyPem);
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const sans: x509.JsonGeneralNames = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const ekus: string[] = [];
  if (opts.usage !== 'client') ekus.push(x509.ExtendedKeyUsage.serverAuth);
  if (opts.usage !== 'server') ekus.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(ekus, false),
    await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subject(opts.commonName, opts.organization),
    issuer: caCert.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    signingAlgorithm: algorithm,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** Creates a bare ECDSA P-256 key pair (for example a service-account or token signing key). */
export async function createSigningKey(): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return {
    privateKeyPem: await exportKey(keys.privateKey),
    publicKeyPem: x509.PemConverter.encode(spki, 'PUBLIC KEY'),
  };
}

/** The facts about a certificate that renewal decisions need. */
export interface CertFacts {
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  issuer: string;
  subject: string;
}

/** Whether `certPem` carries a valid signature by the key of the CA certificate `caPem`. */
export function signedBy(certPem: string, caPem: string): boolean {
  try {
    return new NodeX509(certPem).verify(new NodeX509(caPem).publicKey);
  } catch {
    return false; // unreadable: not proven to be the CA's
  }
}

/** The facts of a PEM certificate. */
export function describeCertificate(pem: string): CertFacts {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  return {
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    issuer: cert.issuer,
    subject: cert.subject,
  };
}
