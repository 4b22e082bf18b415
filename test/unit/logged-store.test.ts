// LoggedStore (src/checkpoint/logged-store.ts) over the memory store: which calls are logged.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeType, forEachChange, type ChangeRecord } from '../../src/checkpoint/delta.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import { LoggedStore } from '../../src/checkpoint/logged-store.js';
import { BucketStore } from '../../src/state/bucket-store.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import type { Buffered, Side } from '../../src/state/store.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-logged-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const b = (s: string) => Buffer.from(s);
const T = ['', 'EVENT', 'MARK', 'EXPIRED'];

/** Closes the store's current change file, starts a new one, and visits the closed one's records. */
function takeRecords(store: LoggedStore, visit: (r: ChangeRecord) => void): void {
  const w = store.writer;
  assert.equal(w.close(), true);
  store.writer = new ChangeWriter(path.join(tmp, `l${++seq}.delta`));
  forEachChange(fs.readFileSync(w.path), w.path, 0, 65536, visit);
}

function setup(outer: [boolean, boolean]) {
  const inner = new MemoryStore();
  const store = new LoggedStore(inner, outer, new ChangeWriter(path.join(tmp, `l${++seq}.delta`)));
  /** The records logged so far (closes the current file and starts a new one). */
  const logged = (): string[] => {
    const out: string[] = [];
    takeRecords(store, (r) => {
      out.push(`${T[r.type]} ${r.side} kg${r.keyGroup} ${Buffer.from(r.key)} ${r.ts} ${Buffer.from(r.id)}` +
        (r.type === ChangeType.Event ? ` joined=${r.joined} exp=${r.expireAtMs} ${Buffer.from(r.payload)}` : ''));
    });
    return out;
  };
  const ins = (side: Side, ts: number, id: string, expireAt = ts + 10, joined = false) =>
    store.batch(() => store.insert(side, 3, 99, b('k'), ts, b(id), b(`p-${id}`), joined, expireAt));
  return { store, inner, logged, ins };
}

test('every insert is logged (both sides); a duplicate insert is not', () => {
  const { logged, ins } = setup([true, false]);
  assert.equal(ins(0, 1, 'l1'), true);
  assert.equal(ins(1, 2, 'r1', 12, true), true);
  assert.equal(ins(0, 1, 'l1'), false);
  assert.deepEqual(logged(), ['EVENT 0 kg3 k 1 l1 joined=false exp=11 p-l1', 'EVENT 1 kg3 k 2 r1 joined=true exp=12 p-r1']);
});

test('probe: a visit returning true marks an outer event once; inner sides, false visits and joined events are not logged', () => {
  const { store, logged, ins } = setup([true, false]);
  ins(0, 1, 'l1'); ins(0, 2, 'l2'); ins(1, 1, 'r1');
  logged();
  const probe = (side: Side, visit: (e: Buffered) => boolean | void) => store.batch(() => store.probe(side, 3, 99, b('k'), 0, 100, visit));
  probe(0, (e) => Buffer.from(e.id).toString() === 'l1');      // marks l1 only
  probe(0, () => true);                                        // l1 already joined: only l2
  probe(0, () => undefined);
  probe(1, () => true);                                        // inner side: never logged
  assert.deepEqual(logged(), ['MARK 0 kg3 k 1 l1', 'MARK 0 kg3 k 2 l2']);
  // The store itself saw the marks.
  const joined: string[] = [];
  probe(0, (e) => { joined.push(`${Buffer.from(e.id)}=${e.joined}`); });
  assert.deepEqual(joined, ['l1=true', 'l2=true']);
});

test('markJoined is logged on outer sides only', () => {
  const { store, logged, ins } = setup([false, true]);
  ins(0, 1, 'l1'); ins(1, 1, 'r1');
  logged();
  store.batch(() => { store.markJoined(0, 3, 99, b('k'), 1, b('l1')); store.markJoined(1, 3, 99, b('k'), 1, b('r1')); });
  assert.deepEqual(logged(), ['MARK 1 kg3 k 1 r1']);
});

