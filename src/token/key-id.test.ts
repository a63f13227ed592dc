import { describe, expect, it } from '@jest/globals';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { distributionKeyId, UnsupportedKeyError } from './key-id.ts';

describe('distributionKeyId', () => {
  it('equals the RFC 7638 thumbprint when no coordinate starts with a zero byte', async () => {
    // Find keys until one has no leading zero byte in x or y (almost every key).
    for (;;) {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = publicKey.export({ format: 'jwk' });
      const x = Buffer.from(jwk.x ?? '', 'base64url');
      const y = Buffer.from(jwk.y ?? '', 'base64url');
      if (x[0] === 0 || y[0] === 0) continue;
      expect(distributionKeyId(publicKey)).toBe(
        await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256'),
      );
      return;
    }
  });

  it('drops leading zero bytes of a coordinate, as Go big.Int.Bytes() does', () => {
    // A fixed public key (P-256) whose x coordinate starts with a zero byte.
    for (;;) {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = publicKey.export({ format: 'jwk' });
      const x = Buffer.from(jwk.x ?? '', 'base64url');
      if (x[0] !== 0) continue;
      let i = 0;
      while (x[i] === 0) i++;
      const goX = x.subarray(i).toString('base64url');
      const payload = `{"crv":"P-256","kty":"EC","x":"${goX}","y":"${jwk.y ?? ''}"}`;
      const y = Buffer.from(jwk.y ?? '', 'base64url');
      if (y[0] === 0) continue;
      expect(distributionKeyId(publicKey)).toBe(createHash('sha256').update(payload).digest('base64url'));
      expect(goX.length).toBeLessThan((jwk.x ?? '').length);
      return;
    }
  });

  it('refuses a non-EC key', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(() => distributionKeyId(publicKey)).toThrow(UnsupportedKeyError);
  });
});
