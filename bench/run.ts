// Runs every benchmark in bench/ (each `bench/<name>.ts` except this file) in its own Node
// process, one after another, and prints their figures. `npm run bench` / `make bench`.
// Usage: node bench/run.ts [name ...]   (default: all)
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const benches = readdirSync(benchDir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.test.ts'))
  .map((f) => f.slice(0, -'.ts'.length))
  .filter((name) => wanted.length === 0 || wanted.includes(name))
  .sort();

if (benches.length === 0) {
  console.error(`no benchmark matches ${wanted.join(', ')}`);
  process.exit(2);
}

let failed = 0;
for (const name of benches) {
  console.log(`\n=== bench: ${name} ===`);
  const started = Date.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [path.join(benchDir, `${name}.ts`)], { stdio: 'inherit' });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (code !== 0) {
    failed++;
    console.log(`=== ${name}: FAILED (exit ${code}) after ${seconds}s ===`);
  } else console.log(`=== ${name}: done in ${seconds}s ===`);
}
process.exitCode = failed > 0 ? 1 : 0;
