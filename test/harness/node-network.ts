// The real node's network: a network namespace of its own, joined to this machine by one veth
// pair, with addresses from ranges the harness picks at random and checks are unused. Nothing
// leaves the machine: the node namespace has no default route, only its own links, a connected
// route to the host end, and the Service range routed to its loopback (kube-proxy's DNAT
// rules then send it to the endpoints). The host forwards nothing (ip_forward stays as it is).
//
// Every link, address and namespace made here is removed by `remove()`, and by the reaper's
// cleanup commands if this process dies first.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface NodeNetwork {
  /** Name of the network namespace (`ip netns`), also its file under /run/netns. */
  netns: string;
  netnsPath: string;
  /** The host end of the veth pair, in this machine's namespace. */
  hostLink: string;
  /** The host's address on the link: the API server listens here. */
  hostIP: string;
  /** The node's address: its InternalIP, the kubelet, NodePorts, cluster DNS. */
  nodeIP: string;
  /** The pods' range, on the bridge inside the node namespace. */
  podCIDR: string;
  /** The Service range (a /24 of its own, so two grounds never overlap), routed to the node. */
  serviceCIDR: string;
  /** The first Service address: the `kubernetes` Service. */
  kubernetesServiceIP: string;
  /** Commands that undo everything, for the reaper. */
  cleanup: string[][];
  remove(): void;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The third octet of 10.213.X.0/24 (link), 10.214.X.0/24 (pods), 10.215.X.0/24 (Services) that no route uses. */
function freeOctet(): number {
  const routes = ip('-4', 'route', 'show', 'table', 'all');
  for (let i = 0; i < 64; i++) {
    const n = randomBytes(1)[0]!;
    if (![213, 214, 215].some((b) => routes.includes(`10.${b}.${n}.`))) return n;
  }
  throw new Error('no free 10.213.X.0/24 range for the real node');
}

export function createNodeNetwork(): NodeNetwork {
  const id = randomBytes(3).toString('hex');
  const n = freeOctet();
  const serviceCIDR = `10.215.${n}.0/24`;
  const netns = `berth-node-${id}`;
  const hostLink = `bnh${id}`;
  const peer = `bnn${id}`;
  const net: NodeNetwork = {
    netns,
    netnsPath: `/run/netns/${netns}`,
    hostLink,
    hostIP: `10.213.${n}.1`,
    nodeIP: `10.213.${n}.2`,
    podCIDR: `10.214.${n}.0/24`,
    serviceCIDR,
    kubernetesServiceIP: `10.215.${n}.1`,
    cleanup: [
      ['ip', 'link', 'del', hostLink],
      ['ip', 'netns', 'del', netns],
    ],
    remove: () => {
      for (const c of net.cleanup) {
        try {
          execFileSync(c[0]!, c.slice(1), { stdio: 'ignore' });
        } catch {
          // already gone
        }
      }
    },
  };
  try {
    ip('netns', 'add', netns);
    ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', netns);
    ip('addr', 'add', `${net.hostIP}/24`, 'dev', hostLink);
    ip('link', 'set', hostLink, 'up');
    // This machine reaches Service addresses through the node, as a machine on the node network
    // would (the cluster gateway, gateway.ts, connects to them). The route goes with the link.
    ip('route', 'add', serviceCIDR, 'via', net.nodeIP, 'dev', hostLink);
    // Pods talk to the API server (through the kubernetes Service) from their own addresses.
    ip('route', 'add', net.podCIDR, 'via', net.nodeIP, 'dev', hostLink);
    const inNs = (...args: string[]) => ip('-n', netns, ...args);
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'set', peer, 'name', 'eth0');
    inNs('addr', 'add', `${net.nodeIP}/24`, 'dev', 'eth0');
    inNs('link', 'set', 'eth0', 'up');
    // Locally sent packets to a Service address need a route before kube-proxy's DNAT rewrites
    // them. Through lo, one that no rule rewrites goes nowhere (this kernel has no dummy links).
    inNs('route', 'add', serviceCIDR, 'dev', 'lo');
    // Pods reach Services and each other through the node namespace; bridged replies must pass
    // through conntrack so Service NAT is undone (these sysctls are per network namespace).
    for (const [key, value] of [
      ['net.ipv4.ip_forward', '1'],
      ['net.bridge.bridge-nf-call-iptables', '1'],
      ['net.ipv4.conf.all.route_localnet', '1'],
    ] as const) {
      execFileSync('nsenter', [`--net=${net.netnsPath}`, 'sysctl', '-q', '-w', `${key}=${value}`], {
        stdio: 'ignore',
      });
    }
  } catch (err) {
    net.remove();
    throw err;
  }
  return net;
}
