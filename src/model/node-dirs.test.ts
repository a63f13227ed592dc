import { describe, expect, test } from '@jest/globals';
import { checkCertsDir, defaultAllowedDirs, normalizeDir, parseAllowedDirs } from './node-dirs.ts';

describe('normalizeDir', () => {
  test.each([
    ['/etc/containerd/certs.d', '/etc/containerd/certs.d'],
    ['/etc/containerd/certs.d/', '/etc/containerd/certs.d'],
    ['//etc//containerd/./certs.d', '/etc/containerd/certs.d'],
    ['/', '/'],
    ['etc/containerd', undefined],
    ['/etc/containerd/certs.d/../../..', undefined],
    ['', undefined],
  ])('%j -> %j', (input, want) => {
    expect(normalizeDir(input)).toBe(want);
  });
});

describe('checkCertsDir', () => {
  const k3s = '/var/lib/rancher/k3s/agent/etc/containerd/certs.d';
  test.each<[string, string, string[], boolean]>([
    ['the default folder, default allow-list', '/etc/containerd/certs.d', defaultAllowedDirs, true],
    [
      'the default folder spelled with a trailing slash',
      '/etc/containerd/certs.d/',
      defaultAllowedDirs,
      true,
    ],
    ['a folder below an allowed one', '/etc/containerd/certs.d/team', defaultAllowedDirs, true],
    ['/etc itself', '/etc', defaultAllowedDirs, false],
    ['the root folder', '/', defaultAllowedDirs, false],
    ['a sibling that shares the prefix', '/etc/containerd/certs.dx', defaultAllowedDirs, false],
    ['the parent of the allowed folder', '/etc/containerd', defaultAllowedDirs, false],
    ['climbing out with ..', '/etc/containerd/certs.d/../../shadow', defaultAllowedDirs, false],
    ['k3s folder, not allowed by default', k3s, defaultAllowedDirs, false],
    ['k3s folder, allowed by the install', k3s, [...defaultAllowedDirs, k3s], true],
    ['nothing allowed', '/etc/containerd/certs.d', [], false],
  ])('%s', (_name, dir, allowed, ok) => {
    const got = checkCertsDir(dir, allowed);
    expect(got.ok).toBe(ok);
    if (!got.ok) {
      expect(got.reason).toBe('CertsDirNotAllowed');
      expect(got.message).toContain('spec.nodeAccess.certsDir');
    }
  });
});

describe('parseAllowedDirs', () => {
  test('splits, normalizes, de-duplicates and reports what is not an absolute path', () => {
    expect(parseAllowedDirs(' /etc/containerd/certs.d/, /etc/containerd/certs.d ,relative,/a/../b,')).toEqual(
      {
        dirs: ['/etc/containerd/certs.d'],
        invalid: ['relative', '/a/../b'],
      },
    );
  });
});
