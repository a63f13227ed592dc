// `berth gc-run verify`: the verification step of a garbage collection, run as a Job. Prints a JSON
// summary; on problems writes them to the termination log (what the controller reports) and exits 1.
// `berth gc-run probe`: the read-only check before collecting (probe.ts): exit 0 when a push is
// refused, 1 (and why, in the termination log) when it is accepted or the check cannot conclude.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseDockerConfig } from '../../util/dockerconfig.ts';
import { readFlags, UsageError } from '../../util/flags.ts';
import { probeReadOnly } from './probe.ts';
import { verifyRegistry, type JobAccess } from './verify.ts';

const usage = `usage: berth gc-run verify|probe --registry-url=https://<host:port> [--ca-file=<path>] [--docker-config=<path>] [--termination-log=<path>] [--attempts=N]

verify: checks that every tag of every repository resolves and that every blob its manifests
reference exists. Exit 0 when everything resolves, 1 when something is missing.
probe: tries a push (a blob upload, cancelled at once if accepted) and checks that the registry
refuses it. Exit 0 when refused, 1 when accepted or when the check cannot conclude.
Both retry connection errors, 429 and 5xx answers with backoff: --attempts per request (default 8,
about a minute). Each flag may be given by its environment variable instead (BERTH_GC_REGISTRY_URL,
BERTH_GC_CA_FILE, BERTH_GC_DOCKER_CONFIG, BERTH_GC_TERMINATION_LOG, BERTH_GC_ATTEMPTS).
Exit 2 on bad flags.`;

const flagTable = {
  'registry-url': 'BERTH_GC_REGISTRY_URL',
  'ca-file': 'BERTH_GC_CA_FILE',
  'docker-config': 'BERTH_GC_DOCKER_CONFIG',
  'termination-log': 'BERTH_GC_TERMINATION_LOG',
  attempts: 'BERTH_GC_ATTEMPTS',
} as const;

interface GcRunConfig {
  access: JobAccess;
  terminationLog?: string;
}

/** Flags (and their environment variables) → what the step needs; reads the files they name. */
export function parseGcRunArgs(argv: string[], env: Record<string, string | undefined>): GcRunConfig {
  const f = readFlags(argv, env, flagTable);
  const url = f.required('registry-url');
  if (!/^https?:\/\//.test(url)) throw new UsageError('--registry-url must be https://<host:port>');
  const access: JobAccess = { url };
  const attempts = f.get('attempts');
  if (attempts !== undefined) {
    if (!/^[1-9]\d{0,2}$/.test(attempts))
      throw new UsageError(`--attempts=${attempts}: a whole number from 1 to 999`);
    access.attempts = Number(attempts);
  }
  const ca = f.get('ca-file');
  if (ca) access.caPem = readFileSync(ca, 'utf8');
  const dc = f.get('docker-config');
  if (dc) {
    const creds = parseDockerConfig(readFileSync(dc, 'utf8'));
    if (!creds) throw new UsageError(`--docker-config: ${dc} holds no credentials`);
    access.credential = { username: creds.username, password: creds.password };
  }
  const terminationLog =
    f.get('termination-log') ?? (existsSync('/dev/termination-log') ? '/dev/termination-log' : undefined);
  return { access, ...(terminationLog ? { terminationLog } : {}) };
}

export async function gcRunCommand(argv: string[], env = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  if ((sub !== 'verify' && sub !== 'probe') || rest.includes('--help')) {
    console.error(usage);
    return sub === '--help' || rest.includes('--help') ? 0 : 2;
  }
  let config: GcRunConfig;
  try {
    config = parseGcRunArgs(rest, env);
  } catch (err) {
    console.error(`berth gc-run: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  const fail = (message: string) => {
    if (config.terminationLog) writeFileSync(config.terminationLog, message.slice(0, 4000));
    console.error(message);
    return 1;
  };
  return sub === 'probe' ? probe(config.access, fail) : verify(config.access, fail);
}

/** Exit 0 when a push is refused; otherwise 1, and why. */
async function probe(access: JobAccess, fail: (message: string) => number): Promise<number> {
  try {
    const result = await probeReadOnly(access);
    console.log(JSON.stringify(result));
    if (result.verdict === 'refused') return 0;
    return fail(
      result.verdict === 'accepted'
        ? result.detail
        : `the read-only check could not conclude: ${result.detail}`,
    );
  } catch (err) {
    return fail(`the read-only check could not run: ${(err as Error).message}`);
  }
}

/** Exit 0 when every tag resolves with all its blobs; otherwise 1, and the first problems. */
async function verify(access: JobAccess, fail: (message: string) => number): Promise<number> {
  try {
    const report = await verifyRegistry(access);
    console.log(JSON.stringify({ ...report, problems: report.problems.slice(0, 100) }));
    if (report.problems.length) {
      return fail(`${report.problems.length} problem(s): ${report.problems.slice(0, 10).join('; ')}`);
    }
    return 0;
  } catch (err) {
    return fail(`verification could not run: ${(err as Error).message}`);
  }
}