test('expire: outer events are logged as EXPIRED, inner ones not; the callback sees every one either way', () => {
  for (const outer of [[true, false], [false, false], [true, true]] as Array<[boolean, boolean]>) {
    const { store, logged, ins } = setup(outer);
    ins(0, 1, 'l1', 5); ins(1, 1, 'r1', 5); ins(0, 2, 'l2', 50); ins(1, 2, 'r2', 50);
    logged();
    const seen: string[] = [];
    const n = store.batch(() => store.expire(10, (e) => seen.push(`${e.side}:${Buffer.from(e.id)}:${Buffer.from(e.payload)}`)));
    assert.equal(n, 2);
    assert.deepEqual(seen.sort(), ['0:l1:p-l1', '1:r1:p-r1'], JSON.stringify(outer));
    const want = [outer[0] ? 'EXPIRED 0 kg3 k 1 l1' : null, outer[1] ? 'EXPIRED 1 kg3 k 1 r1' : null].filter((x) => x !== null);
    assert.deepEqual(logged().sort(), want, JSON.stringify(outer));
    // Without a callback too.
    assert.equal(store.batch(() => store.expire(100)), 2);
    assert.equal(logged().length, (outer[0] ? 1 : 0) + (outer[1] ? 1 : 0));
    assert.equal(store.count(), 0);
  }
});

test('pass-through: count, bytes and expiry granularity are the inner store\'s', () => {
  const { store, inner, ins } = setup([true, true]);
  ins(0, 1, 'l1');
  assert.equal(store.count(), inner.count());
  assert.equal(store.bytes(), inner.bytes());
  assert.equal(store.expiryGranularityMs, inner.expiryGranularityMs);
});

/** A ring-like frame: some header bytes, then key, id and payload back to back. */
function frame(key: Buffer, id: Buffer, payload: Buffer, at = 7): DataView {
  const ab = new ArrayBuffer(at + key.length + id.length + payload.length + 5);
  const u8 = new Uint8Array(ab);
  u8.fill(0xee);
  u8.set(key, at); u8.set(id, at + key.length); u8.set(payload, at + key.length + id.length);
  return new DataView(ab);
}

test('eventFrom (key, id and payload copied from one contiguous frame) writes exactly the bytes event writes', () => {
  const cases: Array<[number, number, number]> = [[1, 1, 0], [3, 5, 7], [24, 16, 70], [8, 8, 144], [24, 16, 121], [12, 36, 300], [0, 0, 0]];
  for (const format of [2, 1] as const) {
    const a = new ChangeWriter(path.join(tmp, `ev${++seq}.delta`), 'delta', { format });
    const c = new ChangeWriter(path.join(tmp, `ev${++seq}.delta`), 'delta', { format });
    for (const [i, [kl, il, pl]] of cases.entries()) {
      const key = Buffer.alloc(kl, 0x41 + i), id = Buffer.alloc(il, 0x61 + i), payload = Buffer.from(Array.from({ length: pl }, (_, j) => (j * 7 + i) & 0xff));
      const ts = 1_700_000_000_000 + i, exp = ts + 600_000;
      a.event((i & 1) as Side, i, 0x9e3779b9 + i, key, ts, id, payload, i === 2, exp, i);
      c.eventFrom((i & 1) as Side, i, 0x9e3779b9 + i, key, ts, id, payload, i === 2, exp, i, frame(key, id, payload), 7);
    }
    assert.equal(a.close(), true);
    assert.equal(c.close(), true);
    assert.deepEqual(fs.readFileSync(c.path), fs.readFileSync(a.path), `format ${format}`);
  }
});

