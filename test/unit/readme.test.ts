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
