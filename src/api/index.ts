// berth's API, group berth.dev version v1alpha1: the types generated from the CRDs in crds/
// (npm run generate) and the constants that name the group, version and kinds.
export type {
  Registry,
  RegistrySpec,
  RegistryStatus,
  RegistryStorage,
  RegistryStoragePersistentVolumeClaim,
  RegistryStorageS3,
  RegistryStorageEmptyDir,
  RegistryTls,
  RegistryTlsIssuerRef,
  RegistryExpose,
  RegistryExposeService,
  RegistryExposeIngress,
  RegistryAuth,
  RegistryPullSecrets,
  RegistryPullSecretsServiceAccounts,
  RegistryPullSecretsRotation,
  RegistryNodeAccess,
  RegistryGarbageCollection,
  RegistryResources,
  RegistryStatusPullSecrets,
  RegistryStatusGarbageCollection,
  RegistryStatusGarbageCollectionLastRun,
  Toleration,
  LabelSelector,
  LabelSelectorRequirement,
  Condition,
} from './generated/registry.ts';
export type {
  Repository,
  RepositorySpec,
  RepositoryStatus,
  RepositoryRegistryRef,
  RepositoryPull,
  RepositoryPush,
} from './generated/repository.ts';
export type {
  RetentionPolicy,
  RetentionPolicySpec,
  RetentionPolicyStatus,
  RetentionPolicyRegistryRef,
  RetentionPolicyRepositories,
  RetentionPolicyRule,
  RetentionPolicyRuleTags,
  RetentionPolicyRuleKeep,
  RetentionPolicyUntagged,
  RetentionPolicyProtect,
  RetentionPolicyProtectMaxDeletions,
  RetentionPolicyStatusLastRun,
} from './generated/retentionpolicy.ts';

export const GROUP = 'berth.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = 'berth.dev/v1alpha1';

/** A kind of the berth.dev API with the plural its REST path uses (for CustomObjectsApi). */
export interface KindDescriptor {
  readonly kind: string;
  readonly plural: string;
}

export const RegistryKind = { kind: 'Registry', plural: 'registries' } as const;
export const RepositoryKind = { kind: 'Repository', plural: 'repositories' } as const;
export const RetentionPolicyKind = { kind: 'RetentionPolicy', plural: 'retentionpolicies' } as const;

export const kinds = [
  RegistryKind,
  RepositoryKind,
  RetentionPolicyKind,
] as const satisfies readonly KindDescriptor[];

/** Values of Registry.spec.tls.mode. */
export const tlsModes = ['SelfSigned', 'CertManager', 'Secret', 'Disabled'] as const;
/** Values of RetentionPolicy.spec.mode. */
export const retentionModes = ['DryRun', 'Enforce'] as const;
