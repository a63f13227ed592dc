// `berth retention-run`: one run of a RetentionPolicy, as the Job the RetentionPolicy controller
// schedules. The contract with that controller:
//
// Flags (each also an environment variable BERTH_RETENTION_<FLAG>, e.g. BERTH_RETENTION_POLICY):
//   --policy=<namespace>/<name>     the RetentionPolicy to run (required)
//   --registry-url=https://host:port  how to reach the registry (required)
//   --ca-file=<path>                PEM bundle to trust (optional; default: the system's)
//   --docker-config=<path>          a dockerconfigjson file (the Registry's admin Secret): the entry
//                                   for the registry host is used, or the only entry (required)
//   --storage-root=<path>           the registry's filesystem storage root, mounted read-only: the
//                                   folder that contains docker/registry/v2 (push times and untagged
//                                   manifests come from it); or, for a Registry on S3:
//   --s3-bucket=<bucket>            the registry's bucket, with --s3-region=<region> (required with
//                                   it), --s3-region-endpoint=<url> (an S3-compatible store),
//                                   --s3-force-path-style[=true|false], --s3-root-directory=</path>;
//                                   credentials from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and
//                                   AWS_SECRET_ACCESS_KEY, which the Job sets from the Registry's
//                                   spec.storage.s3.secretRef keys accessKeyID/secretAccessKey, or a
//                                   role). Exactly one of --storage-root and --s3-bucket is required.
//   --report-configmap=<name>       the ConfigMap to write the report to (required)
//   --report-namespace=<ns>         its namespace (default: the policy's)
//   --mode=DryRun|Enforce           overrides the policy's mode, only if given
//   --now=<RFC3339>                 the planner's clock (tests); default: the current time
//   --concurrency=<n>               registry requests in flight, and deletions in flight per
//                                   repository (default 8)
//
// It reads the RetentionPolicy, the Registry it references, the policy namespace's Repository
// objects (scope) and, when protect.inUse, Pods and workloads across the cluster (in-use), through
// the Kubernetes API (in-cluster config or $KUBECONFIG); plans each repository as its snapshot
// arrives (so it never holds the whole snapshot; in-use is listed first, before the snapshot);
// deletes if Enforce and the circuit breaker allows, listing in-use again for the checks before
// each delete (execute.ts); and creates or replaces the report ConfigMap, labelled
// `app.kubernetes.io/managed-by: berth` and `berth.dev/retention-policy: <name>`, with:
//   data["summary.json"] = {"mode","evaluated","deleted","kept","protected","refused",
//     "refusedReason"?,"startTime","completionTime","result":"Succeeded"|"Refused"|"Failed","message"}
//     plus "reportParts": the ConfigMaps that hold the entries, in order (the first is this one);
//   data["report.json"]  = [{repository, tag?, digest, decision: "delete"|"keep", rule?, reason}],
//     one per tag and per untagged manifest, when at most 900 KiB; otherwise the entries are split
//     into parts of at most 900 KiB gzipped, each a JSON array in binaryData["report.json.gz"] of
//     `<report>`, `<report>-2`, `<report>-3`, ... (the extra parts are owned by `<report>`, so
//     deleting it deletes them). See report.ts (readReport) and docs/retention.md.
// Exit code: 0 for Succeeded or Refused (the circuit breaker is an outcome), 1 for Failed (after
// writing a Failed summary when it can), 2 for bad flags; on 1 and 2 the reason is also the container's
// termination message (/dev/termination-log), which the controller puts in the policy's Ready
// condition. No secret is ever logged or reported.
import { dockerConfigEntries } from '../../util/dockerconfig.ts';
import { readFlags, UsageError } from '../../util/flags.ts';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createProgramLogger, endLogger, type Logger } from '../../runtime/logger.ts';
import { systemClock, type Clock } from '../../runtime/clock.ts';
import type { Registry, Repository, RetentionPolicy } from '../../api/index.ts';
import { KubeClient, type KubeList } from '../../runtime/kube/client.ts';
import { loadKubeAccess } from '../../runtime/kube/config.ts';
import { executeDeletions, knownTagsOf, type ExecutionResult, type InUseResolver } from './execute.ts';
import { collectInUse, listWorkloadImages, registryHosts } from './in-use.ts';
import type { InUse, Plan, PlannerPolicy } from './model.ts';
import { createPlanner } from './planner.ts';
import { plannerPolicy, policyScope, registryOf, repositoryFilter } from './policy.ts';
import { RegistryClient } from '../../distribution/client.ts';
import { applyOutcomes, reportData, writeReportConfigMaps } from './report.ts';
import { failedSummary, runSummary, type RunMode, type RunSummary } from './run-summary.ts';
import { snapshotEach, storageTagResolver } from './snapshot.ts';
import { FilesystemPushTimes, type PushTimeSource } from './storage.ts';
import type { S3StorageOptions } from './storage-s3.ts';