test('insert logs from the frame set by the worker when its lengths match the views, else from the views', () => {
  const { store, logged } = setup([false, false]);
  const key = b('key-1'), id = b('id-01'), payload = b('payload-of-event-1');
  store.raw = frame(key, id, payload, 3);
  store.rawAt = 3;
  store.rawBytes = key.length + id.length + payload.length;
  store.batch(() => store.insert(0, 3, 99, key, 5, id, payload, false, 15));
  // A frame whose lengths differ from the event given to insert: the views are what is logged.
  store.raw = frame(b('zz'), b('zz'), b('zz'), 3);
  store.rawBytes = 6;
  store.batch(() => store.insert(1, 3, 99, b('key-2'), 6, b('id-02'), b('p2'), false, 16));
  store.rawAt = -1;
  store.batch(() => store.insert(1, 3, 99, b('key-3'), 7, b('id-03'), b('p3'), false, 17));
  assert.deepEqual(logged(), ['EVENT 0 kg3 key-1 5 id-01 joined=false exp=15 payload-of-event-1',
    'EVENT 1 kg3 key-2 6 id-02 joined=false exp=16 p2', 'EVENT 1 kg3 key-3 7 id-03 joined=false exp=17 p3']);
});

// ---- deferred EVENT records (LoggedStore.startDeferring over the bucket store) ----

function deferredSetup(outer: [boolean, boolean], options: { memoryBytes: number }) {
  const inner = BucketStore.open(path.join(tmp, `b${++seq}`), { bucketMs: 1000, ...options });
  const store = new LoggedStore(inner, outer, new ChangeWriter(path.join(tmp, `l${++seq}.delta`)));
  const records = (): ChangeRecordCopy[] => {
    const out: ChangeRecordCopy[] = [];
    takeRecords(store, (r) => {
      out.push({ type: r.type, side: r.side, keyGroup: r.keyGroup, keyHash: r.keyHash, key: Buffer.from(r.key).toString(), ts: r.ts,
        id: Buffer.from(r.id).toString(), payload: Buffer.from(r.payload).toString(), joined: r.joined, expireAtMs: r.expireAtMs, sourcePartition: r.sourcePartition });
    });
    return out;
  };
  const ins = (side: Side, ts: number, id: string, expireAt: number, partition = 0, key = 'k') => {
    store.sourcePartition = partition;
    return store.batch(() => store.insert(side, 3, 99, b(key), ts, b(id), b(`p-${id}`), false, expireAt));
  };
  return { store, inner, records, ins };
}
interface ChangeRecordCopy {
  type: number; side: number; keyGroup: number; keyHash: number; key: string; ts: number; id: string; payload: string;
  joined: boolean; expireAtMs: number; sourcePartition: number;
}
const brief = (rs: ChangeRecordCopy[]) => rs.map((r) => `${T[r.type]} ${r.side} ${r.id} exp=${r.expireAtMs} p=${r.sourcePartition}`);

test('deferred: inner events are written at the flush, only those still live, with their partition; outer ones at once', async () => {
  const { store, inner, records, ins } = deferredSetup([true, false], { memoryBytes: 1 << 30 });
  assert.equal(store.startDeferring(), true);
  assert.equal(ins(0, 1000, 'l1', 100_000, 2), true);
  assert.equal(ins(1, 1000, 'r1', 1500, 3), true);
  assert.equal(ins(1, 5000, 'r2', 5500, 4), true);
  assert.equal(ins(1, 5000, 'r3', 5600), true);
  assert.equal(ins(1, 5000, 'r3', 5600), false); // a duplicate is noted once
  assert.equal(store.pendingRecords(), 3);
  assert.deepEqual(brief(records()), ['EVENT 0 l1 exp=100000 p=2'], 'nothing of the inner side before the flush');
  store.batch(() => store.expire(2500)); // r1's bucket expires before the barrier: never written
  assert.equal(store.flushPending(0, 0), 2);
  assert.equal(store.pendingRecords(), 0);
  const rs = records();
  // expireAt is the bucket's latest: r2 and r3 share one (expireAt − ts below one bucket).
  assert.deepEqual(brief(rs), ['EVENT 1 r2 exp=5600 p=4', 'EVENT 1 r3 exp=5600 p=0']);
  assert.deepEqual({ ...rs[0], expireAtMs: 0 }, { type: ChangeType.Event, side: 1, keyGroup: 3, keyHash: 99, key: 'k', ts: 5000, id: 'r2', payload: 'p-r2', joined: false, expireAtMs: 0, sourcePartition: 4 });
  assert.equal(store.flushPending(0, 0), 0, 'a second flush writes nothing');
  // Later inserts are noted again.
  ins(1, 6000, 'r4', 6500);
  assert.deepEqual(brief((store.flushPending(0, 0), records())), ['EVENT 1 r4 exp=6500 p=0']);
  await inner.close();
});

