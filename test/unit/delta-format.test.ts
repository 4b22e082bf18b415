// Change-file record versions (src/checkpoint/delta.ts): version 2 (written now, compact headers)
// must give back every value exactly, including those its short encodings do not cover; version 1
// files (written before) must still be read, folded and compacted — into version 2.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHANGE_FORMAT, ChangeType, CorruptChangeFile, FILE_HEADER_BYTES, forEachChange, type ChangeFormat, type ChangeRecord } from '../../src/checkpoint/delta.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import { foldChain, type ChainFile } from '../../src/checkpoint/fold.js';
import { compact } from '../../src/checkpoint/tasks.js';
import type { Side } from '../../src/state/store.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-delta-format-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const file = (ext = 'delta') => path.join(tmp, `f${++seq}.${ext}`);
const b = (s: string) => Buffer.from(s, 'latin1');

interface Ev { side: Side; kg: number; hash: number; key: string; ts: number; id: string; payload: string; joined: boolean; expireAt: number; partition: number }
const ev = (o: Partial<Ev>): Ev => ({ side: 0, kg: 1, hash: 7, key: 'k', ts: 1_700_000_000_000, id: 'i', payload: 'p', joined: false, expireAt: 1_700_000_600_000, partition: 0, ...o });

function writeEvents(p: string, evs: Ev[], format: ChangeFormat, kind: 'delta' | 'base' = 'delta'): ChangeWriter {
  const w = new ChangeWriter(p, kind, { format });
  for (const e of evs) w.event(e.side, e.kg, e.hash, b(e.key), e.ts, b(e.id), b(e.payload), e.joined, e.expireAt, e.partition);
  assert.equal(w.close(), true, String(w.lastError));
  return w;
}

const snap = (r: ChangeRecord) => ({
  type: r.type, side: r.side, kg: r.keyGroup, hash: r.keyHash, key: Buffer.from(r.key).toString('latin1'), ts: r.ts, id: Buffer.from(r.id).toString('latin1'),
  payload: Buffer.from(r.payload).toString('latin1'), joined: r.joined, expireAt: r.expireAtMs, partition: r.sourcePartition,
});
const asRead = (e: Ev) => ({ type: ChangeType.Event, side: e.side, kg: e.kg, hash: e.hash, key: e.key, ts: e.ts, id: e.id, payload: e.payload, joined: e.joined, expireAt: e.expireAt, partition: e.partition });

function readAll(p: string) {
  const out: ReturnType<typeof snap>[] = [];
  const buf = fs.readFileSync(p);
  assert.equal(forEachChange(buf, p, 0, 65536, (r) => out.push(snap(r))), buf.length);
  return out;
}

describe('version-2 change records', () => {
  test('a typical event (ms timestamp, expiry a window after it, short key and id) has a 20-byte header, half of version 1\'s', () => {
    const e = ev({ key: 'k'.repeat(8), id: 'i'.repeat(9), payload: 'p'.repeat(84) });
    const v2 = writeEvents(file(), [e], 2), v1 = writeEvents(file(), [e], 1);
    assert.equal(CHANGE_FORMAT, 2);
    assert.equal(v2.bytes - FILE_HEADER_BYTES, 20 + 8 + 9 + 84);
    assert.equal(v1.bytes - FILE_HEADER_BYTES, 40 + 8 + 9 + 84);
  });

  test('every value comes back exactly, also those outside the short encodings', () => {
    const big = 'x'.repeat(70_000); // lengths of three varint bytes
    const evs: Ev[] = [
      ev({}),
      ev({ side: 1, joined: true, kg: 65535, hash: 0xffffffff, partition: 65535 }),
      ev({ ts: 0, expireAt: 0 }),
      ev({ ts: -0, expireAt: 5 }),            // -0 keeps its sign (an f64)
      ev({ ts: 1000.25, expireAt: 91000.25 }), // fractional ts: f64; an integer difference is still a varint
      ev({ ts: 10, expireAt: 10.5 }),          // fractional difference: expireAt as an f64
      ev({ ts: -5, expireAt: -5 }),
      ev({ ts: 2 ** 48 - 1, expireAt: 2 ** 48 - 1 + 2 ** 31 - 1 }),
      ev({ ts: 2 ** 48, expireAt: 2 ** 48 + 2 ** 31 }), // beyond u48 and beyond the delta's range
      ev({ ts: 100, expireAt: 99 }),           // expiry before ts
      ev({ ts: 100, expireAt: Infinity }),
      ev({ ts: Number.MAX_SAFE_INTEGER, expireAt: Number.MAX_SAFE_INTEGER }),
      ev({ key: 'K'.repeat(200), id: 'I'.repeat(128), payload: big }),
      ev({ key: '', id: '', payload: '' }),
    ];
    const p = file();
    writeEvents(p, evs, 2);
    const got = readAll(p);
    assert.deepEqual(got, evs.map(asRead));
    assert.ok(Object.is(got[3].ts, -0), '-0 stays -0');
  });

  test('MARK and EXPIRED records carry no payload or expiry; they round-trip', () => {
    const p = file();
    const w = new ChangeWriter(p);
    w.mark(1, 300, 0xabcdef01, b('key'), 1234, b('id'));
    w.expired(0, 2, 0, b('k2'), 5.5, b('id2'));
    assert.equal(w.close(), true);
    assert.deepEqual(readAll(p).map((r) => [r.type, r.side, r.kg, r.hash, r.key, r.ts, r.id, r.payload, r.joined, r.expireAt]), [
      [ChangeType.Mark, 1, 300, 0xabcdef01, 'key', 1234, 'id', '', true, 0],
      [ChangeType.Expired, 0, 2, 0, 'k2', 5.5, 'id2', '', false, 0],
    ]);
  });

  test('corrupt headers are rejected: reserved flag bits, an unknown file version, a cut inside the header fields', () => {
    const p = file();
    writeEvents(p, [ev({ ts: 1.5, expireAt: 2.5, partition: 3 })], 2);
    const good = fs.readFileSync(p);
    const flags = Buffer.from(good); flags[FILE_HEADER_BYTES + 1] |= 0x80;
    const version = Buffer.from(good); version[7] = 9;
    const cases: Array<[string, Buffer, RegExp]> = [
      ['reserved flag bit', flags, /bad record flags \d+ at byte 16/],
      ['unknown version', version, /change-file format 9, this joinery reads 1, 2/],
    ];
    for (let cut = FILE_HEADER_BYTES + 1; cut < good.length; cut++) cases.push([`cut at ${cut}`, good.subarray(0, cut), /truncated record at byte 16/]);
    for (const [what, buf, re] of cases) {
      assert.throws(() => forEachChange(buf, 'x.delta', 0, 65536, () => {}), (e: Error) => e instanceof CorruptChangeFile && re.test(e.message), what);
    }
  });
});