export const retentionRunUsage = `usage: berth retention-run [flags]

One run of a RetentionPolicy: plan, delete (Enforce), and write the report ConfigMap.

flags (each also read from the environment variable in brackets):
  --policy=NS/NAME          the RetentionPolicy                  [BERTH_RETENTION_POLICY]            required
  --registry-url=URL        https://host:port of the registry    [BERTH_RETENTION_REGISTRY_URL]      required
  --ca-file=PATH            PEM bundle to trust                  [BERTH_RETENTION_CA_FILE]
  --docker-config=PATH      dockerconfigjson with the credential [BERTH_RETENTION_DOCKER_CONFIG]     required
  --storage-root=PATH       registry storage root (read-only)    [BERTH_RETENTION_STORAGE_ROOT]      this or --s3-bucket
  --s3-bucket=NAME          the registry's S3 bucket             [BERTH_RETENTION_S3_BUCKET]
  --s3-region=REGION        its region (required with a bucket)  [BERTH_RETENTION_S3_REGION]
  --s3-region-endpoint=URL  an S3-compatible endpoint            [BERTH_RETENTION_S3_REGION_ENDPOINT]
  --s3-force-path-style     path-style requests (true|false)     [BERTH_RETENTION_S3_FORCE_PATH_STYLE]
  --s3-root-directory=PATH  the registry's s3 rootdirectory      [BERTH_RETENTION_S3_ROOT_DIRECTORY]
                            S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or a role
  --report-configmap=NAME   report ConfigMap                     [BERTH_RETENTION_REPORT_CONFIGMAP]  required
  --report-namespace=NS     its namespace                        [BERTH_RETENTION_REPORT_NAMESPACE]  default: the policy's
  --mode=DryRun|Enforce     override the policy's mode           [BERTH_RETENTION_MODE]
  --now=RFC3339             the planner's clock (tests)          [BERTH_RETENTION_NOW]
  --concurrency=N           registry requests in flight, and     [BERTH_RETENTION_CONCURRENCY]       default 8
                            deletions in flight per repository`;

export { UsageError };

const flags = {
  policy: 'BERTH_RETENTION_POLICY',
  'registry-url': 'BERTH_RETENTION_REGISTRY_URL',
  'ca-file': 'BERTH_RETENTION_CA_FILE',
  'docker-config': 'BERTH_RETENTION_DOCKER_CONFIG',
  'storage-root': 'BERTH_RETENTION_STORAGE_ROOT',
  's3-bucket': 'BERTH_RETENTION_S3_BUCKET',
  's3-region': 'BERTH_RETENTION_S3_REGION',
  's3-region-endpoint': 'BERTH_RETENTION_S3_REGION_ENDPOINT',
  's3-force-path-style': 'BERTH_RETENTION_S3_FORCE_PATH_STYLE',
  's3-root-directory': 'BERTH_RETENTION_S3_ROOT_DIRECTORY',
  'report-configmap': 'BERTH_RETENTION_REPORT_CONFIGMAP',
  'report-namespace': 'BERTH_RETENTION_REPORT_NAMESPACE',
  mode: 'BERTH_RETENTION_MODE',
  now: 'BERTH_RETENTION_NOW',
  concurrency: 'BERTH_RETENTION_CONCURRENCY',
} as const;
type Flag = keyof typeof flags;

export interface RetentionRunConfig {
  policy: { namespace: string; name: string };
  registryUrl: string;
  caFile?: string;
  dockerConfig: string;
  storage: { kind: 'filesystem'; root: string } | ({ kind: 's3' } & S3StorageOptions);
  report: { name: string; namespace: string };
  mode?: 'DryRun' | 'Enforce';
  now?: number;
  concurrency: number;
}

