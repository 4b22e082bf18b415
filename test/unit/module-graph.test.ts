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

/**
 * The code of a file without its comments and the text of its string literals (a template's `${…}`
 * expressions are kept): what it names, not what it says. Regular-expression literals are skipped
 * whole (a quote inside one would otherwise open a string). Lines stay in place.
 */
function identifiersOnly(text: string): string {
  let out = '';
  const stack: Array<'tpl' | 'expr'> = []; // open templates and the `${` expressions inside them
  let depth = 0; // braces open in the innermost `${` expression
  let last = ''; // last significant code character (tells a regex literal from a division)
  const keepLines = (s: string) => s.replace(/[^\n]/g, ' ');
  let i = 0;
  const n = text.length;
  const inTemplate = () => stack[stack.length - 1] === 'tpl';
  while (i < n) {
    const c = text[i], d = text[i + 1];
    if (inTemplate()) {
      if (c === '\\') { out += '  '; i += 2; continue; }
      if (c === '`') { stack.pop(); out += '`'; i++; last = '`'; continue; }
      if (c === '$' && d === '{') { stack.push('expr'); depth = 0; out += '${'; i += 2; last = '{'; continue; }
      out += c === '\n' ? '\n' : ' '; i++; continue;
    }
    if (c === '/' && d === '/') { const e = text.indexOf('\n', i); i = e < 0 ? n : e; continue; }
    if (c === '/' && d === '*') { const e = text.indexOf('*/', i + 2); const end = e < 0 ? n : e + 2; out += keepLines(text.slice(i, end)); i = end; continue; }
    if (c === '\'' || c === '"') {
      let j = i + 1;
      while (j < n && text[j] !== c && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      out += c + keepLines(text.slice(i + 1, j)) + c; i = j + 1; last = c; continue;
    }
    if (c === '`') { stack.push('tpl'); out += '`'; i++; continue; }
    if (c === '/' && (last === '' || '(,=:[!&|?{};+-*%<>~^'.includes(last))) {
      let j = i + 1, cls = false;
      while (j < n && text[j] !== '\n' && (cls || text[j] !== '/')) { if (text[j] === '\\') j++; else if (text[j] === '[') cls = true; else if (text[j] === ']') cls = false; j++; }
      out += keepLines(text.slice(i, j + 1)); i = j + 1; last = '/'; continue;
    }
    if (stack.length > 0 && c === '{') depth++;
    if (stack.length > 0 && c === '}') {
      if (depth === 0) { stack.pop(); out += '}'; i++; continue; } // back into the template
      depth--;
    }
    if (!/\s/.test(c)) last = /[\w$)\]]/.test(c) ? 'w' : c;
    out += c; i++;
  }
  return out;
}

/**
 * Kafka lives in src/kafka/ (the port, its kafkajs adapter, and what only Kafka knows of run,
 * rebuild, backfill and verify). Outside it the core speaks of partitioned logs (LogPosition,
 * src/source/source.ts); only these files import from src/kafka/, each a command's or the input
 * registry's wiring.
 */
const KAFKA_IMPORTERS: Record<string, string> = {
  'src/cli.ts': 'run, gen and topics open Kafka inputs and sinks (kafka/io.ts, rebuild.ts, topics.ts)',
  'src/member.ts': 'a consumer-group member is Kafka by definition: assignment, re-join, eviction',
  'src/gen-kafka.ts': '`joinery gen` into Kafka topics',
  'src/source/registry.ts': 'the input registry maps the descriptor kind `kafka` to its factory (kafka/io.ts)',
  'src/backfill/index.ts': 'the backfill command opens Kafka inputs through kafka/backfill.ts',
  'src/verify/index.ts': 'the verify command reads topics through kafka/verify.ts',
};

/**
 * Files outside src/kafka/ whose code (not comments, not string texts: messages, flag docs, the
 * manifest's on-disk key may say Kafka) names Kafka: the importers above, the endpoint descriptors
 * and flag checks of src/config/, and one stable error code.
 */
