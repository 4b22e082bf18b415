// State change files (src/checkpoint/delta.ts): the writer's format read back by forEachChange,
// retries after failed writes, and foldChain's rules for rebuilding the live events.
import * as zlib from 'node:zlib';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import fsObject from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeType, CorruptChangeFile, FILE_HEADER_BYTES, checkHeader, forEachChange, forEachChangeIn, type ChangeRecord } from '../../src/checkpoint/delta.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import { JoineryError } from '../../src/core/errors.js';
import { foldChain, scanFile, type ChainFile } from '../../src/checkpoint/fold.js';
import { compact } from '../../src/checkpoint/tasks.js';
import type { Side } from '../../src/state/store.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-delta-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const file = (ext = 'delta') => path.join(tmp, `f${++seq}.${ext}`);
const b = (s: string) => Buffer.from(s, 'utf8');

interface Rec { type: ChangeType; side: Side; kg: number; hash?: number; key: string; ts: number; id: string; payload?: string; joined?: boolean; expireAt?: number }

function write(p: string, recs: Rec[], kind: 'delta' | 'base' = 'delta'): ChangeWriter {
  const w = new ChangeWriter(p, kind);
  for (const r of recs) {
    if (r.type === ChangeType.Event) w.event(r.side, r.kg, r.hash ?? 7, b(r.key), r.ts, b(r.id), b(r.payload ?? ''), r.joined ?? false, r.expireAt ?? r.ts);
    else if (r.type === ChangeType.Mark) w.mark(r.side, r.kg, r.hash ?? 7, b(r.key), r.ts, b(r.id));
    else w.expired(r.side, r.kg, r.hash ?? 0, b(r.key), r.ts, b(r.id));
  }
  assert.equal(w.close(), true, String(w.lastError));
  return w;
}

/** A plain copy of a record (its views are only valid during the visit). */
const snap = (r: ChangeRecord) => ({
  type: r.type, side: r.side, kg: r.keyGroup, hash: r.keyHash, key: Buffer.from(r.key).toString(), ts: r.ts, id: Buffer.from(r.id).toString(),
  payload: Buffer.from(r.payload).toString(), joined: r.joined, expireAt: r.expireAtMs,
});

const ev = (side: Side, kg: number, key: string, ts: number, id: string, extra: Partial<Rec> = {}): Rec => ({ type: ChangeType.Event, side, kg, key, ts, id, payload: `{"id":"${id}"}`, ...extra });
const mark = (side: Side, kg: number, key: string, ts: number, id: string): Rec => ({ type: ChangeType.Mark, side, kg, key, ts, id });
const gone = (side: Side, kg: number, key: string, ts: number, id: string): Rec => ({ type: ChangeType.Expired, side, kg, key, ts, id });

function fold(files: ChainFile[], from: number, to: number, outer: [boolean, boolean], dropBeforeMs = -Infinity) {
  const out: ReturnType<typeof snap>[] = [];
  foldChain(files, () => {}, from, to, outer, dropBeforeMs, (r) => out.push(snap(r)));
  return out;
}

