// Who owns which status field (issue #15: one owner per status field). Each owner writes its part
// by server-side apply of the status subresource with its own field manager (applyStatus), so the
// Registry's status, which three controllers write, is never replaced whole by any of them.
import type { StatusOwner } from '../runtime/status-owner.ts';

/** The Registry controller: what the Registry serves and its own conditions. */
export const registryStatusOwner: StatusOwner = {
  manager: 'berth-registry',
  fields: ['observedGeneration', 'endpoint', 'adminSecret', 'caConfigMap'],
  conditions: ['Ready', 'Progressing', 'Degraded', 'CertificateReady', 'StorageReady', 'NodesReady'],
};

/** The pull-secret controller: the fan-out's figures and PullSecretsReady. */
export const pullSecretsStatusOwner: StatusOwner = {
  manager: 'berth-pullsecrets',
  fields: ['pullSecrets'],
  conditions: ['PullSecretsReady'],
};

/** The garbage-collection controller: the collection's phase, run and last run. */
export const garbageCollectionStatusOwner: StatusOwner = {
  manager: 'berth-gc',
  fields: ['garbageCollection'],
  conditions: [],
};

/**
 * The Repository controller. `lastPushTime` is not its own: the registry's push notifications
 * write it (src/repository/push-events-handler.ts, a merge patch that only moves it forward).
 */
export const repositoryStatusOwner: StatusOwner = {
  manager: 'berth-repository',
  fields: ['observedGeneration', 'path', 'url', 'tags'],
  conditions: ['Ready'],
};

/** The retention controller. */
export const retentionStatusOwner: StatusOwner = {
  manager: 'berth-retention',
  fields: ['observedGeneration', 'lastRun', 'nextRunTime'],
  conditions: ['Ready'],
};
