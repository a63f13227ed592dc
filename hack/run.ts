// `make run`: runs berth's operator. With KUBECONFIG set it runs against that cluster. Without it,
// it starts the local test-ground control plane, installs the CRDs, applies config/samples, and
// tells the user how to reach it; Ctrl-C stops everything it started.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startControlPlane, type ControlPlane } from '../test/harness/controlplane.ts';
import { installCRDs } from '../test/harness/crds.ts';
import { binary, repoRoot } from '../test/harness/processes.ts';

const say = (line: string) => console.error(`[make run] ${line}`);

function sampleNamespaces(dir: string): string[] {
  const names = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'))) {
      const ns = (doc.toJS() as { metadata?: { namespace?: string } } | null)?.metadata?.namespace;
      if (ns) names.add(ns);
    }
  }
  return [...names];
}

async function main(): Promise<number> {
  let cp: ControlPlane | undefined;
  let kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) {
    say('KUBECONFIG is not set: starting a local control plane (etcd, kube-apiserver, controllers, kwok)');
    cp = await startControlPlane({ nodes: 2, log: say });
    kubeconfig = cp.kubeconfig;
    await installCRDs(kubeconfig);
    say('installed the berth CRDs');
    const samples = path.join(repoRoot, 'config/samples');
    if (existsSync(samples)) {
      const kubectl = (...args: string[]) =>
        execFileSync(binary('kubectl'), [...args, `--kubeconfig=${kubeconfig}`], { stdio: 'inherit' });
      for (const ns of sampleNamespaces(samples)) {
        try {
          execFileSync(binary('kubectl'), ['create', 'namespace', ns, `--kubeconfig=${kubeconfig}`], {
            stdio: 'ignore',
          });
        } catch {
          // exists already
        }
      }
      kubectl('apply', '--server-side', '--field-manager=make-run', '-f', samples);
      say('applied config/samples');
    }
    say(`the cluster is yours: export KUBECONFIG=${kubeconfig}; ${binary('kubectl')} get berth -A`);
  }
  // On the local control plane one operator runs: no Lease (and no berth-system namespace) needed.
  const args = cp ? ['--leader-elect=false'] : [];
  const operator = spawn(process.execPath, [path.join(repoRoot, 'src/main.ts'), 'operator', ...args], {
    stdio: 'inherit',
    env: { ...process.env, KUBECONFIG: kubeconfig },
  });
  const stop = () => operator.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await new Promise<number>((resolve) => operator.on('exit', (c) => resolve(c ?? 1)));
  if (cp) {
    say('stopping the local control plane');
    await cp.stop();
  }
  return code;
}

process.exitCode = await main();
