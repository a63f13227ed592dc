// Jest global setup for the integration suites: one real control plane for the whole run.
// Each suite isolates itself in namespaces of its own. The kubeconfig reaches the test workers
// through BERTH_TEST_KUBECONFIG.
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { installCRDs } from '../harness/crds.ts';

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
  console.log(`\n[test ground] control plane ready in ${cp.startupSeconds.toFixed(1)}s`);
}