const KAFKA_NAMERS = (file: string): boolean => file in KAFKA_IMPORTERS || file.startsWith('src/config/') || file === 'src/core/errors.ts';

/** Modules under src/kafka/ a file loads, type-only imports included (they couple the code all the same). */
function kafkaImports(f: { file: string; abs: string; text: string }): string[] {
  const specifiers = [...f.text.matchAll(/^[ \t]*(?:import|export)\s[^;()=]*?(?<=[\s}*])from\s*'(\.[^']*)'/gm), ...f.text.matchAll(/\bimport\(\s*'(\.[^']*)'\s*\)/g)].map((m) => m[1]);
  return specifiers.map((s) => repoRel(path.resolve(path.dirname(f.abs), s.replace(/\.js$/, '.ts')))).filter((t) => t.startsWith('src/kafka/'));
}

test('the code reader keeps identifiers and drops comments, string texts and regular expressions', () => {
  const t = [
    "const kafkaIn = x; // kafka", "/* Kafka */ const a = 'kafka:' + \"Kafka\";", 'const m = `kafka:${kafkaTopic(e)} ${`Kafka${nested}`}`;',
    "const r = /['\"]kafka/; const q = a / kafkaRate;",
  ].join('\n');
  const kept = identifiersOnly(t).split('\n');
  assert.equal(kept.length, 4);
  assert.match(kept[0], /kafkaIn/); assert.doesNotMatch(kept[0].replace('kafkaIn', ''), /kafka/i);
  assert.doesNotMatch(kept[1], /kafka/i);
  assert.match(kept[2], /kafkaTopic\(e\)/); assert.match(kept[2], /nested/); assert.doesNotMatch(kept[2].replace('kafkaTopic', ''), /kafka/i);
  assert.match(kept[3], /kafkaRate/); assert.doesNotMatch(kept[3].replace('kafkaRate', ''), /kafka/i);
});

test('outside src/kafka/, only the wiring imports from src/kafka/ (and nothing but src/kafka/ reaches the kafkajs adapter)', () => {
  const stray: string[] = [];
  for (const f of all.filter((x) => !x.file.startsWith('src/kafka/'))) {
    for (const t of kafkaImports(f)) {
      if (t.startsWith('src/kafka/kafkajs/')) stray.push(`${f.file} imports ${t}: the adapter is reached through src/kafka/adapters.ts`);
      else if (!(f.file in KAFKA_IMPORTERS)) stray.push(`${f.file} imports ${t}`);
    }
  }
  assert.deepEqual(stray, []);
  // each exception is still needed: a file that no longer imports Kafka leaves the list
  assert.deepEqual(Object.keys(KAFKA_IMPORTERS).filter((file) => kafkaImports(all.find((f) => f.file === file)!).length === 0), []);
});

test('outside src/kafka/ and the wiring, no code names Kafka: the core carries LogPosition, not Kafka types', () => {
  const named = all.filter((f) => !f.file.startsWith('src/kafka/') && !KAFKA_NAMERS(f.file)).flatMap((f) => identifiersOnly(f.text).split('\n')
    .map((l, i) => (/kafka/i.test(l) ? `${f.file}:${i + 1}: ${f.text.split('\n')[i].trim()}` : null)).filter((x): x is string => x !== null));
  assert.deepEqual(named, []);
  assert.ok(all.some((f) => f.file === 'src/router/router.ts') && all.some((f) => f.file === 'src/checkpoint/manifest.ts'), 'the guard reads the core');
  // each exception is still needed
  const namers = all.filter((f) => KAFKA_NAMERS(f.file) && !f.file.startsWith('src/config/'));
  assert.deepEqual(namers.filter((f) => !/kafka/i.test(identifiersOnly(f.text))).map((f) => f.file), []);
});
