/**
 * The fast kafkajs codec (src/kafka/kafkajs/fast-codec.ts) against kafkajs's own code in one process:
 * produce requests byte for byte, decoded record batches field for field, consumer batches,
 * CRC32C and murmur2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { crc32c, fastCodecStats, installFastCodec, kafkajsOriginals } from '../../src/kafka/kafkajs/fast-codec.js';
import { crc32cImpl, jsCrc32c } from '../../src/kafka/kafkajs/crc32c.js';

const req = createRequire(import.meta.url);
assert.ok(installFastCodec(req), 'fast codec installed');
const { partitionForKey } = await import('../../src/kafka/kafkajs/index.js');

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const fastProduce = req('kafkajs/src/protocol/requests/produce/v3/request.js') as (a: Any) => Any;
const fastProduceV7 = req('kafkajs/src/protocol/requests/produce/v7/request.js') as (a: Any) => Any;
const fastCreateRequest = req('kafkajs/src/protocol/request.js') as (a: Any) => Promise<Any>;
const fastDecodeBatch = req('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: Any) => Promise<Any>;
const FastBatch = req('kafkajs/src/consumer/batch.js') as Any;
const { produceRequest: origProduce, createRequest: origCreateRequest, recordBatchDecoder: origDecodeBatch, Batch: OrigBatch } = kafkajsOriginals as Required<typeof kafkajsOriginals>;
assert.notEqual(fastProduce, origProduce);
const Long = req('kafkajs/src/utils/long.js');
const Decoder = req('kafkajs/src/protocol/decoder.js');
const Encoder = req('kafkajs/src/protocol/encoder.js');
const Record = req('kafkajs/src/protocol/recordBatch/record/v0/index.js');
const { RecordBatch } = req('kafkajs/src/protocol/recordBatch/v0/index.js');
const kafkajsCrc = req('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
const kafkajsMurmur2 = req('kafkajs/src/producer/partitioners/default/murmur2.js') as (k: Buffer | string) => number;

/** Deterministic pseudo-random numbers. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}
const rand = rng(7);
const randBytes = (n: number) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0; return b; };

/** Run f with Date.now fixed (kafkajs stamps batches without timestamps with the current time). */
async function atFixedTime<T>(f: () => Promise<T>): Promise<T> {
  const now = Date.now;
  Date.now = () => 1_764_000_000_123;
  try { return await f(); } finally { Date.now = now; }
}

async function encodeBoth(args: Any): Promise<{ fast: Buffer | Error; orig: Buffer | Error }> {
  const run = async (make: (a: Any) => Any) => {
    try { return (await atFixedTime<Any>(() => make(structuredCloneArgs(args)).encode())).buffer as Buffer; } catch (e) { return e as Error; }
  };
  return { fast: await run(fastProduce), orig: await run(origProduce) };
}

/** The same arguments for each encoder (Buffers and Longs kept, arrays and objects copied). */
function structuredCloneArgs(a: Any): Any {
  if (Buffer.isBuffer(a) || a === null || typeof a !== 'object' || a instanceof Long) return a;
  if (Array.isArray(a)) return a.map(structuredCloneArgs);
  const o: Any = {};
  for (const k of Object.keys(a)) o[k] = structuredCloneArgs(a[k]);
  return o;
}

async function assertSameProduce(args: Any, label: string): Promise<void> {
  const { fast, orig } = await encodeBoth(args);
  if (orig instanceof Error || fast instanceof Error) {
    assert.ok(orig instanceof Error && fast instanceof Error, `${label}: one failed (fast: ${String(fast instanceof Error ? fast : 'ok')}, kafkajs: ${String(orig instanceof Error ? orig : 'ok')})`);
    return;
  }
  assert.ok(fast.equals(orig), `${label}: bytes differ (fast ${fast.length} B, kafkajs ${orig.length} B)`);
}

const base = { acks: -1, timeout: 30_000 };
const topic = (messages: Any[], partition = 0, extra: Any = {}) => ({ topic: 'out', partitions: [{ partition, messages, ...extra }] });

