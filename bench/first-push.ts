// bench/first-push: time to a working registry on the real node (test/harness/node.ts). berth is
// installed with its Helm chart from the local image; then, for each of BENCH_FIRST_PUSH_RUNS
// Registries (default 2), the time from creating the Registry (what `kubectl apply` does) to:
//  - Ready=True in status;
//  - the first push that succeeds with the admin Secret, from this machine through the gateway.
// The floor, measured in the same run on the same node: a bare Distribution Deployment of the same
// image with an emptyDir and no TLS or auth, from its creation to its pod Ready (the kubelet's
// share: scheduling, sandbox, container start, readiness probe). What berth adds above the floor is
// its own work: CA and certificates, the config Secret, the token service, the claim, the rollout.
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../test/harness/kube.ts';
import { startNodeGround } from '../test/harness/node-ground.ts';
import { binDir } from '../test/harness/processes.ts';
import {
  createBerthObject,
  createNamespace,
  installBerth,
  readyWithFirstPush,
  registryReady,
} from '../test/e2e-node/fixture.ts';
import { printTable, writeResults, type Row } from './lib/results.ts';

const runs = Number(process.env.BENCH_FIRST_PUSH_RUNS ?? 2);
const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
const log = (line: string) => console.log(`[first-push] ${line}`);

const ground = await startNodeGround({ log, volumes: runs + 1 });
try {
  const core = ground.kc.makeApiClient(k8s.CoreV1Api);
  const apps = ground.kc.makeApiClient(k8s.AppsV1Api);
  let t = Date.now();
  await installBerth(ground);
  const installMs = Date.now() - t;
  log(`berth installed in ${seconds(installMs)}s`);
  const ns = 'bench-first-push';
  await createNamespace(ground.kc, ns, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  const pause = path.join(binDir, 'images', 'pause.tar');

  // The floor: a bare registry pod on the same node, to Ready.
  t = Date.now();
  const labels = { app: 'bare-registry' };
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'bare-registry' },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'registry',
                image: 'registry:3.1.1',
                imagePullPolicy: 'IfNotPresent',
                ports: [{ containerPort: 5000 }],
                readinessProbe: { httpGet: { path: '/', port: 5000 }, periodSeconds: 1 },
                volumeMounts: [{ name: 'data', mountPath: '/var/lib/registry' }],
              },
            ],
            volumes: [{ name: 'data', emptyDir: {} }],
          },
        },
      },
    },
  });
  await eventually(
    'the bare registry pod Ready',
    () => core.listNamespacedPod({ namespace: ns, labelSelector: 'app=bare-registry' }),
    (l) => l.items.some((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')),
    180_000,
  );
  const floorMs = Date.now() - t;
  log(`bare registry pod Ready in ${seconds(floorMs)}s`);

  const rows: Row[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `first-${i}`;
    t = Date.now();
    await createBerthObject(
      ground.kc,
      'Registry',
      ns,
      { name },
      { storage: { persistentVolumeClaim: { size: '1Gi' } }, tls: { mode: 'SelfSigned' } },
    );
    await registryReady(ground.kc, ns, name, 300_000);
    const readyMs = Date.now() - t;
    await readyWithFirstPush(ground, ns, name, pause, 'bench/pause:v1');
    const pushMs = Date.now() - t;
    rows.push({
      registry: name,
      'apply→Ready s': seconds(readyMs),
      'apply→first push s': seconds(pushMs),
      'bare pod Ready s': seconds(floorMs),
      'push / floor': Number((pushMs / floorMs).toFixed(2)),
    });
  }
  printTable('Time to a working registry on the real node (SelfSigned TLS, a local-PV claim)', rows);
  writeResults('first-push', {
    installSeconds: seconds(installMs),
    floorSeconds: seconds(floorMs),
    runs: rows,
  });
} finally {
  await ground.stop();
}
