// Installs berth into a real-node ground the way a user does: `helm install` of charts/berth, with
// the locally built image (imported into the node, so IfNotPresent finds it), into a namespace that
// enforces the restricted Pod Security Standard. Shared by test/e2e-node and `make run`.
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { NodeGround } from './node-ground.ts';
import { repoRoot } from './processes.ts';

export const berthNamespace = 'berth-system';

/** helm install of charts/berth into berth-system, from the local image; waits for the rollout. */
export async function installBerth(ground: NodeGround, values: string[] = []): Promise<void> {
  const core = ground.kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({
    body: {
      metadata: {
        name: berthNamespace,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        },
      },
    },
  });
  await ground.helm([
    'install',
    'berth',
    path.join(repoRoot, 'charts/berth'),
    '--namespace',
    berthNamespace,
    ...localImageValues(ground),
    ...values.flatMap((v) => ['--set', v]),
    '--wait',
    '--timeout',
    '180s',
  ]);
}

/** helm flags that make the chart run berth from the image built here (already on the node). */
export function localImageValues(ground: Pick<NodeGround, 'images'>): string[] {
  const [repository, tag] = splitRef(ground.images.berth);
  return [
    '--set',
    `image.repository=${repository}`,
    '--set',
    `image.tag=${tag}`,
    '--set',
    'image.pullPolicy=IfNotPresent',
  ];
}

export function splitRef(ref: string): [string, string] {
  const at = ref.lastIndexOf(':');
  return at > ref.lastIndexOf('/') ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
}
