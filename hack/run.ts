// `make run`: berth on a cluster.
//
// With KUBECONFIG set, it runs berth's operator on this machine against that cluster.
//
// Without it, it is the five-minute story on a local cluster: it starts the test ground with a
// real node (test/harness/node-ground.ts: control plane, kubelet, containerd, kube-proxy, CoreDNS,
// local volumes), builds berth's image without Docker and installs berth with its Helm chart, so
// the operator is a real pod; applies config/samples (all but those marked "make run: skip"),
// waits until every sample Registry is Ready and answers, and prints the next steps: push from
// this machine through the cluster gateway, then `kubectl run` by the in-cluster image name.
// Ctrl-C stops and removes everything it started.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { installBerth } from '../test/harness/berth-install.ts';
import { eventually } from '../test/harness/kube.ts';
import { startNodeGround, type NodeGround } from '../test/harness/node-ground.ts';
import { binary, binDir, repoRoot } from '../test/harness/processes.ts';

const say = (line: string) => console.error(`[make run] ${line}`);

interface SampleObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

/** The sample files make run applies: every one whose first line does not say to skip it. */
function samples(dir: string): { files: string[]; objects: SampleObject[]; skipped: string[] } {
  const files: string[] = [];
  const skipped: string[] = [];
  const objects: SampleObject[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    if (/^# make run: skip/.test(text)) {
      skipped.push(`${file} (${/^# make run: skip \((.*)\)/.exec(text)?.[1] ?? 'marked'})`);
      continue;
    }
    files.push(path.join(dir, file));
    for (const doc of parseAllDocuments(text)) {
      const obj = doc.toJS() as SampleObject | null;
      if (obj?.kind) objects.push(obj);
    }
  }
  return { files, objects, skipped };
}

