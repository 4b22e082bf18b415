/**
 * One log path, read from the sources: every message on stderr goes through src/core/log.ts (so a
 * log collector reading a pipe gets nothing but JSON lines); the only terminal redraws are
 * log.progress. Nothing else in src/ writes to stderr or the console.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { srcFiles } from './src-files.js';

const all = srcFiles();

/** `file:line: text` of each line matching `re`, outside src/core/log.ts. */
function hits(re: RegExp): string[] {
  return all.filter((f) => f.file !== 'src/core/log.ts').flatMap((f) => f.text.split('\n')
    .map((l, i) => (re.test(l) ? `${f.file}:${i + 1}: ${l.trim()}` : null)).filter((x): x is string => x !== null));
}

test('the sources are found (the guard reads something)', () => {
  assert.ok(all.length > 50, `${all.length} files under src/`);
  assert.ok(all.some((f) => f.file === 'src/core/log.ts'));
});

test('no raw stderr writes or console calls outside src/core/log.ts', () => {
  assert.deepEqual(hits(/process\.stderr\.write|console\.(log|error|warn|info|debug)\s*\(/), []);
});

test('terminal line redraws (ESC [K) only through log.progress', () => {
  assert.deepEqual(hits(/\\x1b\[|\\u001b\[|\\e\[/), []);
});
