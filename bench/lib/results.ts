// Every benchmark prints a table and records its figures in bench/results/<name>.json (ignored
// by git), together with the machine and the pinned versions, so runs can be compared later.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Row = Record<string, string | number | boolean | null>;

/** The pinned tool versions (hack/tools.versions) as an object. */
function toolVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  const text = readFileSync(path.join(root, 'hack', 'tools.versions'), 'utf8');
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)_VERSION=(\S+)$/.exec(line.trim());
    if (m) out[m[1]!.toLowerCase()] = m[2]!;
  }
  return out;
}

/** Prints rows as an aligned table (columns in the first row's key order). */
export function printTable(title: string, rows: Row[]): void {
  if (rows.length === 0) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: Row[string] | undefined): string => (v === undefined || v === null ? '-' : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  console.log(`\n${title}`);
  console.log(cols.map((c, i) => c.padEnd(width[i]!)).join('  '));
  console.log(width.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(cols.map((c, i) => cell(r[c]).padStart(width[i]!)).join('  '));
}

/** Writes bench/results/<name>.json with the figures, the machine and the versions; returns its path. */
export function writeResults(name: string, figures: unknown): string {
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const record = {
    bench: name,
    at: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryBytes: os.totalmem(),
      kernel: os.release(),
      platform: `${process.platform}/${process.arch}`,
    },
    versions: { node: process.versions.node, ...toolVersions() },
    figures,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`figures written to ${path.relative(root, file)}`);
  return file;
}
