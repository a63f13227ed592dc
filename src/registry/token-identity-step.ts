// The token service's identity for ServiceAccount tokens (docs/identity.md): before the token
// Deployment is written, its ServiceAccount `berth-token-service` and the ClusterRoleBinding of
// that ServiceAccount to the installation's TokenReview ClusterRole (`create tokenreviews` only),
// in the Registry's namespace. Written by server-side apply once per namespace and ClusterRole
// per operator process (a steady cluster sees no writes from it); a Registry that takes no
// ServiceAccount tokens gets neither.
import { applyOwned } from '../runtime/writes.ts';
import { core } from '../runtime/kube/resource.ts';
import { resources } from '../model/resources.ts';
import type { Deps } from '../runtime/deps.ts';
import type { BuildContext } from './desired/context.ts';
import { serviceAccountAudience, tokenServiceIdentity } from './desired/token-service.ts';

/** The ClusterRole the installation ships for the token service (the chart prefixes its release name). */
export const defaultTokenReviewClusterRole = 'berth-token-review';

export class TokenIdentityStep {
  private readonly client: Deps['client'];
  private readonly clusterRole: string;
  private readonly applied = new Set<string>();

  constructor(client: Deps['client'], clusterRole = defaultTokenReviewClusterRole) {
    this.client = client;
    this.clusterRole = clusterRole;
  }

  async apply(ctx: Pick<BuildContext, 'registry' | 'ref'>): Promise<void> {
    if (serviceAccountAudience(ctx.registry, ctx.ref) === undefined) return;
    const key = `${ctx.ref.namespace}/${this.clusterRole}`;
    if (this.applied.has(key)) return;
    const { serviceAccount, binding } = tokenServiceIdentity(ctx.ref, this.clusterRole);
    await applyOwned(this.client, core.serviceAccounts, serviceAccount, undefined);
    await applyOwned(this.client, resources.clusterRoleBindings, binding, undefined);
    this.applied.add(key);
  }
}
