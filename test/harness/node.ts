// One real Kubernetes node on this machine: containerd 2 (CRI, runc, the CNI bridge), the kubelet,
// kube-proxy and CoreDNS, all built from their Go modules at pinned versions (hack/tools.sh), with
// runc and the CNI plugins from Debian.
//
// The node lives in a network namespace of its own (node-network.ts) and in a mount namespace of
// its own, in which /etc and /var are overlays whose writes land in the node's folder, /run is a
// fresh tmpfs, and containerd's and the kubelet's state are folders of the node's. So the node has
// its own /etc/hosts, /etc/containerd/certs.d and /var/log, and this machine's files are never
// touched. Pods get cgroups under /berth-node-<id> in every hierarchy, which stopping removes.
//
// Everything is undone by stop(), and by the reaper's cleanup script if this process dies first:
// every container, shim and node process, the mounts (they live only in the node's mount
// namespace, which goes with its last process and its pinned file), the cgroups, the veth pair and
// the network namespace.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { issueCertificate, type KeyPair } from '../../src/pki/certificates.ts';
import { waitFor } from './net.ts';
import type { NodeNetwork } from './node-network.ts';
import { binary, ProcessGroup, type ManagedProcess } from './processes.ts';

const run = promisify(execFile);

/** The sandbox image the node's containerd uses (hack/images.sh builds it from hack/pause). */
export const sandboxImage = 'registry.k8s.io/pause:3.10.1';
/** The taint-free label tests select the real node by. */
export const realNodeLabel = 'berth.dev/real-node';

export interface RealNode {
  name: string;
  ip: string;
  network: NodeNetwork;
  /** The node's containerd socket, inside the node's mount namespace. */
  containerdSocket: string;
  /** Runs a command inside the node (its network and mount namespaces), with the node's HOME. */
  exec(command: string, args: string[], options?: { timeoutMs?: number }): Promise<string>;
  /** Imports image archives (docker-archive or OCI) into the node's containerd for the kubelet. */
  importImages(archives: string[]): Promise<void>;
  /** Reads a file as the node sees it (e.g. /etc/containerd/certs.d/...), or undefined. */
  readFile(file: string): Promise<string | undefined>;
  /** Lists a folder as the node sees it. */
  listDir(dir: string): Promise<string[]>;
  /** The last lines of each node process's log. */
  logs(lines?: number): string;
  /** Stops every pod and node process; the group's cleanup removes the rest. */
  stop(): Promise<void>;
}

export interface RealNodeOptions {
  group: ProcessGroup;
  dir: string;
  network: NodeNetwork;
  ca: KeyPair;
  admin: KeyPair;
  /** Writes a kubeconfig for a user signed by the control plane's CA. */
  userKubeconfig(user: string, groups?: string[]): Promise<string>;
  adminKubeconfig: string;
  name?: string;
  log?: (line: string) => void;
}

