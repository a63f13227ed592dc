import { describe, expect, test } from '@jest/globals';
import type { Step } from '../model/credential-secret.ts';
import { pullSecretsCondition, pullSecretsStatus, readyOutcome, type Summary } from './status.ts';

const t = (s: string) => Date.parse(s);
const summary = (over: Partial<Summary>): Summary => ({
  selected: 2,
  ready: 2,
  failures: [],
  overdue: false,
  ...over,
});
const failure = (namespace: string, reason = 'WriteFailed') => ({ namespace, reason, message: 'm' });

describe('readyOutcome: what is kept of a namespace whose credential was written', () => {
  const now = new Date('2026-01-02T00:00:00Z');
  const step = (state: Partial<Step['state']>, dueAt: string): Step => ({
    state: { username: 'pull.a', ...state },
    events: [],
    recheckAt: new Date('2026-01-02T06:00:00Z'),
    dueAt: new Date(dueAt),
  });
  test.each([
    [
      'a first credential: no rotation yet',
      step({ issuedAt: new Date('2026-01-01T00:00:00Z') }, '2026-01-03T00:00:00Z'),
      { ready: true, recheckAt: t('2026-01-02T06:00:00Z'), dueAt: t('2026-01-03T00:00:00Z'), overdue: false },
    ],
    [
      'a credential that replaced another: its issue time is the last rotation',
      step({ issuedAt: new Date('2026-01-01T00:00:00Z'), previousHash: 'h' }, '2026-01-03T00:00:00Z'),
      {
        ready: true,
        recheckAt: t('2026-01-02T06:00:00Z'),
        dueAt: t('2026-01-03T00:00:00Z'),
        lastRotation: t('2026-01-01T00:00:00Z'),
        overdue: false,
      },
    ],
    [
      'due longer ago than the grace period, nothing pending: overdue',
      step({ issuedAt: new Date('2026-01-01T00:00:00Z') }, '2026-01-01T12:00:00Z'),
      { ready: true, recheckAt: t('2026-01-02T06:00:00Z'), dueAt: t('2026-01-01T12:00:00Z'), overdue: true },
    ],
    [
      'due as long ago, a rotation pending: not overdue',
      step({ issuedAt: new Date('2026-01-01T00:00:00Z'), pending: 'p' }, '2026-01-01T12:00:00Z'),
      { ready: true, recheckAt: t('2026-01-02T06:00:00Z'), dueAt: t('2026-01-01T12:00:00Z'), overdue: false },
    ],
  ])('%s', (_name, s, want) => {
    expect(readyOutcome(s, now, 2 * 3600_000)).toEqual(want);
  });
});

describe('pullSecretsStatus: status.pullSecrets', () => {
  const many = Array.from({ length: 120 }, (_, i) => failure(`ns-${String(i).padStart(3, '0')}`));
  test.each([
    ['nothing rotated yet', summary({}), undefined, { selectedNamespaces: 2, readyNamespaces: 2 }],
    [
      'times in whole seconds',
      summary({ lastRotation: t('2026-01-01T00:00:00.900Z'), nextRotation: t('2026-01-02T00:00:01.200Z') }),
      undefined,
      {
        selectedNamespaces: 2,
        readyNamespaces: 2,
        lastRotationTime: '2026-01-01T00:00:00Z',
        nextRotationTime: '2026-01-02T00:00:01Z',
      },
    ],
    [
      'the last rotation in status is kept while no outcome knows one',
      summary({}),
      { lastRotationTime: '2025-12-31T00:00:00Z' },
      { selectedNamespaces: 2, readyNamespaces: 2, lastRotationTime: '2025-12-31T00:00:00Z' },
    ],
    [
      'a known last rotation replaces the one in status',
      summary({ lastRotation: t('2026-01-01T00:00:00Z') }),
      { lastRotationTime: '2025-12-31T00:00:00Z' },
      { selectedNamespaces: 2, readyNamespaces: 2, lastRotationTime: '2026-01-01T00:00:00Z' },
    ],
    [
      'failures are listed',
      summary({ ready: 1, failures: [failure('b')] }),
      undefined,
      { selectedNamespaces: 2, readyNamespaces: 1, failedNamespaces: [failure('b')] },
    ],
    [
      'at most 100 failures are listed',
      summary({ selected: 120, ready: 0, failures: many }),
      undefined,
      { selectedNamespaces: 120, readyNamespaces: 0, failedNamespaces: many.slice(0, 100) },
    ],
  ])('%s', (_name, s, previous, want) => {
    expect(pullSecretsStatus(s, previous)).toEqual(want);
  });
});

describe('pullSecretsCondition: PullSecretsReady', () => {
  test.each([
    [
      'nothing selected',
      summary({ selected: 0, ready: 0 }),
      'True',
      'NoNamespacesSelected',
      '0 of 0 selected namespaces have a current pull secret',
    ],
    [
      'every namespace ready',
      summary({}),
      'True',
      'AllNamespacesReady',
      '2 of 2 selected namespaces have a current pull secret',
    ],
    [
      'not every namespace looked at yet is still True',
      summary({ ready: 1 }),
      'True',
      'AllNamespacesReady',
      '1 of 2 selected namespaces have a current pull secret',
    ],
    [
      'an overdue rotation',
      summary({ overdue: true }),
      'False',
      'RotationOverdue',
      'a credential rotation is overdue; the current credentials still work',
    ],
    [
      'failures win over an overdue rotation; the first failure gives the reason',
      summary({ overdue: true, failures: [failure('a', 'SecretNotOwned'), failure('b')] }),
      'False',
      'SecretNotOwned',
      '2 of 2 namespaces failed: a (SecretNotOwned), b (WriteFailed)',
    ],
    [
      'at most five failures are named',
      summary({ selected: 7, failures: ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => failure(n)) }),
      'False',
      'WriteFailed',
      '6 of 7 namespaces failed: a (WriteFailed), b (WriteFailed), c (WriteFailed), d (WriteFailed), e (WriteFailed)',
    ],
  ])('%s', (_name, s, status, reason, message) => {
    expect(pullSecretsCondition(s)).toEqual({ type: 'PullSecretsReady', status, reason, message });
  });
});
