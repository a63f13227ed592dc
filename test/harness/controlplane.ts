// A real Kubernetes control plane on loopback: etcd, kube-apiserver (client-certificate
// authentication with its own CA, RBAC, service-account signing keys), kube-controller-manager,
// kube-scheduler, and kwok with fake nodes so that pods are scheduled and reported Running.
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createCA, createSigningKey, issueCertificate, type KeyPair } from '../../src/pki/certificates.ts';
import { freePort, waitFor } from './net.ts';
import { createNodeNetwork, type NodeNetwork } from './node-network.ts';
import { startRealNode, type RealNode } from './node.ts';
import { binary, ProcessGroup, type ManagedProcess } from './processes.ts';

export interface ControlPlane {
  /** Path of an admin (system:masters) kubeconfig. */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  dir: string;
  ca: KeyPair;
  admin: KeyPair;
  /** Stops kube-apiserver only (etcd keeps the data), for outage tests. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port and waits until it is ready. */
  startApiServer(): Promise<void>;
  stop(options?: { keepDir?: boolean }): Promise<void>;
  /** Seconds from start() to a ready control plane. */
  startupSeconds: number;
  /** The API server's audit log (JSON lines), when started with `auditUsers`. */
  auditLog?: string;
  /** Writes a kubeconfig for a user with a client certificate from the control plane's CA. */
  userKubeconfig(user: string, groups?: string[]): Promise<string>;
  /** The real kubelet node, when started with `realNode`. */
  node?: RealNode;
}

export interface ControlPlaneOptions {
  /** Number of fake nodes kwok manages. */
  nodes?: number;
  /** Folder to create the control plane's folder in (default: the OS temp folder). */
  parentDir?: string;
  log?: (line: string) => void;
  /** Record every request of these users in an audit log (metadata level), e.g. to count an operator's requests. */
  auditUsers?: string[];
  /**
   * Also run one real node (node.ts): kubelet, containerd, kube-proxy and CoreDNS in namespaces
   * of their own. The API server then listens on the host end of the node's link instead of
   * 127.0.0.1, so the node and its pods reach it; needs root.
   */
  realNode?: boolean;
}

