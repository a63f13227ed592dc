// Jest global setup for the integration suites: one real control plane for the whole run.
// Each suite isolates itself in namespaces of its own. The kubeconfig reaches the test workers
// through BERTH_TEST_KUBECONFIG. The API is installed whole, as `kubectl apply -R -f crds/` would:
// the CRDs and the Repository admission policy, so every suite, in any order and side by side,
// meets the same API (a suite that needs the policy absent starts a control plane of its own).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { KubeClient, type KubeObject } from '../../src/runtime/kube/client.ts';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { installCRDs } from '../harness/crds.ts';
import { repoRoot } from '../harness/processes.ts';

declare global {
  var __berthControlPlane: ControlPlane | undefined;
}

export default async function globalSetup(): Promise<void> {
  const cp = await startControlPlane({
    nodes: 2,
    log: (line) => process.env.BERTH_TEST_VERBOSE === '1' && console.log(`\n[test ground] ${line}`),
  });
  globalThis.__berthControlPlane = cp;
  process.env.BERTH_TEST_KUBECONFIG = cp.kubeconfig;
  process.env.BERTH_TEST_CONTROL_PLANE_DIR = cp.dir;
  await installCRDs(cp.kubeconfig);
  await installAdmissionPolicies(cp.kubeconfig);
  console.log(`\n[test ground] control plane ready in ${cp.startupSeconds.toFixed(1)}s`);
}

async function installAdmissionPolicies(kubeconfig: string): Promise<void> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const client = new KubeClient(kc);
  const dir = path.join(repoRoot, 'crds/admission');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')))
    for (const doc of parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'))) {
      const obj = doc.toJS() as KubeObject | null;
      if (!obj?.kind) continue;
      const plural = {
        ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
        ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
      }[obj.kind];
      if (!plural) throw new Error(`${file}: no install path for kind ${obj.kind}`);
      await client.apply(
        `/apis/admissionregistration.k8s.io/v1/${plural}/${obj.metadata?.name ?? ''}`,
        obj,
        'berth-test-setup',
      );
    }
}