async function serving(ground: NodeGround, endpoint: string, caFile: string): Promise<boolean> {
  // An unauthenticated /v2/ through the gateway: 401 with the token realm means it serves.
  return new Promise((resolve) => {
    const child = spawn(binary('crane'), ['catalog', endpoint], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: path.dirname(caFile),
        SSL_CERT_FILE: caFile,
        ...ground.clientEnv,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', () => resolve(/UNAUTHORIZED|401|authentication required/i.test(err)));
  });
}

async function local(): Promise<number> {
  say('KUBECONFIG is not set: starting a local cluster with a real node (needs root) ...');
  const ground = await startNodeGround({
    log: say,
    gatewayPort: Number(process.env.BERTH_GATEWAY_PORT ?? 0),
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping and removing the local cluster ...');
    await ground.stop();
    say('done');
  };
  try {
    const kc = ground.kc;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    say(`installing berth with its Helm chart (image ${ground.images.berth}) ...`);
    await installBerth(ground);
    say('berth is running: kubectl -n berth-system get pods');

    const dir = path.join(repoRoot, 'config/samples');
    const { files, objects, skipped } = samples(dir);
    for (const s of skipped) say(`leaving out sample ${s}`);
    const namespaces = new Set(objects.map((o) => o.metadata.namespace).filter((n): n is string => !!n));
    const registries = objects.filter((o) => o.kind === 'Registry');
    for (const ns of namespaces) {
      const hostsRegistry = registries.some((r) => r.metadata.namespace === ns);
      await core.createNamespace({
        body: {
          metadata: {
            name: ns,
            // The node agent mounts host folders: a Registry's namespace must allow privileged pods.
            // Team namespaces are selected for the `main` Registry's pull secrets.
            labels: hostsRegistry
              ? { 'pod-security.kubernetes.io/enforce': 'privileged' }
              : { 'berth.dev/pull': 'main' },
          },
        },
      });
    }
    await ground.kubectl([
      'apply',
      '--server-side',
      '--field-manager=make-run',
      ...files.flatMap((f) => ['-f', f]),
    ]);
    say(`applied ${files.length} samples: ${files.map((f) => path.basename(f)).join(', ')}`);

    const clientDir = path.join(ground.cp.dir, 'client');
    mkdirSync(clientDir, { recursive: true });
    for (const r of registries) {
      const ns = r.metadata.namespace ?? 'default';
      say(`waiting for Registry ${ns}/${r.metadata.name} to be Ready and serving ...`);
      const ready = await eventually(
        `Registry ${ns}/${r.metadata.name} Ready`,
        async () =>
          (await kc.makeApiClient(k8s.CustomObjectsApi).getNamespacedCustomObject({
            group: 'berth.dev',
            version: 'v1alpha1',
            plural: 'registries',
            namespace: ns,
            name: r.metadata.name,
          })) as {
            status?: {
              endpoint?: string;
              caConfigMap?: string;
              conditions?: { type: string; status: string }[];
            };
          },
        (o) => o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        300_000,
      );
      const ca = await core.readNamespacedConfigMap({ namespace: ns, name: ready.status!.caConfigMap! });
      const caFile = path.join(clientDir, `${r.metadata.name}-ca.crt`);
      writeFileSync(caFile, ca.data?.['ca.crt'] ?? '');
      await eventually(
        `${ready.status!.endpoint} to answer`,
        () => serving(ground, ready.status!.endpoint!, caFile),
        (ok) => ok,
        120_000,
      );
      say(`Registry ${ns}/${r.metadata.name} is Ready and serves at ${ready.status!.endpoint}`);
    }

    const main = registries.find((r) => r.metadata.name === 'main');
    const kubectl = binary('kubectl');
    const crane = binary('crane');
    const lines = [
      '',
      'The cluster is yours. In another shell:',
      '',
      `  export KUBECONFIG=${ground.cp.kubeconfig}`,
      `  ${kubectl} get berth -A`,
    ];
    if (main) {
      const ns = main.metadata.namespace ?? 'registry-system';
      const endpoint = `main.${ns}.svc:443`;
      lines.push(
        '',
        '  # Push an image from this machine with the admin credential and the CA. crane goes through',
        '  # the cluster gateway, an HTTPS proxy that reaches in-cluster names (kubectl does not need it):',
        `  ${kubectl} -n ${ns} get secret main-admin -o jsonpath='{.data.\\.dockerconfigjson}' | base64 -d > ${clientDir}/config.json`,
        `  DOCKER_CONFIG=${clientDir} SSL_CERT_FILE=${path.join(clientDir, 'main-ca.crt')} HTTPS_PROXY=${ground.gateway.url} \\`,
        `    ${crane} push ${path.join(binDir, 'images', 'pause.tar')} ${endpoint}/team-a/web:v1`,
        '',
        '  # Run it in team-a (selected by the pull secrets: no imagePullSecrets in the pod):',
        `  ${kubectl} -n team-a run web --image=${endpoint}/team-a/web:v1`,
        `  ${kubectl} -n team-a get pod web -w`,
      );
    }
    lines.push(
      '',
      `  # Look inside the node: ${binary('crictl')} through nsenter, logs in ${ground.cp.dir}/*.log (docs/node.md)`,
      '',
      'Ctrl-C here stops and removes everything.',
      '',
    );
    console.log(lines.join('\n'));
  } catch (err) {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    await stop();
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await stop();
  return 0;
}

async function remote(kubeconfig: string): Promise<number> {
  say(`running the operator against ${kubeconfig}`);
  const operator = spawn(process.execPath, [path.join(repoRoot, 'src/main.ts'), 'operator'], {
    stdio: 'inherit',
    env: { ...process.env, KUBECONFIG: kubeconfig },
  });
  const stop = () => operator.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise<number>((resolve) => operator.on('exit', (c) => resolve(c ?? 1)));
}

process.exitCode = process.env.KUBECONFIG ? await remote(process.env.KUBECONFIG) : await local();
