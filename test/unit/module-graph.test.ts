/**
 * The shape of src/, read from the sources: the runtime imports between its folders form no cycle
 * (the folders read as the data path, docs/architecture.md §1), every hand-written module stays
 * within 600 lines, and each external library enters through one file or one adapter folder.
 * `import type` is erased by the compiler and does not count as an edge; dynamic `import()` does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repoRel, srcFiles } from './src-files.js';
import * as path from 'node:path';
import { builtinModules } from 'node:module';

const all = srcFiles();
const generated = (file: string) => file.startsWith('src/codec/fb/');

/** A file's node in the folder graph: its folder under src/, or the file itself at the top. */
function nodeOf(file: string): string {
  return file.split('/')[1];
}

/** Specifiers a file loads at run time: static imports and re-exports that are not type-only, and dynamic import(). */
function runtimeSpecifiers(text: string): string[] {
  const out: string[] = [];
  const statement = /^[ \t]*(import|export)\s+(?!type\b)([^;()=]*?)\s*(?<=[\s}*])from\s*'([^']+)'/gm;
  for (const m of text.matchAll(statement)) {
    const clause = m[2].trim();
    // `import { type A, type B } from` is erased like `import type`.
    const braces = /^\{([^}]*)\}$/.exec(clause);
    if (braces && braces[1].split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '))) continue;
    out.push(m[3]);
  }
  for (const m of text.matchAll(/^[ \t]*import\s+'([^']+)'/gm)) out.push(m[1]);
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t.startsWith('*') || t.startsWith('//') || t.startsWith('/*')) continue;
    for (const m of line.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push(m[1]);
  }
  return out;
}

interface Edge { from: string; to: string; file: string; target: string }

function folderEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const f of all) {
    for (const s of runtimeSpecifiers(f.text)) {
      if (!s.startsWith('.')) continue;
      const target = repoRel(path.resolve(path.dirname(f.abs), s.replace(/\.js$/, '.ts')));
      const from = nodeOf(f.file), to = nodeOf(target);
      if (from !== to) edges.push({ from, to, file: f.file, target });
    }
  }
  return edges;
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const found: string[][] = [];
  let i = 0;
  const visit = (v: string): void => {
    index.set(v, i); low.set(v, i); i++;
    stack.push(v); onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) found.push(c.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('the parser of imports sees runtime edges and skips type-only ones', () => {
  const text = [
    "import type { A } from '../a/x.js';",
    "import { type B, type C } from '../b/x.js';",
    "import { D, type E } from '../d/x.js';",
    "export { F } from '../f/x.js';",
    "export type { G } from '../g/x.js';",
    " * see import('../h/x.js') in a comment",
    "  const m = await import('../i/x.js');",
    "import '../j/x.js';",
  ].join('\n');
  assert.deepEqual(runtimeSpecifiers(text).sort(), ['../d/x.js', '../f/x.js', '../i/x.js', '../j/x.js']);
  const edges: Edge[] = [
    { from: 'core', to: 'config', file: 'src/core/a.ts', target: 'src/config/b.ts' },
    { from: 'config', to: 'core', file: 'src/config/b.ts', target: 'src/core/c.ts' },
    { from: 'sink', to: 'core', file: 'src/sink/d.ts', target: 'src/core/c.ts' },
  ];
  assert.deepEqual(cycles(edges), [['config', 'core']]);
});

test('no cycle between the folders of src/ (runtime imports)', () => {
  const edges = folderEdges();
  assert.ok(edges.length > 50, `only ${edges.length} import edges found: is the parser broken?`);
  const found = cycles(edges);
  const report = found.map((c) => {
    const inside = edges.filter((e) => c.includes(e.from) && c.includes(e.to));
    return `cycle ${c.join(', ')}:\n` + inside.map((e) => `  ${e.from} -> ${e.to}: ${e.file} imports ${e.target}`).join('\n');
  }).join('\n');
  assert.equal(found.length, 0, report);
});

test('every hand-written module in src/ is at most 600 lines', () => {
  const long = all.filter((f) => !generated(f.file)).map((f) => ({ file: f.file, lines: f.text.split('\n').length - (f.text.endsWith('\n') ? 1 : 0) }))
    .filter((f) => f.lines > 600).map((f) => `${f.file}: ${f.lines} lines`);
  assert.deepEqual(long, []);
});

/** Where each external library may be loaded: one module, or one adapter folder (ending in '/'). */
const LIBRARY_HOMES: Record<string, string[]> = {
  kafkajs: ['src/kafka/kafkajs/'],
  flatbuffers: ['src/codec/flat-build.ts', 'src/codec/fb/'],
  lmdb: ['src/state/lmdb.ts'],
  piscina: ['src/checkpoint/pool.ts'],
  'hdr-histogram-js': ['src/metrics/histogram.ts'],
  'prom-client': ['src/metrics/prometheus.ts'],
  yaml: ['src/config/load.ts'],
  hyparquet: ['src/source/parquet.ts'],
  'hyparquet-writer': ['src/gen-command.ts'],
};

test('each external library is loaded from its one module or adapter folder', () => {
  const builtins = new Set(builtinModules);
  const libraryOf = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]);
  const stray: string[] = [];
  let seen = 0;
  for (const f of all) {
    // Type imports count too: a library's types outside its adapter couple the code to it all the same.
    const specifiers = [...f.text.matchAll(/^[ \t]*(?:import|export)\s[^;()=]*?(?<=[\s}*])from\s*'([^'.][^']*)'/gm), ...f.text.matchAll(/^[ \t]*import\s+'([^'.][^']*)'/gm),
      ...f.text.matchAll(/\b(?:import|require\w*(?:\.resolve)?)\(\s*'([^'.][^']*)'/g)].map((m) => m[1]);
    for (const s of specifiers) {
      if (s.startsWith('node:') || builtins.has(s)) continue;
      const lib = libraryOf(s);
      seen++;
      const homes = LIBRARY_HOMES[lib];
      if (!homes) stray.push(`${f.file} loads ${lib}, which has no home here: give it one adapter module and list it in LIBRARY_HOMES`);
      else if (!homes.some((h) => (h.endsWith('/') ? f.file.startsWith(h) : f.file === h))) stray.push(`${f.file} loads ${lib} (its home: ${homes.join(', ')})`);
    }
  }
  assert.ok(seen >= Object.keys(LIBRARY_HOMES).length, `only ${seen} library imports found: is the parser broken?`);
  assert.deepEqual([...new Set(stray)], []);
});
