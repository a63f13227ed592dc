// The size of every function in src/ (declarations, methods, arrows and function expressions),
// in lines from its first to its last line. `node hack/function-sizes.ts [--max=N] [--top=K]`
// prints the largest and exits 1 when one is longer than --max (part of `npm run check`, which
// holds every function in src/ to 60 lines; tests are not counted). hack/function-sizes.test.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface FunctionSize {
  file: string;
  name: string;
  line: number;
  lines: number;
}

function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name) return named.name.getText(sf);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  return '(anonymous)';
}

/** Every function in one source text, with its length in lines. Pure. */
export function functionSizes(file: string, text: string): FunctionSize[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: FunctionSize[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file, name: nameOf(node, sf), line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

export function sourceFunctionSizes(srcDir: string): FunctionSize[] {
  const out: FunctionSize[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts'))
        out.push(...functionSizes(path.relative(srcDir, full), readFileSync(full, 'utf8')));
    }
  };
  walk(srcDir);
  return out.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file));
}

if (import.meta.filename === path.resolve(process.argv[1] ?? '')) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const max = Number(arg('max') ?? Infinity);
  const topN = Number(arg('top') ?? 10);
  const sizes = sourceFunctionSizes(path.resolve(import.meta.dirname, '../src'));
  const over = sizes.filter((s) => s.lines > max);
  const show = over.length ? over : sizes.slice(0, topN);
  for (const s of show) console.log(`${String(s.lines).padStart(4)}  src/${s.file}:${s.line}  ${s.name}`);
  if (over.length) {
    console.error(`function-sizes: ${over.length} function(s) in src/ longer than ${max} lines`);
    process.exit(1);
  }
}