describe('ChangeWriter and forEachChange', () => {
  test('round trip: every field of every record type comes back, in order', () => {
    const p = file();
    const w = write(p, [
      ev(0, 3, 'user-1', 1000.5, 'a', { hash: 0xdeadbeef, payload: 'é payload', joined: true, expireAt: 91000.5 }),
      mark(1, 4, 'user-2', -5, 'b'),
      gone(0, 65535, '', 0, ''),
    ]);
    const buf = fs.readFileSync(p);
    assert.equal(w.bytes, buf.length);
    assert.equal(w.records, 3);
    assert.equal(checkHeader(buf, p), 'delta');
    const got: ReturnType<typeof snap>[] = [];
    assert.equal(forEachChange(buf, p, 0, 65536, (r) => got.push(snap(r))), buf.length);
    assert.deepEqual(got, [
      { type: ChangeType.Event, side: 0, kg: 3, hash: 0xdeadbeef, key: 'user-1', ts: 1000.5, id: 'a', payload: 'é payload', joined: true, expireAt: 91000.5 },
      { type: ChangeType.Mark, side: 1, kg: 4, hash: 7, key: 'user-2', ts: -5, id: 'b', payload: '', joined: true, expireAt: 0 },
      { type: ChangeType.Expired, side: 0, kg: 65535, hash: 0, key: '', ts: 0, id: '', payload: '', joined: false, expireAt: 0 },
    ]);
  });

  test('a base file says so in its header; an empty change file is just the header', () => {
    const p = file('base');
    write(p, [], 'base');
    const buf = fs.readFileSync(p);
    assert.equal(buf.length, FILE_HEADER_BYTES);
    assert.equal(checkHeader(buf, p), 'base');
    assert.equal(forEachChange(buf, p, 0, 65536, () => assert.fail('no records')), FILE_HEADER_BYTES);
  });

  test('key-group filtering: only records in [from, to) are visited', () => {
    const p = file();
    write(p, [0, 1, 2, 3, 4, 5].map((kg) => ev(0, kg, `k${kg}`, kg, `i${kg}`)));
    const buf = fs.readFileSync(p);
    const kgs: number[] = [];
    forEachChange(buf, p, 2, 5, (r) => kgs.push(r.keyGroup));
    assert.deepEqual(kgs, [2, 3, 4]);
  });

  test('resumable: maxRecords stops early and the returned offset continues where it stopped', () => {
    const p = file();
    write(p, Array.from({ length: 10 }, (_, i) => ev(i % 2 as Side, i, `k${i}`, i, `i${i}`)));
    const buf = fs.readFileSync(p);
    const ids: string[] = [];
    let o = FILE_HEADER_BYTES;
    let steps = 0;
    while (o < buf.length) {
      // Filtered-out records count toward the step too: each step reads at most 3.
      o = forEachChange(buf, p, 0, 8, (r) => ids.push(Buffer.from(r.id).toString()), o, 3);
      steps++;
    }
    assert.equal(steps, 4);
    assert.deepEqual(ids, ['i0', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7']);
  });

  test('records larger than the write buffer, and many small ones across buffer boundaries', () => {
    const p = file();
    const big = 'x'.repeat(3 << 20);
    const recs: Rec[] = [ev(0, 1, 'k', 1, 'big', { payload: big })];
    for (let i = 0; i < 30_000; i++) recs.push(ev(1, i & 1023, `key-${i}`, i, `id-${i}`, { payload: `p${i}`.repeat(10) }));
    write(p, recs);
    const buf = fs.readFileSync(p);
    let n = 0, sawBig = false;
    forEachChange(buf, p, 0, 65536, (r) => {
      if (n === 0) sawBig = r.payload.length === big.length && Buffer.from(r.payload).toString() === big;
      else assert.equal(Buffer.from(r.id).toString(), `id-${n - 1}`);
      n++;
    });
    assert.ok(sawBig);
    assert.equal(n, 30_001);
  });

  test('over a recycled file: the file is overwritten in place and cut at its end, byte-identical to a fresh one', () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 40_000; i++) recs.push(ev((i & 1) as Side, i & 1023, `key-${i}`, i + 1, `id-${i}`, { payload: `p${i}`.repeat(i % 7) }));
    recs.splice(20_000, 0, ev(0, 1, 'k', 1, 'big', { payload: 'y'.repeat(1500_000) })); // a record that grows the buffer mid-file
    const fresh = file();
    write(fresh, recs);
    const old = file();
    fs.writeFileSync(old, Buffer.alloc(fs.statSync(fresh).size * 2, 0xab)); // a longer, older file
    const ino = fs.statSync(old).ino;
    write(old, recs);
    assert.equal(fs.statSync(old).ino, ino, 'written in place, not replaced');
    assert.ok(fs.readFileSync(old).equals(fs.readFileSync(fresh)), 'same bytes as a fresh file, nothing of the old one after them');
  });

  test('writes before the last end on a page boundary (a recycled file is never read back to change part of a page)', () => {
    const p = file();
    const sizes: number[] = [];
    // Count the writes: the builtin's ES module bindings follow its CommonJS object once synced.
    const real = fsObject.writeSync;
    fsObject.writeSync = ((fd: number, buf: Buffer, off: number, len: number, pos: number) => { sizes.push(pos, len); return real(fd, buf, off, len, pos); }) as typeof real;
    syncBuiltinESMExports();
    try {
      const recs: Rec[] = [];
      for (let i = 0; i < 30_000; i++) recs.push(ev(1, i & 1023, `key-${i}`, i, `id-${i}`, { payload: `p${i}`.repeat(9) }));
      write(p, recs);
    } finally {
      fsObject.writeSync = real;
      syncBuiltinESMExports();
    }
    assert.ok(sizes.length >= 6, 'several writes');
    for (let i = 0; i + 2 < sizes.length; i += 2) assert.equal((sizes[i] + sizes[i + 1]) % 4096, 0, `write ${i / 2} ends at ${sizes[i] + sizes[i + 1]}`);
    assert.equal(sizes[sizes.length - 2] + sizes[sizes.length - 1], fs.statSync(p).size);
  });

  test('a failed write keeps the bytes and the next flush puts them in the file (directory gone, then back)', () => {
    const dir = path.join(tmp, 'vanishing');
    fs.mkdirSync(dir);
    const p = path.join(dir, 'w.delta');
    const w = new ChangeWriter(p);
    w.event(0, 1, 2, b('k'), 10, b('i1'), b('first'), false, 20);
    fs.rmSync(dir, { recursive: true });
    assert.equal(w.flush(), false, 'cannot write: the directory is gone');
    assert.equal(w.complete, false);
    assert.match(String(w.lastError?.message), /ENOENT/);
    assert.equal(w.close(), false, 'close does not give up the pending bytes');
    w.event(0, 1, 2, b('k'), 11, b('i2'), b('second'), false, 21);
    fs.mkdirSync(dir);
    assert.equal(w.close(), true, String(w.lastError));
    assert.equal(w.complete, true);
    assert.equal(w.lastError, null);
    const buf = fs.readFileSync(p);
    assert.equal(buf.length, w.bytes);
    const ids: string[] = [];
    forEachChange(buf, p, 0, 65536, (r) => ids.push(Buffer.from(r.id).toString()));
    assert.deepEqual(ids, ['i1', 'i2']);
  });

  test('changes held after failed writes are bounded: past the limit the writer stops with the file and the cause named', () => {
    const dir = path.join(tmp, 'gone-for-good');
    const p = path.join(dir, 'w.delta'); // never created
    const w = new ChangeWriter(p, 'delta', { heldMaxBytes: 4 << 20 });
    const payload = b('p'.repeat(1000));
    let thrown: unknown;
    let n = 0;
    try {
      for (; n < 20_000; n++) w.event(0, 1, n, b(`k${n}`), n, b(`i${n}`), payload, false, n);
    } catch (e) { thrown = e; }
    assert.ok(thrown instanceof JoineryError, String(thrown));
    assert.equal(thrown.code, 'E_OUTPUT');
    assert.match(thrown.message, /cannot write checkpoint file .*gone-for-good\/w\.delta: .*ENOENT.*MiB of state changes are waiting in memory \(at most 4 MiB\).*restart/);
    assert.ok(n > 3_000 && n < 6_000, `gave up after ~4 MiB of records (${n})`);
  });

  test('early write-out (fdatasync in the background) keeps every byte, and the fd is closed once it is done', async () => {
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    const p = file();
    const w = new ChangeWriter(p, 'delta', { presyncBytes: 1 << 20 });
    const payload = 'p'.repeat(1000);
    for (let i = 0; i < 20_000; i++) w.event(0, i & 4095, i, b(`k${i}`), i, b(`i${i}`), b(payload), false, i);
    assert.equal(w.close(), true, String(w.lastError));
    for (let t = 0; t < 200 && openFds() > before; t++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(openFds(), before, 'no fd left open (closed by the last fdatasync callback if close() came first)');
    const buf = fs.readFileSync(p);
    assert.equal(buf.length, w.bytes);
    let n = 0;
    forEachChange(buf, p, 0, 65536, (r) => { assert.equal(Buffer.from(r.id).toString(), `i${n}`); n++; });
    assert.equal(n, 20_000);
  });

  test('corrupt or truncated files are rejected with a clear error', () => {
    const p = file();
    write(p, [ev(0, 1, 'k', 1, 'a', { payload: 'payload bytes' }), ev(0, 1, 'k', 2, 'b')]);
    const good = fs.readFileSync(p);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['empty', Buffer.alloc(0), /not a joinery state file \(bad header\)/],
      ['wrong magic', Buffer.concat([Buffer.from('NOTADELT'), good.subarray(8)]), /bad header/],
      ['cut inside a record header', good.subarray(0, FILE_HEADER_BYTES + 20), /truncated record at byte 16/],
      ['cut inside a payload', good.subarray(0, good.length - 3), /truncated record at byte \d+/],
      ['bad record type', (() => { const c = Buffer.from(good); c[FILE_HEADER_BYTES] = 9; return c; })(), /bad record type 9 at byte 16/],
    ];
    for (const [what, buf, re] of cases) {
      assert.throws(() => forEachChange(buf, `x.delta`, 0, 65536, () => {}), (e: Error) => e instanceof CorruptChangeFile && re.test(e.message) && e.message.startsWith('x.delta'), what);
      const q = file();
      fs.writeFileSync(q, buf);
      assert.throws(() => fold([{ path: q, keyGroups: [0, 65536] }], 0, 65536, [true, true]), CorruptChangeFile, `${what} (foldChain)`);
      assert.throws(() => fold([{ path: q, keyGroups: [0, 65536] }], 0, 65536, [false, false]), CorruptChangeFile, `${what} (foldChain, inner)`);
    }
  });
});

