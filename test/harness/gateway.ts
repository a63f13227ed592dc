// The cluster gateway: an HTTP CONNECT proxy on 127.0.0.1 through which a client on this machine
// reaches in-cluster names (`<service>.<namespace>.svc[.cluster.local]:<port>`), the way a laptop
// on a VPN into the cluster would. Names are resolved by the cluster's own DNS (CoreDNS on the
// real node) and the connection goes to the Service address, routed through the node. TLS stays end
// to end: the client checks the registry's certificate for the name it asked for. So
// `HTTPS_PROXY=http://127.0.0.1:<port> crane push main.registry-system.svc:443/...` works from this
// machine, token realm included, with no change to this machine's /etc/hosts.
//
// It connects only to addresses inside the node's Service and pod ranges: it is never a way out.
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import net from 'node:net';
import type { NodeNetwork } from './node-network.ts';

export interface ClusterGateway {
  /** http://127.0.0.1:<port>, for HTTPS_PROXY. */
  url: string;
  port: number;
  close(): Promise<void>;
}

function inRange(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const toInt = (a: string) => a.split('.').reduce((n, octet) => (n << 8) + Number(octet), 0) >>> 0;
  const mask = bits === '0' ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return net.isIPv4(address) && (toInt(address) & mask) === (toInt(base!) & mask);
}

export async function startClusterGateway(network: NodeNetwork, port = 0): Promise<ClusterGateway> {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([network.nodeIP]);
  const resolve = async (host: string): Promise<string> => {
    if (net.isIPv4(host)) return host;
    const name = host.endsWith('.cluster.local') ? host : `${host}.cluster.local`;
    const [address] = await resolver.resolve4(name);
    if (!address) throw new Error(`no address for ${host}`);
    return address;
  };
  const server = http.createServer((_req, res) => {
    res.writeHead(405, { 'content-type': 'text/plain' }).end('only CONNECT is supported\n');
  });
  const open = new Set<net.Socket>();
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    const target = req.url ?? '';
    const colon = target.lastIndexOf(':');
    const host = target.slice(0, colon);
    const targetPort = Number(target.slice(colon + 1));
    const refuse = (status: string) => {
      client.end(`HTTP/1.1 ${status}\r\n\r\n`);
    };
    client.on('error', () => client.destroy());
    if (colon <= 0 || !Number.isInteger(targetPort)) return refuse('400 Bad Request');
    resolve(host).then(
      (address) => {
        if (!inRange(address, network.serviceCIDR) && !inRange(address, network.podCIDR))
          return refuse('403 Forbidden');
        const upstream = net.connect(targetPort, address, () => {
          open.add(upstream);
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on('error', () => refuse('502 Bad Gateway'));
        client.on('close', () => upstream.destroy());
      },
      () => refuse('502 Bad Gateway'),
    );
  });
  await new Promise<void>((resolve_) => server.listen(port, '127.0.0.1', resolve_));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: () =>
      new Promise((resolve_) => {
        server.closeAllConnections();
        for (const socket of open) socket.destroy();
        server.close(() => resolve_());
      }),
  };
}