/** Flags and environment → configuration. Pure (environment passed in). */
export function parseRetentionRunArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): RetentionRunConfig {
  // `--s3-force-path-style` alone means true.
  const args = argv.map((a) => (a === '--s3-force-path-style' ? '--s3-force-path-style=true' : a));
  const { get, required } = readFlags(args, env, flags);
  const policy = /^([a-z0-9-]{1,63})\/([a-z0-9.-]{1,253})$/.exec(required('policy'));
  if (!policy?.[1] || !policy[2]) throw new UsageError('--policy must be <namespace>/<name>');
  const registryUrl = required('registry-url');
  if (!/^https?:\/\/[^/]+\/?$/.test(registryUrl))
    throw new UsageError('--registry-url must be https://<host:port> (no path)');
  const mode = get('mode');
  if (mode !== undefined && mode !== 'DryRun' && mode !== 'Enforce')
    throw new UsageError('--mode must be DryRun or Enforce');
  const nowText = get('now');
  const now = nowText === undefined ? undefined : Date.parse(nowText);
  if (now !== undefined && !Number.isFinite(now)) throw new UsageError('--now must be an RFC 3339 time');
  const concurrency = Number(get('concurrency') ?? '8');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw new UsageError('--concurrency must be an integer from 1 to 256');
  const config: RetentionRunConfig = {
    policy: { namespace: policy[1], name: policy[2] },
    registryUrl: registryUrl.replace(/\/$/, ''),
    dockerConfig: required('docker-config'),
    storage: storageConfig(get),
    report: { name: required('report-configmap'), namespace: get('report-namespace') ?? policy[1] },
    concurrency,
  };
  const caFile = get('ca-file');
  if (caFile) config.caFile = caFile;
  if (mode) config.mode = mode;
  if (now !== undefined) config.now = now;
  return config;
}

