import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as flatbuffers from 'flatbuffers';
import { FlatExtractor, flatFields, flatToJson, type ImpressionEvent, type PlayEvent } from '../../src/codec/flat.js';
import { decodeJoined, encodeImpression, encodeJoined, encodePlay, joinedToJson } from '../../src/codec/flat-build.js';
import { FLAT_FRAME_PREFIX_BYTES, FlatBatchWriter, frameFlat, splitFrames } from '../../src/codec/flat-writer.js';
import { Impression, Play } from '../../src/codec/fb/joinery.js';
import { JsonExtractor } from '../../src/codec/json.js';
import { Generator, genOptions, impressionJson, playJson } from '../../src/source/generator.js';

const IMP: ImpressionEvent = { eventId: 'i-42', profileId: 123, titleId: 456, ts: 1767225600123, row: 3, position: 7, device: 'tv' };
const PLAY: PlayEvent = { eventId: 'p-9', profileId: 123, titleId: 456, ts: 1767225660000.5, durationMs: 1_234_567, device: 'mobile' };

/** Deterministic PRNG for the fuzz tests (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function extractOrThrow(x: FlatExtractor, b: Uint8Array, s = 0, e = b.length): void {
  assert.ok(x.extract(b, s, e), `extract failed: ${x.error}`);
}

test('flatFields lists the schema fields in order', () => {
  assert.deepEqual(flatFields('Impression'), ['eventId', 'profileId', 'titleId', 'ts', 'row', 'position', 'device']);
  assert.deepEqual(flatFields('Play'), ['eventId', 'profileId', 'titleId', 'ts', 'durationMs', 'device']);
});

test('Builder encode → extract: canonical key, time and id texts', () => {
  const x = new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId');
  extractOrThrow(x, encodeImpression(IMP));
  assert.equal(x.keyText, '[123,456]');
  assert.equal(x.ts, IMP.ts);
  assert.equal(x.idText, '"i-42"');
  assert.equal(x.error, '');

  const p = new FlatExtractor('Play', ['titleId', 'device', 'profileId'], 'ts', 'durationMs');
  extractOrThrow(p, encodePlay(PLAY));
  assert.equal(p.keyText, '[456,"mobile",123]');
  assert.equal(p.ts, 1767225660000.5);
  assert.equal(p.idText, '1234567');
});

test('the texts equal the NDJSON extractor\'s for the same event', () => {
  const fx = new FlatExtractor('Play', ['profileId', 'device'], 'ts', 'eventId');
  const jx = new JsonExtractor(['profileId', 'device'], 'ts', 'eventId');
  const odd: PlayEvent[] = [
    PLAY,
    { ...PLAY, eventId: 'quote " backslash \\ tab \t', device: 'é ünïcødé 🎬' },
    { ...PLAY, eventId: 'x'.repeat(13), device: 'y'.repeat(40) },
    { ...PLAY, eventId: 'z'.repeat(100), device: '', profileId: 0, ts: 0 },
    { ...PLAY, eventId: '\u0001\u007f', device: 'a</script>' },
  ];
  for (const e of odd) {
    extractOrThrow(fx, encodePlay(e));
    const j = Buffer.from(playJson(e));
    assert.ok(jx.extract(j, 0, j.length), jx.error);
    assert.equal(fx.keyText, jx.keyText);
    assert.equal(fx.idText, jx.idText);
    assert.equal(fx.ts, jx.ts);
    assert.equal(flatToJson('Play', encodePlay(e)), playJson(e));
  }
});

test('generated accessors read the Builder and the batch-writer records alike', () => {
  const w = new FlatBatchWriter();
  const id = new TextEncoder().encode(IMP.eventId);
  w.appendImpression(id, id.length, IMP.profileId, IMP.titleId, IMP.ts, IMP.row, IMP.position, new TextEncoder().encode(IMP.device));
  const pid = new TextEncoder().encode(PLAY.eventId);
  w.appendPlay(pid, pid.length, PLAY.profileId, PLAY.titleId, PLAY.ts, PLAY.durationMs, new TextEncoder().encode(PLAY.device));
  assert.equal(w.count, 2);
  assert.equal(w.offsets[0], 0);
  assert.equal(w.offsets[2], w.length);
  for (const bytes of [encodeImpression(IMP), w.data.slice(w.offsets[0], w.offsets[1])]) {
    const r = Impression.getRootAsImpression(new flatbuffers.ByteBuffer(bytes));
    assert.deepEqual(
      { eventId: r.eventId(), profileId: r.profileId(), titleId: r.titleId(), ts: r.ts(), row: r.row(), position: r.position(), device: r.device() },
      IMP);
    assert.equal(flatToJson('Impression', bytes), impressionJson(IMP));
  }
  for (const bytes of [encodePlay(PLAY), w.data.slice(w.offsets[1], w.offsets[2])]) {
    const r = Play.getRootAsPlay(new flatbuffers.ByteBuffer(bytes));
    assert.deepEqual(
      { eventId: r.eventId(), profileId: r.profileId(), titleId: r.titleId(), ts: r.ts(), durationMs: r.durationMs(), device: r.device() },
      PLAY);
    assert.equal(flatToJson('Play', bytes), playJson(PLAY));
  }
});

test('size-prefixed batch writer output splits into the same records', () => {
  const plain = new FlatBatchWriter(false, 64, 1);
  const framed = new FlatBatchWriter(true, 64, 1);
  const g = new Generator(genOptions({ events: 500 }));
  const g2 = new Generator(genOptions({ events: 500 }));
  while (g.nextFlat(0, 100, plain) > 0) { /* grows from tiny initial sizes */ }
  while (g2.nextFlat(0, 100, framed) > 0) { /* same */ }
  const frames = splitFrames(framed.data.subarray(0, framed.length));
  assert.equal(frames.length, plain.count);
  for (let i = 0; i < plain.count; i++) {
    assert.deepEqual(frames[i], plain.data.subarray(plain.offsets[i], plain.offsets[i + 1]));
    assert.equal(framed.offsets[i + 1] - framed.offsets[i], FLAT_FRAME_PREFIX_BYTES + frames[i].length);
  }
  const one = encodePlay(PLAY);
  assert.deepEqual(splitFrames(frameFlat(one)), [one]);
  assert.throws(() => splitFrames(frameFlat(one).subarray(0, 10)), /truncated/);
});

