import { describe, expect, test } from '@jest/globals';
import { nextLink, parseChallenge } from './client.ts';

describe('registry protocol helpers', () => {
  test('nextLink', () => {
    expect(nextLink('</v2/_catalog?last=b&n=2>; rel="next"', 'https://r:5000/v2/_catalog?n=2')).toBe(
      'https://r:5000/v2/_catalog?last=b&n=2',
    );
    expect(nextLink(undefined, 'https://r')).toBeUndefined();
    expect(nextLink('<https://x/a>; rel="prev"', 'https://r')).toBeUndefined();
  });
  test('parseChallenge', () => {
    expect(parseChallenge('Bearer realm="https://r/token",service="main",scope="repository:a:pull"')).toEqual(
      {
        scheme: 'bearer',
        params: { realm: 'https://r/token', service: 'main', scope: 'repository:a:pull' },
      },
    );
    expect(parseChallenge('Basic realm="registry"')?.scheme).toBe('basic');
  });
});
