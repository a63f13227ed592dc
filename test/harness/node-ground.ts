// The test ground with a real node: the control plane, one real kubelet node with berth's images
// imported (hack/images.sh builds them without Docker), a pool of local volumes with a default
// StorageClass, and the cluster gateway so clients on this machine reach in-cluster names. Used by
// test/e2e-node and by `make run`.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './controlplane.ts';
import { startClusterGateway, type ClusterGateway } from './gateway.ts';
import type { RealNode } from './node.ts';
import { binDir, binary, repoRoot } from './processes.ts';
import { createLocalVolumes } from './volumes.ts';

const run = promisify(execFile);

export interface LocalImages {
  /** berth's image reference, e.g. localhost/berth:dev. */
  berth: string;
  /** The archives to import into the node. */
  archives: string[];
}

/**
 * Builds the images when their inputs changed (hack/images.sh) and lists what it made. With
 * BERTH_IMAGES_REUSE=1 (for working on a test while src/ changes) the images already in
 * bin/images are used as they are, however old.
 */
export async function buildImages(log: (line: string) => void = () => {}): Promise<LocalImages> {
  const started = Date.now();
  const dir = path.join(binDir, 'images');
  if (process.env.BERTH_IMAGES_REUSE === '1' && existsSync(path.join(dir, 'berth.ref')))
    log('images reused as they are (BERTH_IMAGES_REUSE=1)');
  else
    await run('bash', [path.join(repoRoot, 'hack/images.sh')], {
      cwd: repoRoot,
      maxBuffer: 64 * 1024 * 1024,
    });
  log(`images ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  const archives = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.tar'))
        .map((f) => path.join(dir, f))
    : [];
  const berth = readFileSync(path.join(dir, 'berth.ref'), 'utf8').trim();
  return { berth, archives };
}

export interface NodeGround {
  cp: ControlPlane;
  node: RealNode;
  kc: k8s.KubeConfig;
  gateway: ClusterGateway;
  images: LocalImages;
  /** Environment for a client on this machine: the gateway as HTTPS proxy. */
  clientEnv: Record<string, string>;
  /** helm with this ground's kubeconfig and its own cache folders. */
  helm(args: string[]): Promise<string>;
  kubectl(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface NodeGroundOptions {
  log?: (line: string) => void;
  /** Port of the cluster gateway on 127.0.0.1 (default: any free one). */
  gatewayPort?: number;
  volumes?: number;
  /** kwok nodes beside the real one (default none), for suites that also count many nodes. */
  kwokNodes?: number;
}

export async function startNodeGround(options: NodeGroundOptions = {}): Promise<NodeGround> {
  const log = options.log ?? (() => {});
  const images = await buildImages(log);
  const cp = await startControlPlane({ nodes: options.kwokNodes ?? 0, realNode: true, log });
  try {
    const node = cp.node!;
    let t = Date.now();
    await node.importImages(images.archives);
    log(
      `imported ${images.archives.length} images into the node in ${((Date.now() - t) / 1000).toFixed(1)}s`,
    );
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    t = Date.now();
    await createLocalVolumes(kc, {
      dir: path.join(cp.dir, 'volumes'),
      nodeName: node.name,
      count: options.volumes ?? 8,
    });
    const gateway = await startClusterGateway(node.network, options.gatewayPort);
    log(`cluster gateway on ${gateway.url} (HTTPS_PROXY for in-cluster names)`);
    const tool = (name: string) => async (args: string[]) =>
      (
        await run(binary(name), [...args, '--kubeconfig', cp.kubeconfig], {
          env: {
            ...process.env,
            HELM_CACHE_HOME: path.join(cp.dir, 'helm'),
            HELM_CONFIG_HOME: path.join(cp.dir, 'helm'),
          },
          maxBuffer: 64 * 1024 * 1024,
        })
      ).stdout;
    return {
      cp,
      node,
      kc,
      gateway,
      images,
      clientEnv: { HTTPS_PROXY: gateway.url, https_proxy: gateway.url, NO_PROXY: '', no_proxy: '' },
      helm: tool('helm'),
      kubectl: tool('kubectl'),
      stop: async () => {
        await gateway.close();
        await cp.stop({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' });
      },
    };
  } catch (err) {
    await cp.stop({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' });
    throw err;
  }
}