describe('foldChain', () => {
  const all: [number, number] = [0, 65536];

  test('EXPIRED removes an outer event, MARK sets its joined bit, across files; file order is kept', () => {
    const f1 = file(), f2 = file(), f3 = file();
    write(f1, [ev(0, 1, 'k', 10, 'a'), ev(0, 1, 'k', 11, 'b'), ev(0, 1, 'k', 12, 'c')]);
    write(f2, [mark(0, 1, 'k', 11, 'b'), ev(0, 1, 'k', 13, 'd')]);
    write(f3, [gone(0, 1, 'k', 10, 'a'), mark(0, 1, 'k', 13, 'd')]);
    const out = fold([f1, f2, f3].map((path) => ({ path, keyGroups: all })), 0, 65536, [true, false]);
    assert.deepEqual(out.map((r) => [r.id, r.joined]), [['b', true], ['c', false], ['d', true]]);
  });

  test('non-outer events past dropBeforeMs are dropped; outer ones stay until EXPIRED', () => {
    const f = file();
    write(f, [
      ev(0, 1, 'k', 10, 'l-old', { expireAt: 99 }), ev(0, 1, 'k', 10, 'l-at', { expireAt: 100 }),
      ev(1, 1, 'k', 10, 'r-old', { expireAt: 99 }), ev(1, 1, 'k', 10, 'r-at', { expireAt: 100 }),
    ]);
    const ids = (outer: [boolean, boolean]) => fold([{ path: f, keyGroups: all }], 0, 65536, outer, 100).map((r) => r.id);
    assert.deepEqual(ids([false, false]), ['l-at', 'r-at']);
    assert.deepEqual(ids([true, false]), ['l-old', 'l-at', 'r-at']);
    assert.deepEqual(ids([true, true]), ['l-old', 'l-at', 'r-old', 'r-at']);
  });

  test('inner sides ignore MARK and EXPIRED (they are never logged for them)', () => {
    const f = file();
    write(f, [ev(1, 1, 'k', 10, 'r'), mark(1, 1, 'k', 10, 'r'), gone(1, 1, 'k', 10, 'r'), ev(0, 1, 'k', 10, 'l'), gone(0, 1, 'k', 10, 'l')]);
    assert.deepEqual(fold([{ path: f, keyGroups: all }], 0, 65536, [true, false]).map((r) => [r.side, r.id, r.joined]), [[1, 'r', false]]);
  });

  test('key groups: files outside the range are not read; records are filtered per key group (rescale)', () => {
    const a = file(), c = file();
    write(a, [ev(0, 1, 'k1', 1, 'a1'), ev(0, 5, 'k5', 1, 'a5')]);   // an old worker owning 0..8
    write(c, [gone(0, 5, 'k5', 1, 'a5'), ev(0, 6, 'k6', 2, 'c6')]); // a new worker owning 4..8
    const read: string[] = [];
    const files: ChainFile[] = [{ path: a, keyGroups: [0, 8] }, { path: c, keyGroups: [4, 8] }, { path: '/nonexistent', keyGroups: [8, 16] }];
    const ids = (from: number, to: number) => {
      const out: string[] = [];
      foldChain(files, (p) => { read.push(p); }, from, to, [true, false], -Infinity, (r) => out.push(Buffer.from(r.id).toString()));
      return out;
    };
    assert.deepEqual(ids(0, 4), ['a1']);
    assert.ok(!read.includes(c), 'a file of other key groups is not read');
    assert.deepEqual(ids(4, 8), ['c6']);
    assert.deepEqual(ids(0, 8), ['a1', 'c6']);
  });

  test('identities are exact: a key and id whose concatenations agree are different events', () => {
    // (key "a|b", id "c") and (key "a", id "b|c"): same side and time, different events.
    const f = file();
    write(f, [ev(0, 1, 'a|b', 10, 'c'), ev(0, 1, 'a', 10, 'b|c'), gone(0, 1, 'a', 10, 'b|c'), ev(0, 1, 'x', 10, 'y|z'), ev(0, 1, 'x|y', 10, 'z'), mark(0, 1, 'x', 10, 'y|z')]);
    const out = fold([{ path: f, keyGroups: all }], 0, 65536, [true, false]);
    assert.deepEqual(out.map((r) => [r.key, r.id, r.joined]), [['a|b', 'c', false], ['x', 'y|z', true], ['x|y', 'z', false]]);
  });

  test('files are read a chunk at a time: records cut by a chunk\'s end, and one longer than a chunk, come back whole', () => {
    const f = file();
    const recs = Array.from({ length: 60 }, (_, i) => ev((i % 2) as Side, i, `key-${i}`, 1000 + i, `id-${i}`,
      { payload: i === 31 ? 'x'.repeat(700) : 'p'.repeat(i * 3) }));
    recs.splice(10, 0, mark(0, 3, 'key-3', 1003, 'id-3'));
    write(f, recs);
    const whole: ReturnType<typeof snap>[] = [];
    forEachChange(fs.readFileSync(f), f, 0, 65536, (r) => whole.push(snap(r)));
    assert.equal(whole.length, 61);
    for (const chunk of [17, 64, 100, 333, 1 << 20]) {
      const got: ReturnType<typeof snap>[] = [];
      const size = scanFile(f, (buf, start, format, base, more) =>
        forEachChangeIn(buf, f, 0, 65536, (r) => got.push(snap(r)), start, Infinity, true, format, base, more), chunk);
      assert.equal(size, fs.statSync(f).size);
      assert.deepEqual(got, whole, `chunks of ${chunk} bytes`);
    }
    // A file cut in the middle of a record: the error names the record's byte in the file, not in the chunk.
    const cut = file();
    const bytes = fs.readFileSync(f);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
    let wholeMsg = '';
    try { forEachChange(fs.readFileSync(cut), cut, 0, 65536, () => {}); } catch (e) { wholeMsg = (e as Error).message; }
    assert.match(wholeMsg, /truncated record at byte \d+/);
    assert.throws(() => scanFile(cut, (buf, start, format, base, more) => forEachChangeIn(buf, cut, 0, 65536, () => {}, start, Infinity, true, format, base, more), 64),
      (e: Error) => e instanceof CorruptChangeFile && e.message === wholeMsg);
  });

  test('batches: the visit runs inside batch(), in bounded steps', () => {
    const f = file();
    write(f, Array.from({ length: 25 }, (_, i) => ev(1, 1, 'k', i, `i${i}`, { expireAt: 1000 })));
    let batches = 0, inBatch = false, visited = 0;
    foldChain([{ path: f, keyGroups: all }], () => {}, 0, 65536, [false, false], 0, () => { assert.ok(inBatch); visited++; },
      (work) => { batches++; inBatch = true; try { work(); } finally { inBatch = false; } }, 10);
    assert.equal(visited, 25);
    assert.equal(batches, 3);
  });
});

