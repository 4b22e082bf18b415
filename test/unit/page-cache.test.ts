/**
 * dropCachedPages (src/checkpoint/page-cache.ts): a durable checkpoint file leaves the page cache;
 * a worker's delta leaves it as it is written out (ChangeWriter `dropSynced`), and sealing takes the
 * writer's checksum rather than reading the file back.
 * Residency is read with util-linux `fincore` (mincore(2) over the file), on the real filesystem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dropCachedPages, pageCacheDropActive } from '../../src/checkpoint/page-cache.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import { seal } from '../../src/checkpoint/tasks.js';
import { scanFile } from '../../src/checkpoint/fold.js';
import { forEachChangeIn } from '../../src/checkpoint/delta.js';

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

test('a delta writer with dropSynced leaves only its unsynced tail in the page cache', async () => {
  if (process.platform !== 'linux') return;
  const p = path.join(tmp, 'c.delta');
  const w = new ChangeWriter(p, 'delta', { checksum: true, presyncBytes: 1 << 20, dropSynced: true });
  const key = new Uint8Array(12), id = new Uint8Array(10), payload = new Uint8Array(100).fill(3);
  // ~13 MiB in 1 MiB writes, in turns of the event loop as a worker writes: past each 1 MiB the
  // writer asks for an early fdatasync (one at a time), and drops the file's clean pages after it.
  for (let i = 0; i < 100_000; i++) {
    w.event(0, 1, 7, key, 1_000 + i, id, payload, false, 10_000_000);
    if (i % 10_000 === 0) await new Promise((r) => setTimeout(r, 30));
  }
  const deadline = Date.now() + 5_000;
  const size = () => fs.statSync(p).size;
  while (residentBytes(p) > size() / 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const resident = residentBytes(p);
  assert.ok(size() > 10 << 20, `wrote ${size()} bytes`);
  assert.ok(resident <= size() / 2, `${resident} of ${size()} bytes still cached: the synced part was not dropped`);
  assert.equal(w.close(), true);
  // The writer's checksum is the file's: sealing may take it instead of reading the file back.
  const sealed = seal({ paths: [p] })[0];
  assert.deepEqual({ bytes: sealed.bytes, checksum: sealed.checksum }, { bytes: w.bytes, checksum: w.digest() });
});

test('seal takes a known checksum without reading the file back, unless the length differs', () => {
  const p = path.join(tmp, 'd.delta');
  fs.writeFileSync(p, Buffer.alloc(5000, 9));
  const real = seal({ paths: [p] })[0].checksum;
  const known = { bytes: 5000, checksum: 'crc32:0badf00d' }; // not the file's: only a sealer that trusts it returns it
  assert.equal(seal({ paths: [p], known: [known] })[0].checksum, 'crc32:0badf00d');
  assert.equal(seal({ paths: [p], known: [{ ...known, bytes: 4999 }] })[0].checksum, real, 'a length that differs: read and checksummed');
  assert.equal(seal({ paths: [p], known: [undefined] })[0].checksum, real);
});

test('a scan with dropBehind (a restore\'s fold) leaves the file out of the page cache; one without keeps it', async () => {
  if (process.platform !== 'linux') return;
  const write = (name: string) => {
    const p = path.join(tmp, name);
    const w = new ChangeWriter(p, 'delta', { presyncBytes: 0 });
    const key = new Uint8Array(12), id = new Uint8Array(10), payload = new Uint8Array(100).fill(5);
    for (let i = 0; i < 20_000; i++) w.event(0, 1, 7, key, 1_000 + i, id, payload, false, 10_000_000);
    assert.equal(w.close(), true);
    const fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    return p;
  };
  const kept = write('e.delta'), dropped = write('f.delta');
  let records = 0;
  const count = (buf: Buffer, start: number, format: 1 | 2, base: number, more: boolean) =>
    forEachChangeIn(buf, 'x', 0, 1 << 16, () => { records++; }, start, Infinity, false, format, base, more);
  scanFile(kept, count, 1 << 20, false);
  scanFile(dropped, count, 1 << 20, true);
  assert.equal(records, 40_000);
  const deadline = Date.now() + 5_000;
  while (residentBytes(dropped) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(residentBytes(dropped), 0, 'read with dropBehind: dropped');
  assert.ok(residentBytes(kept) > 0, 'read without it: still cached');
});
