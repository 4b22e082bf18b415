/**
 * dropCachedPages (src/checkpoint/page-cache.ts): a durable checkpoint file leaves the page cache.
 * Residency is read with util-linux `fincore` (mincore(2) over the file), on the real filesystem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dropCachedPages, pageCacheDropActive } from '../../src/checkpoint/page-cache.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-page-cache-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function residentBytes(p: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', p]).toString().trim());
}

test('a written, fsynced file leaves the page cache; the helper stays on; a missing file does not turn it off', async () => {
  if (process.platform !== 'linux') {
    dropCachedPages(path.join(tmp, 'x'));
    assert.equal(pageCacheDropActive(), false, 'off outside Linux');
    return;
  }
  const write = (name: string) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, Buffer.alloc(4 << 20, 7));
    const fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    assert.ok(residentBytes(p) > 0, `${name}: cached after the write (a filesystem without a page cache, such as tmpfs, cannot run this test)`);
    return p;
  };
  const waitDropped = async (p: string) => {
    const deadline = Date.now() + 5_000;
    while (residentBytes(p) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(residentBytes(p), 0, `${p}: dropped from the page cache`);
  };
  const a = write('a.delta');
  dropCachedPages(a);
  await waitDropped(a);
  assert.equal(pageCacheDropActive(), true);
  dropCachedPages(path.join(tmp, 'gone.delta')); // removed before its turn: dd fails, the helper goes on
  const b = write('b.delta');
  dropCachedPages(b);
  await waitDropped(b);
  assert.equal(pageCacheDropActive(), true);
  assert.equal(fs.readFileSync(b).every((x) => x === 7), true, 'the bytes are untouched');
});