test('deferred: a slice sealed into LMDB writes its noted entries first; an unsealed one notes only new entries', async () => {
  const { store, inner, records, ins } = deferredSetup([false, false], { memoryBytes: 0 });
  store.startDeferring();
  ins(0, 1000, 'a', 90_000);
  ins(1, 1200, 'b', 90_000);
  ins(0, 5000, 'c', 90_000);
  store.batch(() => store.expire(3000)); // slice [1000, 2000) is complete
  inner.flushSeals();
  assert.equal(inner.stats().sealedEntries, 2);
  assert.deepEqual(brief(records()), ['EVENT 0 a exp=90000 p=0', 'EVENT 1 b exp=90000 p=0'], 'written when sealed, before any flush');
  // A late event reaches the sealed slice (unsealed back into memory): only it is new.
  ins(0, 1500, 'late', 90_000);
  assert.equal(inner.stats().sealedEntries, 0);
  assert.equal(store.flushPending(0, 0), 2);
  assert.deepEqual(brief(records()), ['EVENT 0 late exp=90000 p=0', 'EVENT 0 c exp=90000 p=0']);
  await inner.close();
});

for (const memoryBytes of [0, 1 << 30]) {
  test(`deferred: the files restore exactly the live entries at the last flush (memory budget ${memoryBytes})`, async () => {
    const { store, inner, records, ins } = deferredSetup([false, false], { memoryBytes });
    store.startDeferring();
    let seed = 7;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const files: ChangeRecordCopy[] = [];
    let wm = 0;
    const expireOf = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const ts = 1000 + i * 10 + rnd(2000), exp = ts + 500 + rnd(3000);
      expireOf.set(`e${i}`, exp);
      ins((rnd(2) as Side), ts, `e${i}`, exp, rnd(3), `k${rnd(40)}`);
      if (i % 97 === 0) { wm = Math.max(wm, ts - 2500); store.batch(() => store.expire(wm)); }
      // Some written ahead (long-lived ones), in small steps: the barrier writes the rest.
      if (i % 13 === 0) (inner as unknown as { b: { pending: { writeAhead(n: number, m: number): number } } }).b.pending.writeAhead(rnd(40), wm + rnd(4000));
      if (i % 500 === 499) { store.flushPending(0, 0); files.push(...records()); }
    }
    store.flushPending(0, 0);
    files.push(...records());
    // What a restore at this barrier holds: every record not expired at the watermark.
    const restored = new MemoryStore();
    restored.batch(() => { for (const r of files) restored.insert(r.side as Side, r.keyGroup, r.keyHash, b(r.key), r.ts, b(r.id), b(r.payload), r.joined, r.expireAtMs); });
    restored.batch(() => restored.expire(wm));
    const live = (s: { batch<T>(f: () => T): T; probe: LoggedStore['probe'] }) => {
      const out: string[] = [];
      for (let k = 0; k < 40; k++) for (const side of [0, 1] as Side[]) {
        s.batch(() => s.probe(side, 3, 99, b(`k${k}`), -Infinity, Infinity, (e) => { out.push(`${side} k${k} ${e.ts} ${Buffer.from(e.id)} ${Buffer.from(e.payload)}`); }));
      }
      return out.sort();
    };
    const want = live(store);
    assert.ok(want.length > 100 && want.length < 4000, `${want.length} live entries`);
    // The restore holds every entry the store holds whose own expireAt is at or after the
    // watermark, and nothing the store does not hold. (The store may keep an entry past its
    // expireAt until its bucket's latest: the records carry the bucket's latest as it was when
    // written, so a restore may let such an entry go sooner. It joins nothing more either way.)
    const got = live(restored);
    const gotSet = new Set(got), wantSet = new Set(want);
    const needed = want.filter((x) => expireOf.get(x.split(' ')[3])! >= wm);
    assert.ok(needed.length > 100, `${needed.length} needed`);
    assert.deepEqual({ extra: got.filter((x) => !wantSet.has(x)), missing: needed.filter((x) => !gotSet.has(x)) }, { extra: [], missing: [] });
    // Every record written was live when written: fewer than the events inserted.
    assert.ok(files.length < 4000, `${files.length} records`);
    await inner.close();
  });
}

