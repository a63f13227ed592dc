// The layering of src/, checked: `node hack/layers.ts` (part of `npm run check`) and
// hack/layers.test.ts. Every folder under src/ sits in one layer; a module may import its own
// folder and any folder of a lower layer, never a folder of its own layer or above. So a
// controller never imports another controller, the domain (src/model) never imports a controller,
// and so on down. Module cycles (file to file, type-only imports included) are refused too.
// docs/architecture.md draws the same layers.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Lowest first. Files directly in src/ (main.ts and the operator's wiring) are the top layer. */
export const layers: readonly (readonly string[])[] = [
  ['util'],
  ['api'],
  ['pki'],
  ['credentials', 'distribution', 'runtime'],
  ['model'],
  ['config', 'jobs'],
  ['registry', 'repository', 'pullsecrets', 'retention', 'gc', 'nodeagent', 'token'],
];

export const top = '(src)';

export interface Edge {
  /** Paths relative to src/. */
  from: string;
  to: string;
}

/** The folder of a module under src/, or `top` for a file directly in src/. */
export function folderOf(file: string): string {
  const parts = file.split('/');
  return parts.length === 1 ? top : parts[0]!;
}

function rankOf(folder: string): number | undefined {
  if (folder === top) return layers.length;
  const i = layers.findIndex((l) => l.includes(folder));
  return i < 0 ? undefined : i;
}

/** The imports that break the layering, each with why. Pure. */
export function layerViolations(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === b) continue;
    const ra = rankOf(a);
    const rb = rankOf(b);
    if (ra === undefined) out.push(`${from}: src/${a}/ is in no layer (hack/layers.ts)`);
    else if (rb === undefined) out.push(`${from} imports ${to}: src/${b}/ is in no layer (hack/layers.ts)`);
    else if (ra === rb) out.push(`${from} imports ${to}: ${a} and ${b} are in the same layer`);
    else if (rb > ra) out.push(`${from} imports ${to}: ${b} is in a higher layer than ${a}`);
  }
  return [...new Set(out)].sort();
}

/** Every import cycle between modules, each as the files in it (sorted). Pure (Tarjan's SCC). */
export function importCycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, []);
    if (!next.has(to)) next.set(to, []);
    next.get(from)!.push(to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
        if (w === v) break;
      }
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles.sort((x, y) => x[0]!.localeCompare(y[0]!));
}

const specifiers =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The relative imports of every non-test module under `srcDir`, as edges between modules. */
export function importGraph(srcDir: string): Edge[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts'))
        files.push(full);
    }
  };
  walk(srcDir);
  const edges: Edge[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(specifiers)) {
      const spec = m[1] ?? m[2]!;
      const target = path.resolve(path.dirname(file), spec);
      edges.push({ from: path.relative(srcDir, file), to: path.relative(srcDir, target) });
    }
  }
  return edges;
}

if (import.meta.filename === path.resolve(process.argv[1] ?? '')) {
  const srcDir = path.resolve(import.meta.dirname, '../src');
  const edges = importGraph(srcDir);
  const problems = [
    ...layerViolations(edges),
    ...importCycles(edges).map((c) => `import cycle: ${c.join(' → ')}`),
  ];
  if (problems.length) {
    console.error(
      `layers: ${problems.length} problem(s) in src/ (see hack/layers.ts):\n  ${problems.join('\n  ')}`,
    );
    process.exit(1);
  }
  console.log(
    `layers: ${edges.length} imports between ${new Set(edges.map((e) => e.from)).size} modules, all downward, no cycle`,
  );
}