describe('version-1 files (written before version 2)', () => {
  const evs = [
    ev({ key: 'a', id: '1', ts: 10, expireAt: 500, partition: 2 }),
    ev({ key: 'b', id: '2', ts: 11.5, expireAt: 50, side: 1 }),
    ev({ key: 'c', id: '3', ts: 12, expireAt: 900, joined: true, kg: 5000 }),
  ];

  test('read back the same records as version 2', () => {
    const p1 = file(), p2 = file();
    writeEvents(p1, evs, 1);
    writeEvents(p2, evs, 2);
    assert.deepEqual(readAll(p1), evs.map(asRead));
    assert.deepEqual(readAll(p1), readAll(p2));
  });

  test('a chain mixing versions folds as one, and compacts into version-2 bases that fold to the same', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'mixed-'));
    const old = path.join(dir, 'old.delta'), cur = path.join(dir, 'cur.delta');
    writeEvents(old, evs, 1);
    const w = new ChangeWriter(cur);
    w.mark(0, 1, 7, b('a'), 10, b('1'));
    w.event(0, 2, 9, b('d'), 13, b('4'), b('new'), false, 800, 0);
    w.expired(1, 1, 0, b('b'), 11.5, b('2'));
    assert.equal(w.close(), true);
    const chain: ChainFile[] = [{ path: old, keyGroups: [0, 8192] }, { path: cur, keyGroups: [0, 8192] }];
    const fold = (files: ChainFile[], from: number, to: number) => {
      const out: ReturnType<typeof snap>[] = [];
      foldChain(files, (q) => fs.readFileSync(q), from, to, [true, true], 100, (r) => out.push(snap(r)));
      return out;
    };
    assert.deepEqual(fold(chain, 0, 4096).map((r) => [r.id, r.joined, r.partition]), [['1', true, 2], ['4', false, 0]]);
    const out = compact({ files: chain, ranges: [[0, 4096], [4096, 8192]], outer: [true, true], dropBeforeMs: 100, outPaths: [path.join(dir, 'kg0.base'), path.join(dir, 'kg4096.base')] });
    for (const o of out) assert.equal(fs.readFileSync(o.path)[7], 2, 'the base is written in version 2');
    assert.deepEqual(fold([{ path: out[0].path, keyGroups: out[0].keyGroups }], 0, 4096), fold(chain, 0, 4096));
    assert.deepEqual(fold([{ path: out[1].path, keyGroups: out[1].keyGroups }], 4096, 8192), fold(chain, 4096, 8192));
    assert.deepEqual(fold([{ path: out[1].path, keyGroups: out[1].keyGroups }], 4096, 8192).map((r) => r.id), ['3']);
  });
});