test('deferred: paceDeferred writes ahead what will outlive the next barrier at the watermark\'s pace, and keeps the rest for it', async () => {
  const { store, inner, records, ins } = deferredSetup([false, false], { memoryBytes: 1 << 30 });
  store.startDeferring();
  ins(1, 5000, 'early', 5500);
  store.paceDeferred(-Infinity, 0, 100); // no watermark yet: nothing can expire, nothing waits
  assert.deepEqual(brief(records()), ['EVENT 1 early exp=5500 p=0']);
  store.paceDeferred(10_000, 0, 100); // the interval starts: watermark 10 s at time 0
  ins(0, 10_000, 'short', 12_000);     // expires 2 s of event time later
  ins(0, 10_000, 'long', 60_000);      // 50 s later
  ins(0, 10_000, 'dies', 10_500);
  store.batch(() => store.expire(11_000)); // 'dies' expired before anything was written
  // 1 s later the watermark is at 11 s: 1 ms per ms; 9 s to the barrier, × 0.8: 18.2 s.
  store.paceDeferred(11_000, 1000, 100);
  assert.deepEqual(brief(records()), ['EVENT 0 long exp=60000 p=0'], 'only the long-lived one is written ahead');
  assert.equal(store.pendingRecords(), 1);
  store.paceDeferred(11_000, 1100, 100); // looked at already: nothing more
  assert.deepEqual(records(), []);
  assert.equal(store.flushPending(11_500, 2000), 1);
  assert.deepEqual(brief(records()), ['EVENT 0 short exp=12000 p=0'], 'the barrier writes what was kept');
  // A replay's pace (event time 1000× the clock): nothing is written ahead, all waits for the barrier.
  ins(1, 20_000, 'r', 80_000);
  store.paceDeferred(1_011_500, 3000, 100);
  assert.deepEqual(records(), []);
  store.batch(() => store.expire(1_011_500));
  assert.equal(store.flushPending(1_011_500, 4000), 0, 'r expired with its bucket');
  // The watermark slows down: an entry kept (it would have expired at the pace measured) survives,
  // and the barrier writes it. 10 ms of event time per ms: 9 s before the barrier, 72 s ahead.
  ins(1, 1_020_000, 'kept', 1_090_000);
  store.paceDeferred(1_021_500, 5000, 100);
  assert.deepEqual(records(), [], 'expected to expire before the barrier: kept');
  assert.equal(store.flushPending(1_030_000, 14_000), 1, 'the watermark advanced 8.5 s instead of 90: it survived');
  assert.deepEqual(brief(records()), ['EVENT 1 kept exp=1090000 p=0']);
  // Near the barrier the horizon shrinks. At 10 ms per ms, an entry expiring 20 s of event time
  // ahead is kept 9 s before the barrier (72 s ahead) and written 0.4 s before it (3.2 s ahead).
  ins(1, 1_040_000, 'far', 1_060_000);
  store.paceDeferred(1_040_000, 15_000, 100);
  assert.deepEqual(records(), [], 'far from the barrier: kept');
  ins(1, 1_126_000, 'near', 1_146_000);
  store.paceDeferred(1_126_000, 23_600, 100);
  assert.deepEqual(brief(records()), ['EVENT 1 near exp=1146000 p=0'], 'near it: written ahead');
  store.batch(() => store.expire(1_130_000));
  assert.equal(store.flushPending(1_130_000, 24_000), 0, "'far' expired before the barrier, as predicted");
  await inner.close();
});
