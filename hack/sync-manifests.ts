// Renders the one source of berth's install manifests into the places that ship them:
//   crds/*.yaml          -> config/crd/bases/*.yaml (copies) and config/crd/kustomization.yaml
//   crds/admission/*.yaml-> config/crd/admission/*.yaml, charts/berth/templates/crds/admission/*.yaml
//                        -> charts/berth/templates/crds/*.yaml (gated by crds.enabled, kept on uninstall)
//   config/rbac/*.yaml   -> charts/berth/templates/rbac/*.yaml (names, ServiceAccount and namespace templated)
//
//   npx node hack/sync-manifests.ts           writes the generated files
//   npx node hack/sync-manifests.ts --check   exits 1 and lists the files that drifted (npm run check)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateAll, type GeneratedFile } from './sync-manifests-lib.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Folders whose every file is generated (stale files in them are drift too). */
const generatedDirs = [
  'config/crd/bases',
  'config/crd/admission',
  'charts/berth/templates/crds',
  'charts/berth/templates/crds/admission',
  'charts/berth/templates/rbac',
];

function readDir(dir: string): { name: string; text: string }[] {
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((name) => ({ name, text: readFileSync(path.join(abs, name), 'utf8') }));
}

function existingGenerated(): string[] {
  return generatedDirs.flatMap((dir) => readDir(dir).map((f) => path.join(dir, f.name)));
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const crds = [
    ...readDir('crds'),
    ...readDir('crds/admission').map((f) => ({ ...f, name: `admission/${f.name}` })),
  ];
  const files: GeneratedFile[] = generateAll({ crds, rbac: readDir('config/rbac') });
  const wanted = new Set(files.map((f) => f.path));
  const drift: string[] = [];
  for (const f of files) {
    const abs = path.join(root, f.path);
    const current = existsSync(abs) ? readFileSync(abs, 'utf8') : undefined;
    if (current === f.content) continue;
    drift.push(`${current === undefined ? 'missing' : 'differs'}: ${f.path}`);
    if (!check) {
      mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, f.content);
    }
  }
  for (const p of existingGenerated()) {
    if (wanted.has(p)) continue;
    drift.push(`stale: ${p}`);
    if (!check) rmSync(path.join(root, p));
  }
  if (check) {
    if (drift.length === 0) return 0;
    console.error(
      `sync-manifests: the chart or kustomize bases drifted from crds/ and config/rbac/:\n  ${drift.join('\n  ')}\n` +
        'run `npm run sync-manifests` and commit the result',
    );
    return 1;
  }
  console.log(
    drift.length ? `sync-manifests: updated\n  ${drift.join('\n  ')}` : 'sync-manifests: up to date',
  );
  return 0;
}

process.exitCode = main(process.argv.slice(2));