describe('compact (side pool task)', () => {
  test('a base holds the live events with their joined bits, byte-exact; its checksum is the file\'s CRC-32; the chain reads back the same', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'compact-'));
    const f1 = path.join(dir, 'a.delta'), f2 = path.join(dir, 'b.delta');
    write(f1, [ev(0, 1, 'k', 10, 'a', { hash: 0xfeedbeef, expireAt: 500 }), ev(0, 2, 'k2', 11, 'b', { payload: 'x'.repeat(3000) }), ev(1, 3, 'k3', 12, 'r', { expireAt: 50 }), ev(1, 5000, 'far', 12, 'f', { expireAt: 1000 })]);
    write(f2, [mark(0, 2, 'k2', 11, 'b'), gone(0, 1, 'k', 10, 'a'), ev(1, 3, 'k3', 13, 's', { joined: true, expireAt: 900 })]);
    const chain: ChainFile[] = [{ path: f1, keyGroups: [0, 8192] }, { path: f2, keyGroups: [0, 8192] }];
    const out = compact({ files: chain, ranges: [[0, 4096], [4096, 8192]], outer: [true, false], dropBeforeMs: 100, outPaths: [path.join(dir, 'c1-kg0-4096.base'), path.join(dir, 'c1-kg4096-8192.base')] });
    assert.equal(out.length, 2);
    for (const o of out) {
      const bytes = fs.readFileSync(o.path);
      assert.equal(o.bytes, bytes.length);
      assert.equal(o.checksum, `crc32:${zlib.crc32(bytes).toString(16).padStart(8, '0')}`, 'the recorded checksum is that of the bytes in the file');
      assert.equal(checkHeader(bytes, o.path), 'base');
    }
    const [low, high] = out.map((o) => fold([{ path: o.path, keyGroups: o.keyGroups }], 0, 65536, [true, false]));
    assert.deepEqual(low, fold(chain, 0, 4096, [true, false], 100), 'the base folds to what the chain folds to');
    assert.deepEqual(low.map((r) => [r.id, r.joined, r.hash, r.payload.length, r.expireAt]), [['b', true, 7, 3000, 11], ['s', true, 7, `{"id":"s"}`.length, 900]]);
    assert.deepEqual(high.map((r) => r.id), ['f']);
    // Bases carry their events' expiry bound, as deltas do (file-expiry.ts): the low one holds k2/b (11) and k3/s (900).
    assert.deepEqual(out.map((o) => o.expireAtMaxMs), [[11, 900], [null, 1000]]);
  });
});