test('unknown fields fail at construction, naming the field and the table\'s fields', () => {
  assert.throws(() => new FlatExtractor('Impression', ['profileId', 'nope'], 'ts', 'eventId'),
    (e: unknown) => e instanceof Error && /"nope"/.test(e.message) && /Impression/.test(e.message) &&
      e.message.includes('eventId, profileId, titleId, ts, row, position, device'));
  assert.throws(() => new FlatExtractor('Play', ['profileId'], 'time', 'eventId'), /time field "time".*durationMs/);
  assert.throws(() => new FlatExtractor('Play', ['profileId'], 'ts', 'row'), /id field "row"/);
});

test('extracts at an offset inside a larger Buffer and over a SharedArrayBuffer view', () => {
  const rec = encodeImpression(IMP);
  const x = new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId');
  const big = Buffer.alloc(rec.length + 37, 0xee);
  big.set(rec, 13);
  extractOrThrow(x, big.subarray(5), 8, 8 + rec.length);
  assert.equal(x.keyText, '[123,456]');
  const sab = new Uint8Array(new SharedArrayBuffer(rec.length + 16), 8);
  sab.set(rec, 3);
  extractOrThrow(x, sab, 3, 3 + rec.length);
  assert.equal(x.idText, '"i-42"');
  assert.equal(flatToJson('Impression', sab, 3, 3 + rec.length), impressionJson(IMP));
});

