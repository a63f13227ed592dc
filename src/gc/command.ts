// `berth gc-run verify`: the verification step of a garbage collection, run as a Job. Prints a JSON
// summary; on problems writes them to the termination log (what the controller reports) and exits 1.
// `berth gc-run probe`: the read-only check before collecting (probe.ts): exit 0 when a push is
// refused, 1 (and why, in the termination log) when it is accepted or the check cannot conclude.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseDockerConfig } from '../util/dockerconfig.ts';
import { probeReadOnly } from './probe.ts';
import { verifyRegistry, type RegistryAccess } from './verify.ts';

const usage = `usage: berth gc-run verify|probe --registry-url=https://<host:port> [--ca-file=<path>] [--docker-config=<path>] [--termination-log=<path>] [--attempts=N]

verify: checks that every tag of every repository resolves and that every blob its manifests
reference exists. Exit 0 when everything resolves, 1 when something is missing.
probe: tries a push (a blob upload, cancelled at once if accepted) and checks that the registry
refuses it. Exit 0 when refused, 1 when accepted or when the check cannot conclude.
Both retry connection errors, 429 and 5xx answers with backoff: --attempts per request (default 8,
about a minute). Exit 2 on bad flags.`;

function flags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`unexpected argument "${arg}"`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

export async function gcRunCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if ((sub !== 'verify' && sub !== 'probe') || rest.includes('--help')) {
    console.error(usage);
    return sub === '--help' || rest.includes('--help') ? 0 : 2;
  }
  let access: RegistryAccess;
  let terminationLog: string | undefined;
  try {
    const f = flags(rest);
    const known = new Set(['registry-url', 'ca-file', 'docker-config', 'termination-log', 'attempts']);
    for (const k of f.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}`);
    const url = f.get('registry-url');
    if (!url || !/^https?:\/\//.test(url)) throw new Error('--registry-url=https://<host:port> is required');
    access = { url };
    const attempts = f.get('attempts');
    if (attempts !== undefined) {
      if (!/^[1-9]\d{0,2}$/.test(attempts))
        throw new Error(`--attempts=${attempts}: a whole number from 1 to 999`);
      access.attempts = Number(attempts);
    }
    const ca = f.get('ca-file');
    if (ca) access.caPem = readFileSync(ca, 'utf8');
    const dc = f.get('docker-config');
    if (dc) {
      const creds = parseDockerConfig(readFileSync(dc, 'utf8'));
      if (!creds) throw new Error(`--docker-config: ${dc} holds no credentials`);
      access.username = creds.username;
      access.password = creds.password;
    }
    terminationLog =
      f.get('termination-log') ?? (existsSync('/dev/termination-log') ? '/dev/termination-log' : undefined);
  } catch (err) {
    console.error(`berth gc-run: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  const fail = (message: string) => {
    if (terminationLog) writeFileSync(terminationLog, message.slice(0, 4000));
    console.error(message);
    return 1;
  };
  if (sub === 'probe') {
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