test('produce request: byte-identical to kafkajs for varied records', async () => {
  const utf8 = 'ünïcødé ✓ 𝄞';
  const cases: Array<[string, Any]> = [
    ['one buffer record', { ...base, topicData: [topic([{ key: Buffer.from('k'), value: Buffer.from('v') }])] }],
    ['null and undefined keys', { ...base, topicData: [topic([{ key: null, value: Buffer.from('a') }, { value: Buffer.from('b') }])] }],
    ['empty and null values', { ...base, topicData: [topic([{ key: Buffer.from('k'), value: Buffer.alloc(0) }, { key: Buffer.alloc(0), value: null }])] }],
    ['string keys and values (utf8)', { ...base, topicData: [topic([{ key: utf8, value: utf8 + utf8 }, { key: 'a', value: '' }])] }],
    ['large values (varint lengths of 2–3 bytes)', { ...base, topicData: [topic([{ key: null, value: randBytes(200) }, { key: randBytes(20_000), value: randBytes(1_100_000) }])] }],
    ['many records (offset deltas past 1 and 2 varint bytes)', { ...base, topicData: [topic(Array.from({ length: 20_000 }, (_, i) => ({ key: Buffer.from(`[${i},${i % 7}]`), value: randBytes(i % 300) })))] }],
    ['headers (strings, buffers, arrays, utf8 keys)', { ...base, topicData: [topic([
      { key: Buffer.from('k'), value: Buffer.from('v'), headers: { a: 'x', [utf8]: Buffer.from([1, 2, 3]), multi: ['1', Buffer.from('2'), ''] } },
      { key: null, value: Buffer.from('w'), headers: {} },
      { key: null, value: Buffer.from('w'), headers: { big: randBytes(300) } },
    ])] }],
    ['timestamps (numbers, strings, missing, string-sorted)', { ...base, topicData: [topic([
      { key: null, value: Buffer.from('a'), timestamp: 1_700_000_000_500 },
      { key: null, value: Buffer.from('b'), timestamp: '1700000000000' },
      { key: null, value: Buffer.from('c') },
      { key: null, value: Buffer.from('d'), timestamp: 999_999_999_999 },
      { key: null, value: Buffer.from('e'), timestamp: 0 },
    ])] }],
    ['timestamps before the first (negative deltas)', { ...base, topicData: [topic([
      { key: null, value: Buffer.from('a'), timestamp: 10 }, { key: null, value: Buffer.from('b'), timestamp: 9 }, { key: null, value: Buffer.from('c'), timestamp: 1_000_000_000_000 },
    ])] }],
    ['transactional, producer id and epoch, first sequence', { ...base, transactionalId: 'txn-ø', producerId: Long.fromValue('123456789012345'), producerEpoch: 7,
      topicData: [topic([{ key: Buffer.from('k'), value: Buffer.from('v') }], 2, { firstSequence: 4242 })] }],
    ['numeric producer id, several topics and partitions, an empty partition', { ...base, producerId: 99, topicData: [
      { topic: 'a', partitions: [{ partition: 0, messages: [{ key: null, value: Buffer.from('1') }] }, { partition: 5, messages: [] }] },
      { topic: 'b-ü', partitions: [{ partition: 1, firstSequence: 3, messages: Array.from({ length: 300 }, (_, i) => ({ key: String(i), value: Buffer.from([i & 255]) })) }] },
    ] }],
    ['no topics', { ...base, topicData: [] }],
    // outside the fast path: kafkajs's own encoder decides (identical bytes or an identical failure)
    ['gzip', { ...base, compression: 1, topicData: [topic([{ key: Buffer.from('k'), value: Buffer.from('v'.repeat(100)) }])] }],
    ['a Uint8Array value (kafkajs String()s it)', { ...base, topicData: [topic([{ key: null, value: new Uint8Array([1, 2]) }])] }],
    ['a number value', { ...base, topicData: [topic([{ key: 5, value: 6 }])] }],
    ['a null header value', { ...base, topicData: [topic([{ key: null, value: Buffer.from('v'), headers: { h: null } }])] }],
    ['fractional timestamps', { ...base, topicData: [topic([{ key: null, value: Buffer.from('v'), timestamp: 1.5 }, { key: null, value: Buffer.from('w'), timestamp: 3 }])] }],
  ];
  const before = { ...fastCodecStats };
  for (const [label, args] of cases) await assertSameProduce(args, label);
  // the last five cases are kafkajs's (each encoder runs once per case)
  assert.equal(fastCodecStats.produceKafkajs - before.produceKafkajs, 5);
  assert.equal(fastCodecStats.produceFast - before.produceFast, cases.length - 5);
});

test('produce request: random records, byte-identical', async () => {
  for (let round = 0; round < 30; round++) {
    const parts = 1 + ((rand() * 4) | 0);
    const topicData = [{ topic: `t${round}`, partitions: Array.from({ length: parts }, (_, p) => ({
      partition: p, firstSequence: (rand() * 1000) | 0,
      messages: Array.from({ length: (rand() * 400) | 0 }, () => {
        const r = rand();
        const m: Any = { key: r < 0.2 ? null : r < 0.3 ? 'k' + ((rand() * 1e6) | 0) : randBytes((rand() * 40) | 0), value: rand() < 0.05 ? Buffer.alloc(0) : randBytes((rand() * (rand() < 0.05 ? 40_000 : 400)) | 0) };
        if (rand() < 0.1) m.headers = { trace: randBytes(8), n: String(rand()) };
        if (rand() < 0.1) m.timestamp = 1_700_000_000_000 + ((rand() * 1e6) | 0);
        return m;
      }),
    })) }];
    await assertSameProduce({ ...base, transactionalId: rand() < 0.5 ? null : 'tx', producerId: (rand() * 1e6) | 0, producerEpoch: (rand() * 5) | 0, topicData }, `round ${round}`);
  }
});

