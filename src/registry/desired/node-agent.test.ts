import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import type { Registry } from '../../api/index.ts';
import {
  mountedCertsDir,
  nodeAccessConfig,
  nodeAccessHosts,
  nodeAgentDaemonSet,
  nodesReadyCondition,
  rolledOut,
} from './node-agent.ts';

const ref = { name: 'main', namespace: 'ns' };
const reg = (spec: object): Registry =>
  ({
    metadata: { name: 'main', namespace: 'ns' },
    spec: { storage: { emptyDir: {} }, ...spec },
  }) as unknown as Registry;
const ds = (status: k8s.V1DaemonSetStatus, generation = 2): k8s.V1DaemonSet => ({
  metadata: { generation },
  status: { observedGeneration: 2, ...status },
});

describe('node access configuration', () => {
  it.each([
    {
      name: 'port 443: with and without the port',
      spec: {},
      hosts: ['main.ns.svc:443', 'main.ns.svc.cluster.local:443', 'main.ns.svc', 'main.ns.svc.cluster.local'],
    },
    {
      name: 'another port: with it only',
      spec: { expose: { service: { port: 8443 } } },
      hosts: ['main.ns.svc:8443', 'main.ns.svc.cluster.local:8443'],
    },
    {
      name: 'an Ingress host too',
      spec: { expose: { ingress: { host: 'r.example.com' } } },
      hosts: [
        'main.ns.svc:443',
        'main.ns.svc.cluster.local:443',
        'main.ns.svc',
        'main.ns.svc.cluster.local',
        'r.example.com',
      ],
    },
  ])('$name', ({ spec, hosts }) => {
    expect(nodeAccessHosts(ref, reg(spec))).toEqual(hosts);
  });
  it('leaves the Ingress host out when it is not the Registry’s own on the nodes', () => {
    const spec = { expose: { ingress: { host: 'registry.k8s.io' } } };
    expect(nodeAccessHosts(ref, reg(spec), false)).not.toContain('registry.k8s.io');
    expect(nodeAccessConfig(ref, reg(spec), '10.0.0.5', true, false).hosts).toEqual([
      'main.ns.svc:443',
      'main.ns.svc.cluster.local:443',
      'main.ns.svc',
      'main.ns.svc.cluster.local',
    ]);
  });
  it('mounts exactly the folder it is given (and reports it back), in sync and cleanup mode', () => {
    for (const mode of ['sync', 'cleanup'] as const) {
      const d = nodeAgentDaemonSet(ref, '/etc/containerd/certs.d', 'img', mode);
      expect(mountedCertsDir(d)).toBe('/etc/containerd/certs.d');
      const hostPaths = (d.spec?.template.spec?.volumes ?? []).map((v) => v.hostPath?.path).filter(Boolean);
      expect(hostPaths).toEqual(['/etc/containerd/certs.d', '/etc/hosts']);
      expect(d.spec?.template.spec?.containers[0]?.args).toContain(
        '--host-certs-dir=/etc/containerd/certs.d',
      );
    }
    expect(mountedCertsDir(undefined)).toBeUndefined();
  });
  it('brackets an IPv6 cluster IP and uses http without TLS', () => {
    expect(nodeAccessConfig(ref, reg({}), 'fd00::5', true).server).toBe('https://[fd00::5]:443');
    expect(nodeAccessConfig(ref, reg({}), '10.0.0.5', false).server).toBe('http://10.0.0.5:443');
  });
});

describe('NodesReady', () => {
  it.each([
    { name: 'no DaemonSet yet', d: undefined, status: 'False', reason: 'AgentsPending' },
    {
      name: 'not observed yet',
      d: ds(
        { desiredNumberScheduled: 2, numberReady: 2, updatedNumberScheduled: 2 } as k8s.V1DaemonSetStatus,
        3,
      ),
      status: 'False',
      reason: 'AgentsPending',
    },
    {
      name: 'no nodes',
      d: ds({ desiredNumberScheduled: 0 } as k8s.V1DaemonSetStatus),
      status: 'False',
      reason: 'NoNodes',
    },
    {
      name: 'some not ready',
      d: ds({
        desiredNumberScheduled: 3,
        numberReady: 2,
        updatedNumberScheduled: 3,
      } as k8s.V1DaemonSetStatus),
      status: 'False',
      reason: 'AgentsNotReady',
    },
    {
      name: 'all ready',
      d: ds({
        desiredNumberScheduled: 3,
        numberReady: 3,
        updatedNumberScheduled: 3,
      } as k8s.V1DaemonSetStatus),
      status: 'True',
      reason: 'AgentsReady',
    },
  ])('$name', ({ d, status, reason }) => {
    expect(nodesReadyCondition(d, 'sync')).toMatchObject({ status, reason });
  });
  it('cleanup is done only when every agent runs the cleanup template and is available', () => {
    const base = {
      desiredNumberScheduled: 2,
      numberMisscheduled: 0,
      currentNumberScheduled: 2,
      numberReady: 2,
    };
    expect(rolledOut(ds({ ...base, updatedNumberScheduled: 1, numberAvailable: 2 }))).toBe(false);
    expect(rolledOut(ds({ ...base, updatedNumberScheduled: 2, numberAvailable: 1 }))).toBe(false);
    expect(rolledOut(ds({ ...base, updatedNumberScheduled: 2, numberAvailable: 2 }, 3))).toBe(false);
    expect(rolledOut(ds({ ...base, updatedNumberScheduled: 2, numberAvailable: 2 }))).toBe(true);
  });
});
