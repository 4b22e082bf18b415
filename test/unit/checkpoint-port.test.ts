/**
 * The CheckpointStorage port's boundary, read from the sources: the layout of checkpoint data
 * (manifests/, data/, members/, file paths) is known only to the storage implementations, one
 * place chooses the implementation, and nothing else renames or lists checkpoint files itself. An
 * object store is then one new class (docs/architecture.md §3).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { srcFiles } from './src-files.js';

const IMPLEMENTATIONS = ['src/checkpoint/storage.ts', 'src/checkpoint/memory-storage.ts'];
const all = srcFiles();
const outside = all.filter((f) => !IMPLEMENTATIONS.includes(f.file));

function hits(list: typeof all, re: RegExp): string[] {
  return list.flatMap((f) => f.text.split('\n').map((l, i) => (re.test(l) && !/^\s*(\*|\/\/)/.test(l) ? `${f.file}:${i + 1}: ${l.trim()}` : null))
    .filter((x): x is string => x !== null));
}

test('the sources are found (the guard reads something)', () => {
  assert.ok(all.length > 50);
  for (const f of IMPLEMENTATIONS) assert.ok(all.some((a) => a.file === f), f);
});

test('the checkpoint layout (manifests/, data/, members/, ckpt-N.json paths) is known only to the storage implementations', () => {
  assert.deepEqual(hits(outside, /\bdataDir\b|manifestPathOf|memberDir|'manifests'|'members'|path\.join\([^)]*'data'/), []);
});

test('one place chooses the implementation: LocalDirStorage is constructed only in storage.ts', () => {
  assert.deepEqual(hits(outside, /new LocalDirStorage\(/), []);
});

test('nothing outside the port renames, lists or removes checkpoint files itself', () => {
  // (src/engine/setup.ts clears the state directory's worker-N folders: working state, not checkpoint data.)
  const checkpointCode = outside.filter((f) => /^src\/(checkpoint|worker|member|engine|rebuild)/.test(f.file) && f.file !== 'src/engine/setup.ts');
  assert.deepEqual(hits(checkpointCode, /fs\.(renameSync|readdirSync|rmSync|unlinkSync)|fs\.promises\.(rename|readdir|rm|unlink)\b/), []);
});