describe('expireAtMaxMs (whole files dropped once expired)', () => {
  test('the latest expireAt per side; null for a side without events; undefined once a MARK or EXPIRED record is in', () => {
    assert.deepEqual(write(file(), [ev(0, 1, 'k', 10, 'a', { expireAt: 500 }), ev(0, 1, 'k', 9, 'b', { expireAt: 90 }), ev(1, 1, 'k', 11, 'c', { expireAt: 70 })]).expireAtMaxMs(), [500, 70]);
    assert.deepEqual(write(file(), [ev(1, 1, 'k', 10, 'a', { expireAt: 5 })]).expireAtMaxMs(), [null, 5]);
    assert.deepEqual(write(file(), []).expireAtMaxMs(), [null, null]);
    assert.equal(write(file(), [ev(0, 1, 'k', 10, 'a', { expireAt: 500 }), mark(0, 1, 'k', 10, 'a')]).expireAtMaxMs(), undefined);
    assert.equal(write(file(), [gone(1, 1, 'k', 10, 'a'), ev(0, 1, 'k', 10, 'b', { expireAt: 500 })]).expireAtMaxMs(), undefined);
    // Bounds that cannot be written in a manifest (JSON) are no bound: the file is kept.
    assert.equal(write(file(), [ev(0, 1, 'k', 10, 'a', { expireAt: Infinity })]).expireAtMaxMs(), undefined);
    assert.equal(write(file(), [ev(1, 1, 'k', 10, 'a', { expireAt: NaN })]).expireAtMaxMs(), undefined);
  });

  test('copied records count as written ones (compaction output)', () => {
    const src = file();
    write(src, [ev(0, 1, 'k', 10, 'a', { expireAt: 400 }), ev(1, 1, 'k', 11, 'b', { expireAt: 300 })]);
    const w = new ChangeWriter(file(), 'base');
    forEachChange(fs.readFileSync(src), src, 0, 65536, (r) => w.copy(r), undefined, undefined, false);
    assert.equal(w.close(), true);
    assert.deepEqual(w.expireAtMaxMs(), [400, 300]);
  });
});
