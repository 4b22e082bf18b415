/**
 * LeanRecords (src/kafka/kafkajs/lean-record.ts): with useLeanRecords(true) the fast record-batch
 * decoder's records must read back exactly as kafkajs's own decoder's (key, value, offset and
 * every other field), kafkajs's batch filtering must see the same offsets, and copyValues must
 * lay the values out byte for byte as concatenating them does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { installFastCodec, kafkajsOriginals } from '../../src/kafka/kafkajs/fast-codec.js';
import { copyValues, LeanRecord, offsetOf, useLeanRecords, valueLengthOf } from '../../src/kafka/kafkajs/lean-record.js';

const req = createRequire(import.meta.url);
assert.ok(installFastCodec(req), 'fast codec installed');
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const fastDecodeBatch = req('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: Any) => Promise<Any>;
const FastBatch = req('kafkajs/src/consumer/batch.js') as Any;
const { recordBatchDecoder: origDecodeBatch, Batch: OrigBatch } = kafkajsOriginals as Required<typeof kafkajsOriginals>;
const Long = req('kafkajs/src/utils/long.js');
const Decoder = req('kafkajs/src/protocol/decoder.js');
const Record = req('kafkajs/src/protocol/recordBatch/record/v0/index.js');
const { RecordBatch } = req('kafkajs/src/protocol/recordBatch/v0/index.js');

let seed = 11;
const rand = (): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32; };
const randBytes = (n: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0; return b; };

async function batchBytes(records: Any[], firstOffset = '0'): Promise<Buffer> {
  const recs = records.map((r, i) => Record({ offsetDelta: r.offsetDelta ?? i, timestampDelta: r.timestampDelta ?? 0, key: r.key, value: r.value, headers: r.headers }));
  const enc = await RecordBatch({
    compression: 0, records: recs, firstOffset: Long.fromValue(firstOffset), firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_999,
    lastOffsetDelta: records.length - 1, producerId: Long.fromValue(77), producerEpoch: 3, firstSequence: 11, transactional: false,
  });
  return Buffer.from(enc.buffer);
}

async function decodeAll(buf: Buffer, decode: (d: Any) => Promise<Any>): Promise<Any[]> {
  const d = new Decoder(buf);
  const records: Any[] = [];
  while (d.canReadBytes(49)) records.push(...(await decode(d)).records);
  return records;
}

/** A record as kafkajs's plain object, read through its fields (getters included). */
const plain = (r: Any): Any => ({
  magicByte: r.magicByte, attributes: r.attributes, timestamp: r.timestamp, offset: r.offset, key: r.key, value: r.value,
  headers: { ...r.headers }, isControlRecord: r.isControlRecord, batchContext: r.batchContext,
});

const records = [
  { key: Buffer.from('[7,42]'), value: Buffer.from('{"eventId":"a","ts":1}') },
  { key: null, value: null },
  { key: Buffer.alloc(0), value: Buffer.alloc(0) },
  ...Array.from({ length: 3000 }, (_, i) => ({ key: i % 5 ? Buffer.from(`[${i}]`) : null, value: randBytes(i % 301), timestampDelta: i * 13 })),
  { key: null, value: randBytes(70_000) },
  { key: null, value: Buffer.from('with a header'), headers: { h: Buffer.from('1') } }, // kafkajs decodes this one
];

test('lean records read back as kafkajs decodes them; offsets with gaps', async () => {
  const buf = Buffer.concat([await batchBytes(records, '1000'), await batchBytes([{ key: null, value: Buffer.from('x'), offsetDelta: 0 }, { key: null, value: Buffer.from('y'), offsetDelta: 4 }], '5000')]);
  const orig = await decodeAll(buf, origDecodeBatch);
  useLeanRecords(true);
  try {
    const lean = await decodeAll(buf, fastDecodeBatch);
    assert.equal(lean.length, orig.length);
    assert.ok(lean.slice(0, -3).every((r) => r instanceof LeanRecord), 'header-less records are LeanRecords');
    assert.ok(!(lean[lean.length - 3] instanceof LeanRecord), 'a record with headers is kafkajs\'s');
    assert.deepStrictEqual(lean.map(plain), orig.map(plain));
    for (let i = 0; i < lean.length; i++) {
      assert.equal(offsetOf(lean[i]), Number(orig[i].offset));
      assert.equal(valueLengthOf(lean[i]), orig[i].value ? orig[i].value.length : 0);
    }
    // values laid out as one concatenation, from any first index, lean and plain records mixed
    for (const first of [0, 1, 2, 500]) {
      const mixed = lean.map((r, i) => (i % 7 === 3 ? orig[i] : r));
      const want = Buffer.concat(orig.slice(first).map((r: Any) => r.value ?? Buffer.alloc(0)));
      const dst = Buffer.alloc(want.length + 16, 0xee);
      const ends = new Uint32Array(mixed.length - first + 1);
      assert.equal(copyValues(mixed, first, dst, ends), want.length);
      assert.deepStrictEqual(dst.subarray(0, want.length), want);
      let at = 0;
      for (let i = first, k = 1; i < orig.length; i++, k++) { at += orig[i].value ? orig[i].value.length : 0; assert.equal(ends[k], at); }
    }
    // kafkajs's batch over lean records: the same messages and offsets as over kafkajs's records
    for (const fetched of ['1000', '1500', '5001', '5004']) {
      const a = new FastBatch('t', fetched, { partition: 0, highWatermark: '6000', abortedTransactions: [], messages: lean });
      const b = new OrigBatch('t', fetched, { partition: 0, highWatermark: '6000', abortedTransactions: [], messages: orig });
      assert.deepStrictEqual(a.messages.map(plain), b.messages.map(plain), `fetched at ${fetched}`);
      assert.equal(a.firstOffset(), b.firstOffset());
      assert.equal(a.lastOffset(), b.lastOffset());
    }
  } finally {
    useLeanRecords(false);
  }
  const again = await decodeAll(buf, fastDecodeBatch);
  assert.ok(!again.some((r) => r instanceof LeanRecord), 'off again: kafkajs\'s plain objects');
});
