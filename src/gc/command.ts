// `berth gc-run verify`: the verification step of a garbage collection, run as a Job. Prints a JSON
// summary; on problems writes them to the termination log (what the controller reports) and exits 1.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseDockerConfig } from '../util/dockerconfig.ts';
import { verifyRegistry, type RegistryAccess } from './verify.ts';

const usage = `usage: berth gc-run verify --registry-url=https://<host:port> [--ca-file=<path>] [--docker-config=<path>] [--termination-log=<path>]

Checks that every tag of every repository resolves and that every blob its manifests reference
exists. Exit 0 when everything resolves, 1 when something is missing, 2 on bad flags.`;

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
  if (sub !== 'verify' || rest.includes('--help')) {
    console.error(usage);
    return sub === '--help' || rest.includes('--help') ? 0 : 2;
  }
  let access: RegistryAccess;
  let terminationLog: string | undefined;
  try {
    const f = flags(rest);
    const known = new Set(['registry-url', 'ca-file', 'docker-config', 'termination-log']);
    for (const k of f.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}`);
    const url = f.get('registry-url');
    if (!url || !/^https?:\/\//.test(url)) throw new Error('--registry-url=https://<host:port> is required');
    access = { url };
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
