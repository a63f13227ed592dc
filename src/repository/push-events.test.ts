import { describe, expect, it } from '@jest/globals';
import type { Repository } from '../api/index.ts';
import { resolveClaims } from '../model/claims.ts';
import {
  EnvelopeError,
  parseEnvelope,
  pushTimeUpdates,
  type PushTimeUpdate,
  type RegistryEvent,
} from './push-events.ts';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';
const dockerManifest = 'application/vnd.docker.distribution.manifest.v2+json';

const repo = (ns: string, name: string, created: string, path?: string, last?: string): Repository => ({
  metadata: { namespace: ns, name, creationTimestamp: created as unknown as Date },
  spec: { registryRef: { name: 'main', namespace: 'registry-system' }, ...(path ? { path } : {}) },
  ...(last ? { status: { lastPushTime: last } } : {}),
});

const push = (repository: string, timestamp: string, mediaType = ociManifest, tag = 'v1'): RegistryEvent => ({
  id: `${repository}-${timestamp}`,
  timestamp,
  action: 'push',
  target: { mediaType, digest: 'sha256:00', repository, tag },
});

const web = repo('team-a', 'web', '2026-01-01T00:00:00Z');
const webLater = repo('team-a', 'web', '2026-01-01T00:00:00Z', undefined, '2026-03-01T12:00:00.000Z');
const api = repo('team-b', 'api', '2026-01-01T00:00:00Z', 'team-b/services/api');
const squatter = repo('team-a', 'web2', '2026-02-01T00:00:00Z', 'team-a/web');

describe('pushTimeUpdates', () => {
  it.each<[string, Repository[], RegistryEvent[], PushTimeUpdate[]]>([
    [
      'a manifest push sets the owner’s lastPushTime',
      [web],
      [push('team-a/web', '2026-03-01T12:00:00.123456789Z')],
      [{ namespace: 'team-a', name: 'web', lastPushTime: '2026-03-01T12:00:00.123Z' }],
    ],
    [
      'the newest of several pushes to one repository wins, whatever the order',
      [web],
      [
        push('team-a/web', '2026-03-01T12:00:05Z'),
        push('team-a/web', '2026-03-01T12:00:09Z', ociIndex),
        push('team-a/web', '2026-03-01T12:00:01Z', dockerManifest),
      ],
      [{ namespace: 'team-a', name: 'web', lastPushTime: '2026-03-01T12:00:09.000Z' }],
    ],
    [
      'a push newer than the status moves it forward and says what it had',
      [webLater],
      [push('team-a/web', '2026-03-02T00:00:00Z')],
      [
        {
          namespace: 'team-a',
          name: 'web',
          lastPushTime: '2026-03-02T00:00:00.000Z',
          previous: '2026-03-01T12:00:00.000Z',
        },
      ],
    ],
    [
      'an older or equal (re-delivered) push changes nothing',
      [webLater],
      [push('team-a/web', '2026-03-01T11:00:00Z'), push('team-a/web', '2026-03-01T12:00:00Z')],
      [],
    ],
    ['pulls change nothing', [web], [{ ...push('team-a/web', '2026-03-01T12:00:00Z'), action: 'pull' }], []],
    [
      'deletes and mounts change nothing',
      [web],
      [
        { ...push('team-a/web', '2026-03-01T12:00:00Z'), action: 'delete' },
        { ...push('team-a/web', '2026-03-01T12:00:00Z'), action: 'mount' },
      ],
      [],
    ],
    [
      'blob pushes (layers, configs) change nothing',
      [web],
      [
        push('team-a/web', '2026-03-01T12:00:00Z', 'application/octet-stream'),
        push('team-a/web', '2026-03-01T12:00:00Z', 'application/vnd.oci.image.layer.v1.tar+gzip'),
        push('team-a/web', '2026-03-01T12:00:00Z', 'application/vnd.docker.container.image.v1+json'),
      ],
      [],
    ],
    [
      'a repository no Repository claims changes nothing',
      [web],
      [push('team-c/other', '2026-03-01T12:00:00Z')],
      [],
    ],
    [
      'a spec.path claim is matched by path, not by name',
      [api, web],
      [push('team-b/api', '2026-03-01T12:00:00Z'), push('team-b/services/api', '2026-03-01T12:00:01Z')],
      [{ namespace: 'team-b', name: 'api', lastPushTime: '2026-03-01T12:00:01.000Z' }],
    ],
    [
      'only the winning (older) claim of a path is updated',
      [squatter, web],
      [push('team-a/web', '2026-03-01T12:00:00Z')],
      [{ namespace: 'team-a', name: 'web', lastPushTime: '2026-03-01T12:00:00.000Z' }],
    ],
    [
      'events without a usable timestamp or target change nothing',
      [web],
      [
        { ...push('team-a/web', 'not a time') },
        { action: 'push', timestamp: '2026-03-01T12:00:00Z' },
        { ...push('team-a/web', '2026-03-01T12:00:00Z'), target: { repository: 'team-a/web' } },
      ],
      [],
    ],
    [
      'one envelope can update several Repositories, in a stable order',
      [web, api],
      [push('team-b/services/api', '2026-03-01T12:00:00Z'), push('team-a/web', '2026-03-01T12:00:00Z')],
      [
        { namespace: 'team-a', name: 'web', lastPushTime: '2026-03-01T12:00:00.000Z' },
        { namespace: 'team-b', name: 'api', lastPushTime: '2026-03-01T12:00:00.000Z' },
      ],
    ],
  ])('%s', (_name, repositories, events, expected) => {
    const { winners } = resolveClaims(repositories);
    expect(pushTimeUpdates({ events }, winners)).toEqual(expected);
  });
});

describe('parseEnvelope', () => {
  it('takes an envelope as Distribution sends it', () => {
    const body = { events: [push('team-a/web', '2026-03-01T12:00:00Z')] };
    expect(parseEnvelope(JSON.parse(JSON.stringify(body)))).toEqual(body);
  });
  it.each<[string, unknown]>([
    ['not an object', 'x'],
    ['a list', []],
    ['no events', {}],
    ['events not a list', { events: {} }],
    ['an event that is not an object', { events: [1] }],
  ])('refuses %s', (_name, body) => expect(() => parseEnvelope(body)).toThrow(EnvelopeError));
});
