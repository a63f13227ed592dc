// What the builders of a Registry's objects need, computed once per reconcile.
import type { Registry } from '../../api/index.ts';
import type { RegistryRef } from '../../model/names.ts';

export interface BuildContext {
  registry: Registry;
  ref: RegistryRef;
  /** The berth image, for the token service. */
  operatorImage: string;
  /** Serve TLS (false only for tls.mode Disabled). */
  tls: boolean;
  /** Name of the Secret with tls.crt/tls.key that the registry and its token service serve. */
  tlsSecretName: string;
  /** Checksums of what the pods load at start: a change rolls them. */
  checksums: { config: string; tls: string; tokenKey: string };
}