test('missing string fields and non-finite times are errors, absent numbers are 0', () => {
  // A Play with no eventId and no device (the Builder leaves absent fields out of the vtable).
  const b = new flatbuffers.Builder(64);
  Play.startPlay(b);
  Play.addTs(b, Number.NaN);
  Play.addProfileId(b, 5);
  b.finish(Play.endPlay(b));
  const bytes = b.asUint8Array();
  const x = new FlatExtractor('Play', ['profileId', 'titleId'], 'durationMs', 'eventId');
  assert.equal(x.extract(bytes, 0, bytes.length), false);
  assert.match(x.error, /missing id field "eventId"/);
  const y = new FlatExtractor('Play', ['profileId', 'titleId'], 'ts', 'profileId');
  assert.equal(y.extract(bytes, 0, bytes.length), false);
  assert.match(y.error, /non-finite time field "ts"/);
  const z = new FlatExtractor('Play', ['profileId', 'titleId'], 'durationMs', 'profileId');
  extractOrThrow(z, bytes);
  assert.equal(z.keyText, '[5,0]');
  assert.equal(z.ts, 0);
  assert.equal(flatToJson('Play', bytes), '{"eventId":null,"profileId":5,"titleId":0,"ts":null,"durationMs":0,"device":null}');
});

function snapshot(x: FlatExtractor): string {
  return `${x.keyText}|${x.ts}|${x.idText}`;
}

test('every truncation of a record is rejected or reads the same values, without throwing', () => {
  const w = new FlatBatchWriter();
  const g = new Generator(genOptions({ events: 50 }));
  g.nextFlat(0, 3, w);
  const records = [encodeImpression(IMP), encodeImpression({ ...IMP, device: 'x'.repeat(70) }), w.data.slice(0, w.offsets[1])];
  const x = new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId');
  for (const rec of records) {
    extractOrThrow(x, rec);
    const good = snapshot(x);
    let rejected = 0;
    for (let len = 0; len < rec.length; len++) {
      const cut = rec.slice(0, len);
      if (x.extract(cut, 0, len)) {
        assert.equal(snapshot(x), good, `truncated to ${len} of ${rec.length}`);
        assert.doesNotThrow(() => flatToJson('Impression', cut, 0, len));
      } else {
        rejected++;
        assert.notEqual(x.error, '');
      }
      // The same cut as an extent inside the full buffer must be rejected the same way.
      assert.equal(x.extract(rec, 0, len), x.extract(cut, 0, len));
    }
    assert.ok(rejected >= rec.length - 8, `only ${rejected} of ${rec.length} truncations rejected`);
  }
});

test('fuzz: byte flips and garbage never throw; accepted records are fully readable', () => {
  const rnd = prng(12345);
  const g = new Generator(genOptions({ events: 400 }));
  const w = new FlatBatchWriter();
  while (g.nextFlat(0, 100, w) > 0) { /* all impressions */ }
  const recs: Uint8Array[] = [encodeImpression(IMP)];
  for (let i = 0; i < w.count; i++) recs.push(w.data.slice(w.offsets[i], w.offsets[i + 1]));
  const xs = [
    new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId'),
    new FlatExtractor('Impression', ['device'], 'row', 'position'),
  ];
  let accepted = 0, rejected = 0;
  const ITER = 10_000;
  for (let it = 0; it < ITER; it++) {
    const base = recs[Math.floor(rnd() * recs.length)];
    let buf: Uint8Array;
    let start = 0, end: number;
    const mode = it % 4;
    if (mode === 3) {
      buf = new Uint8Array(Math.floor(rnd() * 200));
      for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
      end = buf.length;
    } else {
      buf = base.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) {
        const i = Math.floor(rnd() * buf.length);
        buf[i] = mode === 0 ? buf[i] ^ (1 << Math.floor(rnd() * 8)) : Math.floor(rnd() * 256);
      }
      end = mode === 2 ? Math.floor(rnd() * (buf.length + 1)) : buf.length;
      if (mode === 2 && rnd() < 0.5) start = Math.floor(rnd() * (end + 1));
    }
    for (const x of xs) {
      let ok = false;
      assert.doesNotThrow(() => { ok = x.extract(buf, start, end); });
      if (ok) {
        accepted++;
        assert.equal(typeof x.keyText, 'string');
        assert.ok(Number.isFinite(x.ts));
        assert.ok(x.keyText.startsWith('[') && x.keyText.endsWith(']'));
        JSON.parse(x.keyText);
        JSON.parse(x.idText);
        const text = flatToJson('Impression', buf, start, end);
        assert.equal(typeof JSON.parse(text), 'object');
      } else {
        rejected++;
        assert.ok(x.error.length > 0);
      }
    }
  }
  assert.ok(accepted > 0 && rejected > 0, `accepted ${accepted}, rejected ${rejected}`);
});