const serviceCIDR = '10.96.0.0/16';
const kubernetesServiceIP = '10.96.0.1';

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'berth-cp-'));
  const group = new ProcessGroup(dir);
  const file = (name: string, content: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  };
  let network: NodeNetwork | undefined;
  try {
    if (options.realNode) {
      network = createNodeNetwork();
      group.onCleanup(...network.cleanup);
      log(
        `node network ${network.netns}: host ${network.hostIP}, node ${network.nodeIP}, pods ${network.podCIDR}`,
      );
    }
    const host = network?.hostIP ?? '127.0.0.1';
    const services = network?.serviceCIDR ?? serviceCIDR;
    const kubernetesIP = network?.kubernetesServiceIP ?? kubernetesServiceIP;
    // PKI
    const now = new Date(Date.now() - 60_000);
    const notAfter = new Date(Date.now() + 30 * 24 * 3600_000);
    const ca = await createCA({ commonName: 'berth-test-ca', notBefore: now, notAfter });
    const serving = await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', kubernetesIP, ...(network ? [network.hostIP] : [])],
      notBefore: now,
      notAfter,
      usage: 'server',
    });
    const admin = await issueCertificate(ca, {
      commonName: 'berth-test-admin',
      organization: ['system:masters'],
      notBefore: now,
      notAfter,
      usage: 'client',
    });
    const saKey = await createSigningKey();
    const caFile = file('ca.crt', ca.certPem);
    const caKeyFile = file('ca.key', ca.keyPem);
    const servingCert = file('apiserver.crt', serving.certPem);
    const servingKey = file('apiserver.key', serving.keyPem);
    const saPub = file('sa.pub', saKey.publicKeyPem);
    const saPriv = file('sa.key', saKey.privateKeyPem);

    // etcd
    const etcdPort = await freePort();
    const etcdPeerPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = group.start('etcd', binary('etcd'), [
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor('etcd', async () => (await fetch(`${etcdUrl}/health`)).ok, {
      timeoutMs: 30_000,
      describe: () => ProcessGroup.tail(etcd.logFile),
    });
    log(`etcd ready at ${etcdUrl}`);

    // kube-apiserver
    const apiPort = await freePort();
    const server = `https://${host}:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${host}`,
      `--advertise-address=${host}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${servingCert}`,
      `--tls-private-key-file=${servingKey}`,
      `--client-ca-file=${caFile}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saPriv}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--api-audiences=https://kubernetes.default.svc',
      `--service-cluster-ip-range=${services}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      // With a real node, pods reach the API server through the kubernetes Service (its endpoint
      // is the advertised address); without one, nothing needs it.
      `--endpoint-reconciler-type=${network ? 'lease' : 'none'}`,
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${file('kubelet-client.crt', admin.certPem)}`,
      `--kubelet-client-key=${file('kubelet-client.key', admin.keyPem)}`,
      '--v=1',
    ];
    let auditLog: string | undefined;
    if (options.auditUsers?.length) {
      auditLog = path.join(dir, 'audit.log');
      const policy = file(
        'audit-policy.yaml',
        stringify({
          apiVersion: 'audit.k8s.io/v1',
          kind: 'Policy',
          omitStages: ['RequestReceived'],
          rules: [{ level: 'Metadata', users: options.auditUsers }, { level: 'None' }],
        }),
      );
      apiArgs.push(
        `--audit-policy-file=${policy}`,
        `--audit-log-path=${auditLog}`,
        '--audit-log-format=json',
        '--audit-log-mode=blocking',
      );
    }
    let apiserver: ManagedProcess = group.start('kube-apiserver', binary('kube-apiserver'), apiArgs);
    const admin_ = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
    const waitReady = async () =>
      waitFor('kube-apiserver /readyz', async () => (await get(server, '/readyz', admin_)).status === 200, {
        timeoutMs: 90_000,
        intervalMs: 250,
        describe: () => ProcessGroup.tail(apiserver.logFile),
      });
    await waitReady();
    log(`kube-apiserver ready at ${server}`);

    const kubeconfigFor = (name: string, user: KeyPair) =>
      file(
        name,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'berth-test',
              cluster: { server, 'certificate-authority-data': Buffer.from(ca.certPem).toString('base64') },
            },
          ],
          users: [
            {
              name: 'user',
              user: {
                'client-certificate-data': Buffer.from(user.certPem).toString('base64'),
                'client-key-data': Buffer.from(user.keyPem).toString('base64'),
              },
            },
          ],
          contexts: [
            { name: 'berth-test', context: { cluster: 'berth-test', user: 'user', namespace: 'default' } },
          ],
          'current-context': 'berth-test',
        }),
      );
    const kubeconfig = kubeconfigFor('kubeconfig', admin);

    // kube-controller-manager and kube-scheduler
    group.start('kube-controller-manager', binary('kube-controller-manager'), [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${await freePort()}`,
      '--leader-elect=false',
      '--use-service-account-credentials=false',
      `--root-ca-file=${caFile}`,
      `--service-account-private-key-file=${saPriv}`,
      `--cluster-signing-cert-file=${caFile}`,
      `--cluster-signing-key-file=${caKeyFile}`,
      `--service-cluster-ip-range=${services}`,
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route',
      '--concurrent-gc-syncs=5',
      '--v=1',
    ]);
    group.start('kube-scheduler', binary('kube-scheduler'), [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${await freePort()}`,
      '--leader-elect=false',
      '--v=1',
    ]);

    // kwok: manages nodes annotated kwok.x-k8s.io/node=fake and the pods bound to them.
    const kwok = group.start('kwok', binary('kwok'), [
      `--kubeconfig=${kubeconfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=10.244.0.1',
      '--node-lease-duration-seconds=40',
      '--cidr=10.244.0.0/16',
      `--server-address=127.0.0.1:${await freePort()}`,
      '--v=1',
    ]);
    for (let i = 0; i < (options.nodes ?? 1); i++) {
      const name = `kwok-node-${i}`;
      const res = await request(server, 'POST', '/api/v1/nodes', admin_, fakeNode(name));
      if (res.status !== 201 && res.status !== 409)
        throw new Error(`creating node ${name}: ${res.status} ${res.body}`);
    }
    await waitFor(
      'kwok to mark the fake nodes Ready',
      async () => {
        const res = await get(server, '/api/v1/nodes', admin_);
        const items = (JSON.parse(res.body) as NodeList).items;
        return items.length >= (options.nodes ?? 1) && items.every(isReady);
      },
      { timeoutMs: 60_000, describe: () => ProcessGroup.tail(kwok.logFile) },
    );
    await waitFor(
      'the default ServiceAccount',
      async () =>
        (await get(server, '/api/v1/namespaces/default/serviceaccounts/default', admin_)).status === 200,
      { timeoutMs: 60_000 },
    );
    const userKubeconfig = async (user: string, groups: string[] = []) =>
      kubeconfigFor(
        `kubeconfig-${user.replace(/[^a-z0-9-]/gi, '_')}`,
        await issueCertificate(ca, {
          commonName: user,
          organization: groups,
          notBefore: now,
          notAfter,
          usage: 'client',
        }),
      );
    let node: RealNode | undefined;
    if (network) {
      node = await startRealNode({
        group,
        dir,
        network,
        ca,
        admin,
        userKubeconfig,
        adminKubeconfig: kubeconfig,
        log,
      });
      const realNode = node;
      await waitFor(
        'the real node to be Ready',
        async () => {
          const res = await get(server, `/api/v1/nodes/${realNode.name}`, admin_);
          return res.status === 200 && isReady(JSON.parse(res.body) as NodeList['items'][number]);
        },
        { timeoutMs: 120_000, intervalMs: 500, describe: () => realNode.logs() },
      );
      log(`real node ${node.name} Ready at ${node.ip}`);
    }
    const startupSeconds = (Date.now() - started) / 1000;
    log(`control plane ready in ${startupSeconds.toFixed(1)}s; kubeconfig ${kubeconfig}`);

    return {
      node,
      kubeconfig,
      server,
      dir,
      ca,
      admin,
      startupSeconds,
      auditLog,
      userKubeconfig,
      stopApiServer: async () => apiserver.stop(),
      startApiServer: async () => {
        apiserver = group.start('kube-apiserver', binary('kube-apiserver'), apiArgs);
        await waitReady();
      },
      stop: async (opts) => {
        await node?.stop();
        await group.stopAll(opts);
      },
    };
  } catch (err) {
    await group.stopAll({ keepDir: process.env.BERTH_KEEP_TEST_DIRS === '1' });
    throw err;
  }
}

interface NodeList {
  items: { status?: { conditions?: { type: string; status: string }[] } }[];
}

function isReady(node: NodeList['items'][number]): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function fakeNode(name: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
    },
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '250' },
      capacity: { cpu: '32', memory: '256Gi', pods: '250' },
    },
  };
}

interface Credentials {
  ca: string;
  cert: string;
  key: string;
}

function request(
  server: string,
  method: string,
  urlPath: string,
  creds: Credentials,
  body?: object,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, server),
      {
        method,
        ca: creds.ca,
        cert: creds.cert,
        key: creds.key,
        headers: body ? { 'content-type': 'application/json' } : {},
        timeout: 5000,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

const get = (server: string, urlPath: string, creds: Credentials) => request(server, 'GET', urlPath, creds);