test('produce request v7 and the framed request: identical bytes', async () => {
  const args = { ...base, transactionalId: 'tx', producerId: 12, producerEpoch: 1, topicData: [topic([{ key: Buffer.from('k'), value: randBytes(1000) }, { key: null, value: 'x' }])] };
  // (a client id longer than the room reserved in front of the payload takes the copying path)
  for (const clientId of ['joinery', null, 'ćlïent', 'c'.repeat(300)]) {
    const frame = async (create: (a: Any) => Promise<Any>, make: (a: Any) => Any) =>
      (await atFixedTime(() => create({ correlationId: 4711, clientId, request: make(structuredCloneArgs(args)) }))).buffer as Buffer;
    const fast = await frame(fastCreateRequest, fastProduceV7);
    const orig = await frame(origCreateRequest, origProduce);
    // v7 differs from v3 only in the api version field
    orig.writeInt16BE(7, 6);
    assert.ok(fast.equals(orig), `clientId ${String(clientId)}`);
  }
  const notEncoder = { apiKey: 0, apiVersion: 0, encode: async () => ({}) };
  await assert.rejects(fastCreateRequest({ correlationId: 1, clientId: 'c', request: notEncoder }), /instance of Encoder/);
});

/** A record batch as kafkajs writes it, with FirstOffset and attributes bits set as given. */
async function batchBytes(records: Any[], opts: { firstOffset?: string; firstTimestamp?: number; maxTimestamp?: number; attributes?: number; compression?: number; transactional?: boolean } = {}): Promise<Buffer> {
  const recs = records.map((r, i) => Record({ offsetDelta: r.offsetDelta ?? i, timestampDelta: r.timestampDelta ?? 0, key: r.key, value: r.value, headers: r.headers }));
  const enc = await RecordBatch({
    compression: opts.compression ?? 0, records: recs, firstOffset: Long.fromValue(opts.firstOffset ?? '0'),
    firstTimestamp: opts.firstTimestamp ?? 1_700_000_000_000, maxTimestamp: opts.maxTimestamp ?? 1_700_000_000_999,
    lastOffsetDelta: records.length - 1, producerId: Long.fromValue(77), producerEpoch: 3, firstSequence: 11, transactional: opts.transactional ?? false,
  });
  const b = Buffer.from(enc.buffer);
  if (opts.attributes) b.writeInt16BE(b.readInt16BE(21) | opts.attributes, 21);
  return b;
}

/** Decode every batch of `buf` with both decoders, as decodeMessages does; results and positions must match. */
async function assertSameDecode(buf: Buffer, label: string): Promise<void> {
  const decodeAll = async (decode: (d: Any) => Promise<Any>) => {
    const d = new Decoder(buf);
    const out: Any[] = [];
    try {
      while (d.canReadBytes(49)) out.push(await decode(d));
    } catch (e) {
      out.push({ error: (e as Error).name });
    }
    return { out, offset: d.offset };
  };
  const fast = await decodeAll(fastDecodeBatch);
  const orig = await decodeAll(origDecodeBatch);
  assert.deepStrictEqual(fast, orig, label);
}