test('flatToJson equals the generator\'s JSON form, event by event', () => {
  const opts = genOptions({ events: 3000, playDelayMs: 1000 });
  const objs = new Generator(opts);
  const flats = new Generator(opts);
  const jsons = new Generator(opts);
  for (const side of [0, 1] as const) {
    const events = side === 0 ? objs.nextEvents(0, 5000) : objs.nextEvents(1, 5000);
    const w = new FlatBatchWriter();
    flats.nextFlat(side, 5000, w);
    const lines = jsons.nextJson(side, 5000).split('\n');
    assert.equal(lines.pop(), '');
    assert.ok(events.length > 100);
    assert.equal(w.count, events.length);
    assert.equal(lines.length, events.length);
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      const json = side === 0 ? impressionJson(e as ImpressionEvent) : playJson(e as PlayEvent);
      const table = side === 0 ? 'Impression' : 'Play';
      assert.equal(flatToJson(table, w.data, w.offsets[i], w.offsets[i + 1]), json);
      assert.equal(lines[i], json);
      const built = side === 0 ? encodeImpression(e as ImpressionEvent) : encodePlay(e as PlayEvent);
      assert.equal(flatToJson(table, built), json);
      assert.deepEqual(JSON.parse(json), e);
    }
  }
});

test('JoinedRecord roundtrip, matched and unmatched', () => {
  const left = encodeImpression(IMP), right = encodePlay(PLAY);
  const both = decodeJoined(encodeJoined({ leftId: '"i-42"', rightId: new TextEncoder().encode('"p-9"'), key: '[123,456]', leftTs: IMP.ts, rightTs: PLAY.ts, left, right }));
  assert.deepEqual(both, { leftId: '"i-42"', rightId: '"p-9"', key: '[123,456]', leftTs: IMP.ts, rightTs: PLAY.ts, left, right });
  const leftOnly = encodeJoined({ leftId: '"i-42"', rightId: null, key: '[123,456]', leftTs: IMP.ts, rightTs: null, left, right: null });
  assert.deepEqual(decodeJoined(leftOnly), { leftId: '"i-42"', rightId: null, key: '[123,456]', leftTs: IMP.ts, rightTs: null, left, right: null });
  assert.deepEqual(JSON.parse(joinedToJson(leftOnly)), { leftId: 'i-42', rightId: null, key: [123, 456], leftTs: IMP.ts, rightTs: null, left: IMP, right: null });
  const rightOnly = encodeJoined({ leftId: null, rightId: '7', key: '["a",1]', leftTs: null, rightTs: 0, left: null, right });
  assert.deepEqual(decodeJoined(rightOnly), { leftId: null, rightId: '7', key: '["a",1]', leftTs: null, rightTs: 0, left: null, right });
  assert.deepEqual(JSON.parse(joinedToJson(rightOnly)), { leftId: null, rightId: 7, key: ['a', 1], leftTs: null, rightTs: 0, left: null, right: PLAY });
  // Reused builder: encoding again does not disturb earlier results (they are copies).
  const again = encodeJoined({ leftId: '"x"', rightId: '"y"', key: '[1,2]', leftTs: 1, rightTs: 2, left, right });
  assert.notDeepEqual(again, leftOnly);
  assert.equal(decodeJoined(leftOnly).leftId, '"i-42"');
});

test('u32 and u16 key and id texts at every digit-count boundary equal String(n)', () => {
  const x = new FlatExtractor('Impression', ['profileId', 'row'], 'ts', 'titleId');
  const values = [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 99999, 100000, 999999, 1000000, 9999999, 10000000,
    99999999, 100000000, 999999999, 1000000000, 2147483647, 2147483648, 4294967295];
  for (const n of values) {
    const row = n % 65536;
    extractOrThrow(x, encodeImpression({ ...IMP, profileId: n, titleId: n, row }));
    assert.equal(x.keyText, `[${n},${row}]`);
    assert.equal(x.idText, String(n));
  }
});

