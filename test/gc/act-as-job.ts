// Acting as a Job's container in the control plane (this file plays the Jobs' containers; the real
// Jobs, from berth's image on the real node, run in test/e2e-node/lifecycle.test.ts). It stays for
// what a real pod adds nothing to: results chosen by the test (a failed collection, an accepted
// push, a retention run that writes no report), to drive the controllers' decisions.
// kwok "runs" pods and, for pods owned by a Job,
// immediately reports them Succeeded (its pod-complete stage), so Jobs would finish by themselves.
// A test-only ValidatingAdmissionPolicy, scoped to namespaces labelled `berth-test/hold-jobs`,
// refuses that silent completion (a Succeeded status without a termination message), so Job pods
// stay Running until the test finishes them the way their container would: a termination message
// and an exit code on the pod (and, for a retention run, the report ConfigMap it writes). The real
// Job controller then marks the Job Complete or Failed (backoffLimit 0).
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { KubeClient } from '../../src/runtime/kube/client.ts';
import { eventually } from '../harness/kube.ts';

export const holdLabel = { 'berth-test/hold-jobs': 'true' };

export class JobActor {
  readonly kc: k8s.KubeConfig;
  readonly client: KubeClient;
  readonly batch: k8s.BatchV1Api;
  readonly core: k8s.CoreV1Api;
  private policyName = '';

  constructor(kc: k8s.KubeConfig) {
    this.kc = kc;
    this.client = new KubeClient(kc);
    this.batch = kc.makeApiClient(k8s.BatchV1Api);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** Installs the policy that keeps Job pods Running in namespaces with `holdLabel`. */
  async holdJobPods(): Promise<void> {
    const name = `berth-test-hold-jobs-${randomBytes(3).toString('hex')}`;
    this.policyName = name;
    await this.client.create('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          namespaceSelector: { matchLabels: holdLabel },
          objectSelector: { matchExpressions: [{ key: 'batch.kubernetes.io/job-name', operator: 'Exists' }] },
          resourceRules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/status'] },
          ],
        },
        validations: [
          {
            expression:
              "object.status.phase != 'Succeeded' || (has(object.status.containerStatuses) && object.status.containerStatuses.exists(c, has(c.state.terminated) && has(c.state.terminated.message)))",
            message: 'test: a Job pod finishes only when the test acts as its container',
          },
        ],
      },
    });
    await this.client.create('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'] },
    });
    // The policy takes effect once the API server has loaded it: probe with a throwaway Job pod is
    // costly, so wait a little longer than its policy refresh.
    await new Promise((r) => setTimeout(r, 2000));
  }

  async release(): Promise<void> {
    if (!this.policyName) return;
    const base = '/apis/admissionregistration.k8s.io/v1';
    await this.client
      .delete(`${base}/validatingadmissionpolicybindings/${this.policyName}`)
      .catch(() => undefined);
    await this.client.delete(`${base}/validatingadmissionpolicies/${this.policyName}`).catch(() => undefined);
  }

  /** Waits for a Job whose name starts with `prefix` (and is not in `except`). */
  async waitForJob(
    namespace: string,
    prefix: string,
    except: string[] = [],
    timeoutMs = 60_000,
  ): Promise<k8s.V1Job> {
    const pick = (l: k8s.V1JobList) =>
      l.items.find((j) => j.metadata?.name?.startsWith(prefix) && !except.includes(j.metadata.name));
    const list = await eventually(
      `a Job ${prefix}* in ${namespace}`,
      () => this.batch.listNamespacedJob({ namespace }),
      (l) => !!pick(l),
      timeoutMs,
    );
    return pick(list)!;
  }

  async jobs(namespace: string, prefix: string): Promise<k8s.V1Job[]> {
    const list = await this.batch.listNamespacedJob({ namespace });
    return list.items.filter((j) => j.metadata?.name?.startsWith(prefix));
  }

  /**
   * Finishes the Job's running pod as its container would: exit code and termination message.
   * Then waits until the Job controller has marked the Job Complete (exit 0) or Failed.
   */
  async finish(namespace: string, job: string, exitCode: number, message: string): Promise<k8s.V1Job> {
    const pods = await eventually(
      `the running pod of Job ${job}`,
      () => this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` }),
      (l) => l.items.some((p) => p.status?.phase === 'Running'),
    );
    const pod = pods.items.find((p) => p.status?.phase === 'Running')!;
    const now = new Date().toISOString();
    const container = pod.spec!.containers[0]!;
    await this.client.mergePatch(`/api/v1/namespaces/${namespace}/pods/${pod.metadata?.name}/status`, {
      status: {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: now, reason: 'PodCompleted' }],
        containerStatuses: [
          {
            name: container.name,
            image: container.image ?? '',
            imageID: '',
            ready: false,
            restartCount: 0,
            started: false,
            state: {
              terminated: {
                exitCode,
                message,
                reason: exitCode ? 'Error' : 'Completed',
                startedAt: now,
                finishedAt: now,
              },
            },
          },
        ],
      },
    });
    const want = exitCode === 0 ? 'Complete' : 'Failed';
    return eventually(
      `Job ${job} ${want}`,
      () => this.batch.readNamespacedJob({ name: job, namespace }),
      (j) => !!j.status?.conditions?.some((c) => c.type === want && c.status === 'True'),
      60_000,
    );
  }
}