test('record batch decoder: identical records to kafkajs', async () => {
  const many = Array.from({ length: 5000 }, (_, i) => ({ key: i % 3 === 0 ? null : Buffer.from(`k${i}`), value: randBytes(i % 200), timestampDelta: i * 37 - 1000 }));
  const batches: Array<[string, Buffer]> = [
    ['simple', await batchBytes([{ key: Buffer.from('k'), value: Buffer.from('v') }])],
    ['null keys, empty and null values', await batchBytes([{ key: null, value: Buffer.alloc(0) }, { key: Buffer.alloc(0), value: null }, { key: null, value: Buffer.from('x') }])],
    ['many records, negative and large timestamp deltas', await batchBytes(many, { firstOffset: '123456789' })],
    ['big timestamp delta (varlong 6 bytes)', await batchBytes([{ key: null, value: Buffer.from('a'), timestampDelta: 2 ** 40 }, { key: null, value: Buffer.from('b'), timestampDelta: -(2 ** 45) }])],
    ['varlong past 7 bytes (kafkajs decodes the record)', await batchBytes([{ key: null, value: Buffer.from('a'), timestampDelta: 2 ** 50 }])],
    ['large values', await batchBytes([{ key: randBytes(300), value: randBytes(2_000_000) }, { key: null, value: randBytes(70_000) }])],
    ['headers (kafkajs decodes those records)', await batchBytes([
      { key: null, value: Buffer.from('a'), headers: { h: Buffer.from('1'), dup: [Buffer.from('x'), Buffer.from('y')] } },
      { key: null, value: Buffer.from('b') },
    ])],
    ['offset gaps (compacted)', await batchBytes([{ key: null, value: Buffer.from('a'), offsetDelta: 0 }, { key: null, value: Buffer.from('b'), offsetDelta: 5 }, { key: null, value: Buffer.from('c'), offsetDelta: 6 }])],
    ['offsets beyond 2^53 (kafkajs decodes the batch)', await batchBytes([{ key: null, value: Buffer.from('a') }], { firstOffset: '9007199254740993' })],
    ['log append time', await batchBytes([{ key: null, value: Buffer.from('a'), timestampDelta: 5 }], { attributes: 0x08 })],
    ['transactional control batch', await batchBytes([{ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }], { attributes: 0x20, transactional: true })],
    ['gzip (kafkajs decodes the batch)', await batchBytes([{ key: null, value: Buffer.from('z'.repeat(500)) }, { key: Buffer.from('k'), value: Buffer.from('y') }], { compression: 1 })],
    ['empty batch', await batchBytes([])],
  ];
  const before = { ...fastCodecStats };
  for (const [label, b] of batches) await assertSameDecode(b, label);
  assert.equal(fastCodecStats.batchKafkajs - before.batchKafkajs, 2); // beyond 2^53, gzip
  assert.equal(fastCodecStats.batchFast - before.batchFast, batches.length - 2);
  assert.equal(fastCodecStats.recordKafkajs - before.recordKafkajs, 2); // varlong past 7 bytes, one record with headers
  // several batches in one fetch, the last one cut short (a fetch's maxBytes boundary)
  const all = Buffer.concat(batches.map(([, b]) => b));
  await assertSameDecode(all, 'all batches in a row');
  const cut = Buffer.concat([batches[0][1], batches[2][1], batches[1][1].subarray(0, batches[1][1].length - 3)]);
  await assertSameDecode(cut, 'partial last batch');
  await assertSameDecode(cut.subarray(0, batches[0][1].length + 30), 'partial batch header');
});

test('consumer batch: same messages and offsets as kafkajs', () => {
  const msgs = (offs: string[]) => offs.map((offset) => ({ offset, key: null, value: Buffer.from(offset), isControlRecord: offset === '7' }));
  const cases: Array<[string, Any]> = [
    ['10', msgs(['8', '9', '10', '11', '12'])],
    ['0', msgs(['0', '1', '7', '9'])],
    ['9007199254740993', msgs(['9007199254740992', '9007199254740993', '9007199254740994'])],
    ['5', []],
  ];
  for (const [fetched, messages] of cases) {
    const pd = { partition: 3, highWatermark: '100', abortedTransactions: [], messages };
    const a = new FastBatch('t', fetched, pd), b = new OrigBatch('t', fetched, pd);
    assert.ok(a instanceof OrigBatch);
    assert.deepStrictEqual({ ...a }, { ...b });
    assert.equal(a.lastOffset(), b.lastOffset());
    assert.equal(a.firstOffset(), b.firstOffset());
    assert.equal(a.offsetLag(), b.offsetLag());
    assert.equal(a.isEmpty(), b.isEmpty());
  }
});

test('CRC32C (native for long buffers, slicing-by-16 in JS) equals kafkajs crc32C', () => {
  // @node-rs/crc32 is a dependency with a prebuilt module for this platform: it must be the one in use
  assert.equal(crc32cImpl, 'native');
  for (const n of [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 511, 512, 513, 1000, 100_003]) {
    const b = randBytes(n);
    assert.equal(crc32c(b), kafkajsCrc(b), `length ${n}`);
    assert.equal(jsCrc32c(b), kafkajsCrc(b), `JS, length ${n}`);
    if (n > 10) assert.equal(crc32c(b, 3, n - 2), kafkajsCrc(b.subarray(3, n - 2)), `range in length ${n}`);
  }
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283); // the CRC-32C check value
});

test('partitionForKey (32-bit murmur2) equals kafkajs murmur2', () => {
  for (let i = 0; i < 20_000; i++) {
    const key = i % 2 ? randBytes(i % 41) : Buffer.from(`[${i},${i % 13}]`);
    const want = kafkajsMurmur2(key) & 0x7fffffff;
    for (const n of [1, 3, 7, 0x7fffffff]) assert.equal(partitionForKey(key, n), want % n);
  }
  assert.equal(partitionForKey('a string key', 0x7fffffff), (kafkajsMurmur2('a string key') & 0x7fffffff) % 0x7fffffff);
});