test('fast path (extractPlain) takes generated records and agrees with the general path on every fuzzed one', () => {
  type Paths = { extractPlain(b: Uint8Array, s: number, e: number, out: Uint8Array): boolean; extractUnsafe(b: Uint8Array, s: number, e: number, out: Uint8Array): boolean };
  const rnd = prng(777);
  const g = new Generator(genOptions({ events: 600 }));
  const recs: Array<[0 | 1, Uint8Array]> = [[0, encodeImpression(IMP)], [1, encodePlay(PLAY)], [0, encodeImpression({ ...IMP, eventId: 'é"\\' })]];
  for (const side of [0, 1] as const) {
    const w = new FlatBatchWriter();
    while (g.nextFlat(side, 100, w) > 0) { /* all of this side */ }
    for (let i = 0; i < w.count; i++) recs.push([side, w.data.slice(w.offsets[i], w.offsets[i + 1])]);
  }
  const configs: Array<[string[], string, string]> = [
    [['profileId', 'titleId'], 'ts', 'eventId'], [['device', 'profileId'], 'titleId', 'device'], [['ts'], 'profileId', 'titleId'],
  ];
  const make = (side: 0 | 1, c: [string[], string, string]) => new FlatExtractor(side === 0 ? 'Impression' : 'Play', ...c);
  let plainTaken = 0, compared = 0;
  for (let it = 0; it < 12_000; it++) {
    const [side, base] = recs[Math.floor(rnd() * recs.length)];
    const buf = base.slice();
    let start = 0, end = buf.length;
    if (it % 3 !== 0) {
      const flips = 1 + Math.floor(rnd() * 3);
      for (let f = 0; f < flips; f++) { const i = Math.floor(rnd() * buf.length); buf[i] = it % 3 === 1 ? buf[i] ^ (1 << Math.floor(rnd() * 8)) : Math.floor(rnd() * 256); }
      if (rnd() < 0.2) { end = Math.floor(rnd() * (buf.length + 1)); start = Math.floor(rnd() * (end + 1)); }
    }
    const c = configs[it % configs.length];
    const fast = make(side, c), general = make(side, c);
    const outF = new Uint8Array(it % 7 === 0 ? 9 : 512), outG = new Uint8Array(outF.length);
    const okF = (fast as unknown as Paths).extractPlain(buf, start, end, outF);
    if (!okF) continue;
    if (it % 3 === 0 && end === buf.length) plainTaken++;
    const okG = (general as unknown as Paths).extractUnsafe(buf, start, end, outG);
    compared++;
    assert.ok(okG, `plain path accepted what the general path rejects (${general.error}) at iteration ${it}`);
    assert.deepEqual([fast.keyLen, fast.idLen, fast.ts], [general.keyLen, general.idLen, general.ts], `iteration ${it}`);
    assert.deepEqual(outF.subarray(0, fast.keyLen + fast.idLen), outG.subarray(0, general.keyLen + general.idLen), `iteration ${it}`);
  }
  assert.ok(plainTaken > 1000, `plain path took only ${plainTaken} unmodified records`);
  assert.ok(compared > plainTaken, `only ${compared} compared`);
});

test('a JSON record read as a FlatBuffer is rejected with a hint to pass --format json', () => {
  const x = new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId');
  const json = new TextEncoder().encode('  {"eventId":"i-1","profileId":7,"titleId":3,"ts":1767225600000,"row":0,"position":1,"device":"tv"}');
  assert.equal(x.extract(json, 0, json.length), false);
  assert.match(x.error, /looks like JSON: pass --format json/);
  // Bytes that are neither get no such hint.
  const junk = new Uint8Array(40).fill(0xff);
  assert.equal(x.extract(junk, 0, junk.length), false);
  assert.doesNotMatch(x.error, /JSON/);
});
