// A worker thread of bench/token.ts's signing baseline: signs `count` tokens with the claims the
// token service signs for the bench's request, as fast as node:crypto can, and reports its time.
// Two ways: `signer` is the token service's own signing code (TokenSigner.signNow: claims JSON,
// base64url, random jti, ES256 over the KeyObject, DER → r||s); `options` is node:crypto's
// documented JWS form (`sign(hash, data, { key, dsaEncoding: 'ieee-p1363' })`) over the same input.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { claimsJSON, TokenSigner, type TokenClaims } from '../../src/token/signer.ts';

export interface SignJob {
  way: 'signer' | 'options';
  keyPem: string;
  count: number;
  claims: Omit<TokenClaims, 'issuedAt'>;
}

export interface SignReport {
  seconds: number;
  cpuSeconds: number;
}

const job = workerData as SignJob;
const signer = new TokenSigner(job.keyPem);
const key = createPrivateKey(job.keyPem);
const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: signer.keyId })).toString(
  'base64url',
);
const claims: TokenClaims = { ...job.claims, issuedAt: new Date() };

const one =
  job.way === 'signer'
    ? () => signer.signNow(claims)
    : () => {
        const iat = Math.floor(Date.now() / 1000);
        const payload = Buffer.from(
          claimsJSON(claims, iat, iat + 300, randomBytes(16).toString('base64url')),
        ).toString('base64url');
        const input = `${header}.${payload}`;
        const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
        return `${input}.${sig.toString('base64url')}`;
      };

for (let i = 0; i < 200; i++) one(); // warm-up
const cpu0 = process.threadCpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < job.count; i++) one();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.threadCpuUsage(cpu0);
parentPort?.postMessage({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies SignReport);
