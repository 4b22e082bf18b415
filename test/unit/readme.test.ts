import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { renderReadme } from '../../tools/readme-flags.js';

test('the README flag table matches the option schema (run tools/readme-flags to fix)', () => {
  const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  assert.equal(readme, renderReadme(readme));
  assert.match(readme, /npm ci && npx joinery demo/);
  assert.match(readme, /npm ci && npm test/);
});

test('every row of the README flag table has exactly four cells (a bare | in a value would split it)', () => {
  const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const a = readme.indexOf('<!-- flags:begin'), b = readme.indexOf('<!-- flags:end');
  const rows = readme.slice(a, b).split('\n').filter((l) => l.startsWith('|'));
  assert.ok(rows.length > 20, `rows: ${rows.length}`);
  for (const row of rows) {
    const cells = row.replace(/\\\|/g, '').split('|').length - 2;
    assert.equal(cells, 4, row);
  }
});