function storageConfig(get: (flag: Flag) => string | undefined): RetentionRunConfig['storage'] {
  const root = get('storage-root');
  const bucket = get('s3-bucket');
  const s3Only = ['s3-region', 's3-region-endpoint', 's3-force-path-style', 's3-root-directory'] as const;
  if (root !== undefined && bucket !== undefined)
    throw new UsageError('give either --storage-root or --s3-bucket, not both');
  if (root !== undefined) {
    const stray = s3Only.find((f) => get(f) !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --s3-bucket`);
    return { kind: 'filesystem', root };
  }
  if (bucket === undefined)
    throw new UsageError('--storage-root (or BERTH_RETENTION_STORAGE_ROOT) or --s3-bucket is required');
  const region = get('s3-region');
  if (region === undefined)
    throw new UsageError('--s3-region (or BERTH_RETENTION_S3_REGION) is required with --s3-bucket');
  const s3: RetentionRunConfig['storage'] = { kind: 's3', bucket, region };
  const endpoint = get('s3-region-endpoint');
  if (endpoint !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(endpoint))
      throw new UsageError('--s3-region-endpoint must be an http(s) URL');
    s3.endpoint = endpoint;
  }
  const pathStyle = get('s3-force-path-style');
  if (pathStyle !== undefined) {
    if (pathStyle !== 'true' && pathStyle !== 'false')
      throw new UsageError('--s3-force-path-style must be true or false');
    s3.forcePathStyle = pathStyle === 'true';
  }
  const rootDirectory = get('s3-root-directory');
  if (rootDirectory !== undefined) s3.rootDirectory = rootDirectory;
  return s3;
}

/**
 * The push-time source the configuration names. The S3 one (and the AWS SDK, some 30 MiB) is
 * loaded only for a Registry on S3.
 */
export async function pushTimeSource(
  storage: RetentionRunConfig['storage'],
): Promise<PushTimeSource & { close?(): void }> {
  if (storage.kind === 'filesystem') return new FilesystemPushTimes(storage.root);
  const { kind: _kind, ...options } = storage;
  const { S3PushTimes } = await import('./storage-s3.ts');
  return new S3PushTimes(options);
}

/** The credential for `host` in a docker config: the entry for the host, or the only entry. */
export function credentialFor(text: string, host: string): { username: string; password: string } {
  const entries = dockerConfigEntries(text);
  if (!entries) throw new UsageError('--docker-config is not a JSON docker config');
  const strip = (h: string) => h.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const entry =
    entries.find((e) => strip(e.host) === host) ?? (entries.length === 1 ? entries[0] : undefined);
  if (!entry)
    throw new UsageError(`--docker-config has no entry for ${host} (and more than one, or no, other entry)`);
  const { username, password } = entry;
  if (!username || !password)
    throw new UsageError(`the docker config entry for ${host} has no username and password`);
  return { username, password };
}

export interface RunDeps {
  kube: KubeClient;
  logger: Logger;
  clock: Clock;
  /** Called between planning and deleting (tests use it to move tags in between). */
  afterPlan?: () => Promise<void>;
}

const berthPath = (ns: string, plural: string, name?: string) =>
  `/apis/berth.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ''}`;

/** What a run holds open (closed when it ends), and its mode as far as it is known yet. */
interface RunState {
  mode: RunMode;
  client?: RegistryClient;
  storage?: PushTimeSource & { close?(): void };
}

/**
 * The whole run, as steps: read the policy and what it references, connect to the registry and its
 * storage, plan, delete (Enforce), write the report. Returns the summary it wrote; a failed step
 * writes a Failed summary instead. Throws only when it could not even write a report.
 */
export async function runRetention(config: RetentionRunConfig, deps: RunDeps): Promise<RunSummary> {
  const { kube, logger } = deps;
  const startTime = new Date(deps.clock.now()).toISOString();
  const run: RunState = { mode: config.mode ?? 'DryRun' };
  const target = { ...config.report, policyName: config.policy.name };
  try {
    const objects = await readObjects(kube, config, run);
    const host = await connect(config, run);
    const planned = await planRun(config, deps, run, objects, host);
    await deps.afterPlan?.();
    const execution = await enforce(config, run, planned, deps.clock);
    const applied = applyOutcomes(planned.plan, execution);
    const summary = runSummary({
      mode: run.mode,
      plan: planned.plan,
      applied,
      execution,
      repositories: planned.repositories,
      startTime,
      completionTime: new Date(deps.clock.now()).toISOString(),
    });
    await writeReportConfigMaps(kube, target, reportData(config.report.name, summary, applied.entries));
    logger.info('retention run finished', { event: 'run.done', ...summary });
    return summary;
  } catch (err) {
    const message = (err as Error).message;
    const summary = failedSummary(run.mode, startTime, new Date(deps.clock.now()).toISOString(), message);
    logger.error('retention run failed', { event: 'run.failed', error: message });
    await writeReportConfigMaps(kube, target, reportData(config.report.name, summary, []));
    return summary;
  } finally {
    run.client?.close();
    run.storage?.close?.();
  }
}

interface RunObjects {
  planner: PlannerPolicy;
  registry: Registry;
  scope: ReturnType<typeof policyScope>;
  inScope: (repository: string) => boolean;
}

/**
 * Reads the RetentionPolicy (its mode into `run`, unless the flags set one), the Registry it
 * references and its namespace's Repositories (the scope); checks the policy on the way.
 */
async function readObjects(kube: KubeClient, config: RetentionRunConfig, run: RunState): Promise<RunObjects> {
  const policy: RetentionPolicy = await kube.get(
    berthPath(config.policy.namespace, 'retentionpolicies', config.policy.name),
  );
  run.mode = config.mode ?? policy.spec.mode ?? 'DryRun';
  const planner = plannerPolicy(policy);
  const regRef = registryOf(policy);
  const registry: Registry = await kube.get(berthPath(regRef.namespace, 'registries', regRef.name));
  const listed: KubeList<Repository> = await kube.list(berthPath(config.policy.namespace, 'repositories'));
  const repositories = listed.items;
  const scope = policyScope(policy, repositories);
  return { planner, registry, scope, inScope: repositoryFilter(policy, scope) };
}

/**
 * Opens the registry's storage (checked) and a registry client with the docker config's credential,
 * into `run` (which closes them); returns the registry's host.
 */
async function connect(config: RetentionRunConfig, run: RunState): Promise<string> {
  const host = new URL(config.registryUrl).host;
  const credential = credentialFor(readFileSync(config.dockerConfig, 'utf8'), host);
  run.storage = await pushTimeSource(config.storage);
  await run.storage.check();
  run.client = new RegistryClient({
    url: config.registryUrl,
    credential,
    concurrency: config.concurrency,
    ...(config.caFile ? { caPem: readFileSync(config.caFile, 'utf8') } : {}),
  });
  return host;
}

interface PlannedRun {
  plan: Plan;
  repositories: number;
  /** protect.inUse: lists what workloads use again (for the checks before each delete) */
  inUse?: InUseResolver;
}

/**
 * Plans the repositories in scope: lists the catalog, reads what workloads use (protect.inUse),
 * then snapshots the repositories and plans each as soon as its snapshot is read, letting it go:
 * only the plan stays (its entries name every tag, for the checks before each delete). In-use is read before
 * the snapshot, so it is older than it; the deletions list it again (execute.ts), which is what
 * keeps an image that became in use since.
 */
async function planRun(
  config: RetentionRunConfig,
  { kube, logger, clock }: RunDeps,
  run: RunState,
  { planner, registry, scope, inScope }: RunObjects,
  host: string,
): Promise<PlannedRun> {
  const client = run.client as RegistryClient;
  const names = (await client.catalog()).filter(inScope).sort();
  logger.info('retention run planning', {
    event: 'plan.start',
    policy: `${config.policy.namespace}/${config.policy.name}`,
    mode: run.mode,
    scope: scope.kind,
    repositories: names.length,
  });
  const hosts = registryHosts(registry, [host]);
  const listInUse = async () => collectInUse(await listWorkloadImages(kube), hosts);
  const inUse: InUse = planner.protect.inUse ? await listInUse() : { digests: new Map(), tags: new Map() };
  const planning = createPlanner(planner, inUse, config.now ?? clock.now());
  await snapshotEach(names, client, run.storage as PushTimeSource, (repo) => void planning.add(repo));
  const planned: PlannedRun = { plan: planning.finish(), repositories: names.length };
  if (planner.protect.inUse) planned.inUse = listInUse;
  return planned;
}

/** Deletes what the plan says when the run enforces and the circuit breaker allows; else nothing. */
async function enforce(
  config: RetentionRunConfig,
  run: RunState,
  { plan, inUse }: PlannedRun,
  clock: Clock,
): Promise<ExecutionResult | undefined> {
  if (run.mode !== 'Enforce' || plan.refused || plan.deletions.length === 0) return undefined;
  const client = run.client as RegistryClient;
  return executeDeletions(plan.deletions, knownTagsOf(plan.entries), client, {
    perRepository: config.concurrency,
    resolveTags: storageTagResolver(client, run.storage as PushTimeSource),
    ...(inUse ? { inUse } : {}),
    clock,
  });
}

/**
 * Why the run failed, for the RetentionPolicy's status: the container's termination message
 * (Kubernetes reads /dev/termination-log; $BERTH_TERMINATION_LOG elsewhere). Never a secret.
 */
function terminationMessage(text: string): void {
  const file = process.env.BERTH_TERMINATION_LOG ?? '/dev/termination-log';
  if (!process.env.BERTH_TERMINATION_LOG && !existsSync(file)) return;
  try {
    writeFileSync(file, text.slice(0, 4000));
  } catch {
    // Nowhere to write it: the logs still say it.
  }
}

export async function retentionRunCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(retentionRunUsage);
    return 0;
  }
  let config: RetentionRunConfig;
  try {
    config = parseRetentionRunArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`berth retention-run: ${err.message}\n\n${retentionRunUsage}`);
    terminationMessage(`berth retention-run: ${err.message}`);
    return 2;
  }
  const logger = createProgramLogger('retention-run');
  let code = 1;
  try {
    const summary = await runRetention(config, {
      kube: new KubeClient(loadKubeAccess()),
      logger,
      clock: systemClock,
    });
    code = summary.result === 'Failed' ? 1 : 0;
    if (code) terminationMessage(summary.message);
  } catch (err) {
    logger.error('retention run could not write its report', {
      event: 'run.failed',
      error: (err as Error).message,
    });
    terminationMessage(`the run could not write its report: ${(err as Error).message}`);
  }
  await endLogger(logger);
  return code;
}