export async function startRealNode(options: RealNodeOptions): Promise<RealNode> {
  const { group, network, log = () => {} } = options;
  const name = options.name ?? 'real-node';
  const id = network.netns.replace(/^berth-node-/, '');
  const cgroupRoot = `/berth-node-${id}`;
  const dir = path.join(options.dir, 'node');
  const d = (...p: string[]) => path.join(dir, ...p);
  for (const sub of [
    'ns',
    'etc/upper',
    'etc/work',
    'var/upper',
    'var/work',
    'containerd',
    'kubelet',
    'home',
    'conf',
  ])
    mkdirSync(d(sub), { recursive: true });
  const file = (name_: string, content: string) => {
    writeFileSync(d('conf', name_), content, { mode: 0o600 });
    return d('conf', name_);
  };

  // Undo, in order: every process of the node (node processes and shims share its mount
  // namespace; containers are found by their cgroups), the pinned mount namespace, the cgroups.
  const mntns = d('ns', 'mnt');
  const cleanupScript = file(
    'cleanup.sh',
    [
      '#!/bin/sh',
      `ns=$(stat -L -c %i ${mntns} 2>/dev/null)`,
      'for i in 1 2 3 4 5; do',
      '  found=0',
      `  for f in $(find /sys/fs/cgroup/*${cgroupRoot} -name cgroup.procs 2>/dev/null); do for p in $(cat "$f"); do kill -9 "$p" 2>/dev/null; found=1; done; done`,
      '  if [ -n "$ns" ]; then for p in /proc/[0-9]*; do',
      '    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "mnt:[$ns]" ] && kill -9 "${p#/proc/}" 2>/dev/null && found=1',
      '  done; fi',
      '  [ "$found" = 0 ] && break; sleep 0.5',
      'done',
      `umount ${mntns} 2>/dev/null; umount ${d('ns')} 2>/dev/null`,
      `for c in /sys/fs/cgroup/*${cgroupRoot}; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done`,
      'exit 0',
      '',
    ].join('\n'),
  );
  group.onCleanup(['sh', cleanupScript], ...network.cleanup);

  // The mount namespace, pinned on a file in a private bind mount so processes can join it.
  await run('mount', ['--bind', d('ns'), d('ns')]);
  await run('mount', ['--make-private', d('ns')]);
  writeFileSync(mntns, '');
  const setup = [
    'set -e',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${d('etc/upper')},workdir=${d('etc/work')} /etc`,
    `mount -t overlay overlay -o lowerdir=/var,upperdir=${d('var/upper')},workdir=${d('var/work')} /var`,
    'mkdir -p /var/lib/containerd /var/lib/kubelet /var/log/pods /var/log/containers',
    // overlayfs snapshots cannot live on an overlay: containerd's root is a plain folder
    `mount --bind ${d('containerd')} /var/lib/containerd`,
    `mount --bind ${d('kubelet')} /var/lib/kubelet`,
    'mount --make-rshared /var/lib/kubelet',
    'mount -t tmpfs -o mode=755 tmpfs /run',
    'mkdir -p /run/containerd /run/netns /etc/containerd/certs.d /etc/cni/net.d',
    `printf '127.0.0.1 localhost\\n${network.nodeIP} ${name}\\n' > /etc/hosts`,
    // The node has no upstream resolver: names it needs come from /etc/hosts (the node agent).
    "printf 'nameserver 127.0.0.1\\n' > /etc/resolv.conf",
  ].join('\n');
  await run('unshare', [`--mount=${mntns}`, '--propagation', 'private', 'sh', '-c', setup]);

  const enter = [`--net=${network.netnsPath}`, `--mount=${mntns}`, '--'];
  const env = { HOME: d('home'), PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` };
  const startIn = (proc: string, bin: string, args: string[]): ManagedProcess =>
    group.start(proc, 'nsenter', [...enter, bin, ...args], env);
  const exec: RealNode['exec'] = async (command, args, opts = {}) => {
    const { stdout } = await run('nsenter', [...enter, command, ...args], {
      env,
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  };

  // containerd 2, with the CRI plugin.
  const socket = '/run/containerd/containerd.sock';
  const containerdConfig = file(
    'containerd.toml',
    [
      'version = 3',
      'root = "/var/lib/containerd"',
      'state = "/run/containerd"',
      '[grpc]',
      `  address = "${socket}"`,
      "[plugins.'io.containerd.cri.v1.images']",
      '  snapshotter = "overlayfs"',
      // containerd 2.1+ pulls for the CRI through its transfer service by default, whose reading
      // of certs.d (hosts.toml) has changed across releases (containerd#12415); the local pull path
      // has always read it. The node agent's promise rests on it, so the node pins the local path.
      // BERTH_NODE_TRANSFER_PULL=1 runs the node with the transfer service instead (docs/node.md).
      `  use_local_image_pull = ${process.env.BERTH_NODE_TRANSFER_PULL === '1' ? 'false' : 'true'}`,
      "  [plugins.'io.containerd.cri.v1.images'.pinned_images]",
      `    sandbox = "${sandboxImage}"`,
      "  [plugins.'io.containerd.cri.v1.images'.registry]",
      '    config_path = "/etc/containerd/certs.d"',
      "[plugins.'io.containerd.cri.v1.runtime']",
      // The sandbox lacks CAP_SYS_RESOURCE: runc fails to lower oom_score_adj without this.
      '  restrict_oom_score_adj = true',
      "  [plugins.'io.containerd.cri.v1.runtime'.cni]",
      '    bin_dirs = ["/usr/lib/cni"]',
      '    conf_dir = "/etc/cni/net.d"',
      "  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
      '    runtime_type = "io.containerd.runc.v2"',
      "    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
      '      BinaryName = "/usr/sbin/runc"',
      '      SystemdCgroup = false',
      '',
    ].join('\n'),
  );
  await exec('sh', [
    '-c',
    `cat > /etc/cni/net.d/10-berth.conflist <<'EOF'\n${JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'berth',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: network.podCIDR }]],
              routes: [{ dst: '0.0.0.0/0' }],
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    )}\nEOF`,
  ]);
  const containerd = startIn('containerd', binary('containerd'), [
    `--config=${containerdConfig}`,
    '--log-level=warn',
  ]);
  const ctr = (...args: string[]) => exec(binary('ctr'), [`--address=${socket}`, ...args]);
  await waitFor('containerd', async () => (await ctr('version')).includes('Server'), {
    timeoutMs: 60_000,
    describe: () => ProcessGroup.tail(containerd.logFile),
  });
  log('containerd ready');

  // The kubelet: serving certificate for the node's address, client certificate as the node.
  const serving = await issueCertificate(options.ca, {
    commonName: name,
    dnsNames: [name],
    ipAddresses: [network.nodeIP],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 30 * 24 * 3600_000),
    usage: 'server',
  });
  const caFile = file('ca.crt', options.ca.certPem);
  const kubeletKubeconfig = await options.userKubeconfig(`system:node:${name}`, ['system:nodes']);
  const resolvConf = file('pod-resolv.conf', 'nameserver 127.0.0.1\n');
  const kubeletConfig = file(
    'kubelet.yaml',
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      failCgroupV1: false,
      address: network.nodeIP,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      tlsCertFile: file('kubelet.crt', serving.certPem),
      tlsPrivateKeyFile: file('kubelet.key', serving.keyPem),
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: caFile },
      },
      authorization: { mode: 'Webhook' },
      containerRuntimeEndpoint: `unix://${socket}`,
      cgroupDriver: 'cgroupfs',
      cgroupRoot,
      cgroupsPerQOS: true,
      enforceNodeAllocatable: [],
      clusterDNS: [network.nodeIP],
      clusterDomain: 'cluster.local',
      resolvConf,
      failSwapOn: false,
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      localStorageCapacityIsolation: false,
      serializeImagePulls: false,
      syncFrequency: '10s',
      nodeStatusUpdateFrequency: '5s',
      maxPods: 60,
    }),
  );
  // The kubelet wants its cgroupRoot to exist in every hierarchy (cgroup v1); a new cpuset needs
  // its parent's cpus and mems before any process can join it.
  await run('sh', [
    '-c',
    [
      'for h in /sys/fs/cgroup/*; do',
      '  [ "$(basename "$h")" = unified ] && continue',
      `  mkdir -p "$h${cgroupRoot}"`,
      'done',
      `cat /sys/fs/cgroup/cpuset/cpuset.cpus > /sys/fs/cgroup/cpuset${cgroupRoot}/cpuset.cpus`,
      `cat /sys/fs/cgroup/cpuset/cpuset.mems > /sys/fs/cgroup/cpuset${cgroupRoot}/cpuset.mems`,
    ].join('\n'),
  ]);
  const kubelet = startIn('kubelet', binary('kubelet'), [
    `--config=${kubeletConfig}`,
    `--kubeconfig=${kubeletKubeconfig}`,
    `--hostname-override=${name}`,
    `--node-ip=${network.nodeIP}`,
    `--node-labels=${realNodeLabel}=true`,
    '--v=1',
  ]);

  // kube-proxy (iptables mode, inside the node's namespace) and CoreDNS on the node's address.
  const proxyConfig = file(
    'kube-proxy.yaml',
    stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: options.adminKubeconfig },
      hostnameOverride: name,
      mode: 'iptables',
      clusterCIDR: network.podCIDR,
      conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      metricsBindAddress: '127.0.0.1:10249',
      healthzBindAddress: '127.0.0.1:10256',
      nodePortAddresses: [`${network.nodeIP}/32`],
    }),
  );
  const proxy = startIn('kube-proxy', binary('kube-proxy'), [`--config=${proxyConfig}`, '--v=1']);
  const corefile = file(
    'Corefile',
    [
      `cluster.local:53 in-addr.arpa:53 {`,
      `  bind ${network.nodeIP}`,
      '  errors',
      `  kubernetes cluster.local in-addr.arpa {`,
      `    kubeconfig ${options.adminKubeconfig}`,
      '    pods insecure',
      '    ttl 5',
      '  }',
      '  cache 5',
      '}',
      // No upstream: the test ground reaches no other network.
      '.:53 {',
      `  bind ${network.nodeIP}`,
      '  template ANY ANY {',
      '    rcode NXDOMAIN',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const coredns = startIn('coredns', binary('coredns'), [`-conf=${corefile}`, '-dns.port=53']);

  const processes = [containerd, kubelet, proxy, coredns];
  const logs = (lines = 30) =>
    processes.map((p) => `--- ${p.name}\n${ProcessGroup.tail(p.logFile, lines)}`).join('\n');
  const node: RealNode = {
    name,
    ip: network.nodeIP,
    network,
    containerdSocket: socket,
    exec,
    importImages: async (archives) => {
      for (const archive of archives) await ctr('-n', 'k8s.io', 'images', 'import', '--local', archive);
    },
    readFile: async (f) => {
      try {
        return await exec('cat', [f]);
      } catch {
        return undefined;
      }
    },
    listDir: async (f) => {
      try {
        return (await exec('ls', ['-1A', f])).split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
    logs,
    stop: async () => {
      await kubelet.stop();
      try {
        await exec(binary('crictl'), [`--runtime-endpoint=unix://${socket}`, 'rmp', '--all', '--force'], {
          timeoutMs: 60_000,
        });
      } catch {
        // the cleanup script kills what is left
      }
    },
  };
  for (const p of processes)
    void p.exited.then((code) => log(`node process ${p.name} exited (${String(code)})`));
  return node;
}
