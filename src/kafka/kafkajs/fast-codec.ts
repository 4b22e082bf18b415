/**
 * Faster stand-ins for kafkajs 2.2.4's hottest protocol code, installed through the require cache
 * before kafkajs loads (like the other patches in patches.ts, its only importer).
 *
 * Why: joinery's main thread does all of kafkajs's work next to routing, and kafkajs spends most
 * of it on bookkeeping rather than bytes. Producing, it builds one Encoder per record (a zeroed
 * 512-byte Buffer, varints through arrays and Buffer.from, varlongs through BigInt) and copies
 * the request three more times while growing encoders; fetching, it makes a Decoder and a
 * sub-buffer per record, and computes every offset and timestamp through BigInt and back to a
 * string, then parses every offset again (BigInt) to filter the batch.
 *
 * What is replaced (each falls back to kafkajs's own code for anything outside its fast path, so
 * behaviour — bytes on the wire, decoded objects, errors — stays kafkajs's):
 * - protocol/requests/produce/v3/request.js (v4–v7 reuse it): the whole request is sized first
 *   and written into one buffer, byte-identical to kafkajs's (uncompressed batches; key, value
 *   and header values Buffer / string / null; timestamps that give safe-integer deltas).
 * - protocol/request.js: the request header and payload go into one exact-size buffer.
 * - protocol/recordBatch/v0/decoder.js: uncompressed batches are decoded in place with number
 *   arithmetic (BigInt only for offsets beyond 2^53); records with headers, or anything unusual,
 *   go through kafkajs's record decoder; compressed or partial batches through kafkajs's. Once
 *   KafkaSource opened, records are LeanRecords (lean-record.ts: positions, key/value/offset on demand).
 * - consumer/batch.js: the "offset ≥ fetched offset" filter compares numbers.
 * - CRC32C of produced batches: crc32c.ts (hardware, or slicing-by-16; kafkajs's polynomial and result).
 *
 * JOINERY_KAFKAJS_FAST=0 leaves kafkajs as it is (to compare, or if a patch misbehaves);
 * JOINERY_FAST_SKIP=produce,request,decoder,batch,lean leaves out single replacements (to bisect).
 */
import type { createRequire } from 'node:module';
import { crc32c } from './crc32c.js';
import { LeanBatch, LeanRecord, leanRecordsOn } from './lean-record.js';

export { crc32c };

type Require = ReturnType<typeof createRequire>;
/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

export const fastCodecEnabled = process.env.JOINERY_KAFKAJS_FAST !== '0';

/** kafkajs's own implementations of what installFastCodec replaced (for tests and comparisons). */
export const kafkajsOriginals: {
  produceRequest?: (args: Any) => Any;
  createRequest?: (args: Any) => Promise<Any>;
  recordBatchDecoder?: (decoder: Any) => Promise<Any>;
  Batch?: Any;
} = {};

/** How often each path ran (the fast one, or kafkajs's for inputs outside it). */
export const fastCodecStats = { produceFast: 0, produceKafkajs: 0, batchFast: 0, batchKafkajs: 0, recordKafkajs: 0 };

let installed = false;

const MODULES = {
  produce: 'kafkajs/src/protocol/requests/produce/v3/request.js',
  request: 'kafkajs/src/protocol/request.js',
  decoder: 'kafkajs/src/protocol/recordBatch/v0/decoder.js',
  batch: 'kafkajs/src/consumer/batch.js',
} as const;
const ORIGINAL_OF = { produce: 'produceRequest', request: 'createRequest', decoder: 'recordBatchDecoder', batch: 'Batch' } as const;

/** The parts whose kafkajs module holds a replacement now (looked up, so a later overwrite shows). */
export function fastCodecReplaced(req: Require): string[] {
  if (!installed) return [];
  return (Object.keys(MODULES) as Array<keyof typeof MODULES>).filter((k) => {
    const original = kafkajsOriginals[ORIGINAL_OF[k]];
    const now = req.cache[req.resolve(MODULES[k])]?.exports as unknown;
    return original !== undefined && now !== undefined && now !== original;
  });
}

/**
 * Replace the modules in the require cache. Must run before kafkajs itself is required (a module
 * already loaded would keep references to the originals); returns false if it could not.
 */
export function installFastCodec(req: Require): boolean {
  if (installed) return true;
  const cache = req.cache;
  const p = {
    produce: req.resolve(MODULES.produce),
    request: req.resolve(MODULES.request),
    decoder: req.resolve(MODULES.decoder),
    batch: req.resolve(MODULES.batch),
  };
  if (Object.values(p).some((x) => x in cache)) return false;
  const Long = req('kafkajs/src/utils/long.js');
  const Encoder = req('kafkajs/src/protocol/encoder.js');
  const Decoder = req('kafkajs/src/protocol/decoder.js');
  const { Types } = req('kafkajs/src/protocol/message/compression/index.js');
  const RecordDecoder = req('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
  const filterAbortedMessages = req('kafkajs/src/consumer/filterAbortedMessages.js');
  const TimestampTypes = req('kafkajs/src/protocol/timestampTypes.js');
  const kafkajsCrc = req('kafkajs/src/protocol/recordBatch/crc32C/index.js');
  if (typeof kafkajsCrc !== 'function' || typeof RecordDecoder !== 'function' || Types?.None !== 0) return false;

  const originals = {
    produceRequest: req(p.produce),
    createRequest: req(p.request),
    recordBatchDecoder: req(p.decoder),
    Batch: req(p.batch),
  };
  if (Object.values(originals).some((f) => typeof f !== 'function')) return false;
  Object.assign(kafkajsOriginals, originals);

  const skip = process.env.JOINERY_FAST_SKIP ?? '';
  if (!skip.includes('produce')) cache[p.produce]!.exports = makeProduceRequest(originals.produceRequest, { Long, Encoder });
  if (!skip.includes('request')) cache[p.request]!.exports = makeCreateRequest(originals.createRequest, Encoder);
  if (!skip.includes('decoder')) cache[p.decoder]!.exports = makeRecordBatchDecoder(originals.recordBatchDecoder, { Decoder, RecordDecoder, TimestampTypes });
  if (!skip.includes('batch')) cache[p.batch]!.exports = makeBatch(originals.Batch, { Long, filterAbortedMessages });
  installed = true;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Varints, as kafkajs's Encoder writes them (its 32-bit zig-zag included)

function sizeOfVarInt(value: number): number {
  let v = (value << 1) ^ (value >> 31);
  let bytes = 1;
  while ((v & 0xffffff80) !== 0) { bytes++; v >>>= 7; }
  return bytes;
}

function putVarInt(buf: Buffer, o: number, value: number): number {
  let v = (value << 1) ^ (value >> 31);
  while ((v & 0xffffff80) !== 0) { buf[o++] = (v & 0x7f) | 0x80; v >>>= 7; }
  buf[o++] = v & 0x7f;
  return o;
}

/** Varlongs of |value| < 2^52 only (callers check), where doubles are exact. */
function sizeOfVarLong(value: number): number {
  let z = value >= 0 ? value * 2 : -value * 2 - 1;
  let bytes = 1;
  while (z >= 128) { bytes++; z = Math.floor(z / 128); }
  return bytes;
}

function putVarLong(buf: Buffer, o: number, value: number): number {
  let z = value >= 0 ? value * 2 : -value * 2 - 1;
  while (z >= 128) { buf[o++] = (z % 128) | 0x80; z = Math.floor(z / 128); }
  buf[o++] = z;
  return o;
}

const VARLONG_LIMIT = 2 ** 52;

/** A record's key / value / header value as the fast path takes it; kafkajs String()s anything else. */
const plainBytes = (v: unknown): boolean => v == null || typeof v === 'string' || Buffer.isBuffer(v);

function sizeOfBytes(v: Buffer | string | null | undefined): number {
  if (v == null) return 1;
  const n = typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
  return sizeOfVarInt(n) + n;
}

function putBytes(buf: Buffer, o: number, v: Buffer | string | null | undefined): number {
  if (v == null) { buf[o] = 1; return o + 1; } // zig-zag of -1
  if (typeof v === 'string') {
    const n = Buffer.byteLength(v, 'utf8');
    o = putVarInt(buf, o, n);
    buf.write(v, o, n, 'utf8');
    return o + n;
  }
  o = putVarInt(buf, o, v.length);
  buf.set(v, o);
  return o + v.length;
}

/**
 * A record's headers as [key, value] pairs in kafkajs's order (Object.keys, arrays flattened),
 * or null when some value is not a Buffer or string (kafkajs's own code then decides).
 */
function headerPairs(headers: unknown): Array<[string, Buffer | string]> | null {
  const out: Array<[string, Buffer | string]> = [];
  for (const k of Object.keys(headers as object)) {
    const v = (headers as Record<string, unknown>)[k];
    const vs = Array.isArray(v) ? v : [v];
    for (const x of vs) {
      if (x == null || !plainBytes(x)) return null;
      out.push([k, x as Buffer | string]);
    }
  }
  return out;
}

function sizeOfHeaders(h: Array<[string, Buffer | string]>): number {
  let size = sizeOfVarInt(h.length);
  for (const [k, v] of h) size += sizeOfBytes(k) + sizeOfBytes(v);
  return size;
}

// ---------------------------------------------------------------------------------------------
// Produce request

interface PartPlan {
  partition: number;
  firstSequence: number | undefined;
  messages: Any[];
  firstTimestamp: unknown;
  maxTimestamp: unknown;
  /** Per-record timestamp deltas; null when all are 0 (no record has a timestamp). */
  deltas: number[] | null;
  recordsBytes: number;
}

/** The bytes of one record's body (after its length varint), as kafkajs's Record sizes it. */
function recordBodySize(m: Any, i: number, delta: number, headers: Array<[string, Buffer | string]> | null): number {
  return 1 + (delta === 0 ? 1 : sizeOfVarLong(delta)) + sizeOfVarInt(i) + sizeOfBytes(m.key) + sizeOfBytes(m.value)
    + (headers === null ? 1 : sizeOfHeaders(headers));
}

/** Headers of a message: null = none; undefined = not for the fast path. */
function messageHeaders(m: Any): Array<[string, Buffer | string]> | null | undefined {
  const h = m.headers;
  if (h === undefined) return null;
  if (h === null || typeof h !== 'object') return undefined;
  const pairs = headerPairs(h);
  if (pairs === null) return undefined;
  return pairs.length === 0 ? null : pairs;
}

/** Plan one partition's batch as kafkajs's partitionsEncoder would build it; null = not for the fast path. */
function planPartition(data: Any): PartPlan | null {
  const messages = data.messages as Any[];
  if (!Array.isArray(messages)) return null;
  const dateNow = Date.now();
  let anyTimestamp = false;
  for (let i = 0; i < messages.length; i++) if (messages[i].timestamp != null) { anyTimestamp = true; break; }
  // kafkajs sorts with the default (string) order; kept as it is for identical batches
  const timestamps = anyTimestamp ? messages.map((m) => m.timestamp).filter((t) => t != null).sort() : [dateNow];
  const firstTimestamp = timestamps[0];
  const maxTimestamp = timestamps[timestamps.length - 1];
  let deltas: number[] | null = null;
  if (anyTimestamp) {
    deltas = new Array<number>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const d = (messages[i].timestamp || dateNow) - firstTimestamp;
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || Math.abs(d) >= VARLONG_LIMIT) return null;
      deltas[i] = d;
    }
  }
  let recordsBytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m == null || !plainBytes(m.key) || !plainBytes(m.value)) return null;
    const headers = messageHeaders(m);
    if (headers === undefined) return null;
    const body = recordBodySize(m, i, deltas ? deltas[i] : 0, headers);
    recordsBytes += sizeOfVarInt(body) + body;
  }
  return { partition: data.partition, firstSequence: data.firstSequence, messages, firstTimestamp, maxTimestamp, deltas, recordsBytes };
}

const stringSize = (s: unknown): number => (s == null ? 2 : 2 + Buffer.byteLength(s as string, 'utf8'));

function putString(buf: Buffer, o: number, s: unknown): number {
  if (s == null) { buf.writeInt16BE(-1, o); return o + 2; }
  const n = Buffer.byteLength(s as string, 'utf8');
  buf.writeInt16BE(n, o);
  buf.write(s as string, o + 2, n, 'utf8');
  return o + 2 + n;
}

/** Batch header bytes from Attributes to the records count; the batch adds FirstOffset … CRC (21). */
const BODY_HEADER = 40;
const BATCH_OVERHEAD = 8 + 4 + 4 + 1 + 4;

/**
 * The produce request's payload as kafkajs's v3 encoder writes it, or null when some input is
 * outside the fast path (compression, values that are not Buffer / string / null, …).
 */
function encodeProduce(args: Any, deps: { Long: Any; Encoder: Any }): Any | null {
  const { Long, Encoder } = deps;
  const { acks, timeout, transactionalId = null, producerId = Long.fromInt(-1), producerEpoch = 0, compression = 0, topicData } = args;
  if (compression !== 0 || !Array.isArray(topicData)) return null;
  if (transactionalId != null && typeof transactionalId !== 'string') return null;
  let size = stringSize(transactionalId) + 2 + 4 + 4;
  const plans: PartPlan[][] = [];
  for (const t of topicData) {
    if (t == null || (t.topic != null && typeof t.topic !== 'string') || !Array.isArray(t.partitions)) return null;
    size += stringSize(t.topic) + 4;
    const parts: PartPlan[] = [];
    for (const d of t.partitions) {
      if (d == null) return null;
      const plan = planPartition(d);
      if (!plan) return null;
      size += 4 + 4 + BATCH_OVERHEAD + BODY_HEADER + plan.recordsBytes;
      parts.push(plan);
    }
    plans.push(parts);
  }
  const attributes = transactionalId ? 16 : 0; // no compression, create time, transactional bit
  // Room for the request header in front (createRequest: no second buffer). Not zero-filled: every byte is written below.
  const buf = Buffer.allocUnsafe(HEADER_ROOM + size).subarray(HEADER_ROOM);
  const int64 = (o: number, v: unknown): number => {
    const l = Long.fromValue(v);
    buf.writeInt32BE(l.getHighBits(), o);
    buf.writeInt32BE(l.getLowBits(), o + 4);
    return o + 8;
  };
  let o = putString(buf, 0, transactionalId);
  o = buf.writeInt16BE(acks, o);
  o = buf.writeInt32BE(timeout, o);
  o = buf.writeInt32BE(topicData.length, o);
  for (let ti = 0; ti < topicData.length; ti++) {
    o = putString(buf, o, topicData[ti].topic);
    const parts = plans[ti];
    o = buf.writeInt32BE(parts.length, o);
    for (const pl of parts) {
      const bodyLen = BODY_HEADER + pl.recordsBytes;
      const batchLen = 4 + 1 + 4 + bodyLen;
      o = buf.writeInt32BE(pl.partition, o);
      o = buf.writeInt32BE(8 + 4 + batchLen, o);
      o = int64(o, 0); // FirstOffset
      o = buf.writeInt32BE(batchLen, o);
      o = buf.writeInt32BE(0, o); // PartitionLeaderEpoch
      o = buf.writeInt8(2, o); // magic
      const crcAt = o;
      o += 4;
      const bodyAt = o;
      const msgs = pl.messages;
      o = buf.writeInt16BE(attributes, o);
      o = buf.writeInt32BE(msgs.length - 1, o);
      o = int64(o, pl.firstTimestamp);
      o = int64(o, pl.maxTimestamp);
      o = int64(o, producerId);
      o = buf.writeInt16BE(producerEpoch, o);
      o = buf.writeInt32BE(pl.firstSequence === undefined ? 0 : pl.firstSequence, o);
      o = buf.writeInt32BE(msgs.length, o);
      const deltas = pl.deltas;
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i];
        const delta = deltas ? deltas[i] : 0;
        const headers = messageHeaders(m)!;
        o = putVarInt(buf, o, recordBodySize(m, i, delta, headers));
        buf[o++] = 0; // record attributes
        if (delta === 0) buf[o++] = 0; else o = putVarLong(buf, o, delta);
        o = putVarInt(buf, o, i);
        o = putBytes(buf, o, m.key);
        o = putBytes(buf, o, m.value);
        if (headers === null) buf[o++] = 0;
        else {
          o = putVarInt(buf, o, headers.length);
          for (const [k, v] of headers) { o = putBytes(buf, o, k); o = putBytes(buf, o, v); }
        }
      }
      if (o !== bodyAt + bodyLen) throw new Error(`joinery fast produce encoder: batch size mismatch (${o - bodyAt} ≠ ${bodyLen})`);
      buf.writeUInt32BE(crc32c(buf, bodyAt, o), crcAt);
    }
  }
  if (o !== size) throw new Error(`joinery fast produce encoder: request size mismatch (${o} ≠ ${size})`);
  return encoderOver(Encoder, buf, true);
}

/** Room in front of a produce payload for its request header (a longer client id: a second buffer). */
const HEADER_ROOM = 256, HAS_HEADER_ROOM = Symbol('joinery.headerRoom');

/** A kafkajs Encoder holding `buf` as its written bytes (`headerRoom`: HEADER_ROOM bytes before it are free). */
function encoderOver(Encoder: Any, buf: Buffer, headerRoom = false): Any {
  const e = new Encoder(1);
  e.buf = buf;
  e.offset = buf.length;
  if (headerRoom) e[HAS_HEADER_ROOM] = true;
  return e;
}

export function makeProduceRequest(original: (args: Any) => Any, deps: { Long: Any; Encoder: Any }): (args: Any) => Any {
  return function produceRequest(args: Any): Any {
    const request = original(args);
    const encodeOriginal = request.encode;
    request.encode = async () => {
      const fast = encodeProduce(args, deps);
      if (fast) { fastCodecStats.produceFast++; return fast; }
      fastCodecStats.produceKafkajs++;
      return encodeOriginal();
    };
    return request;
  };
}

// ---------------------------------------------------------------------------------------------
// Request framing

export function makeCreateRequest(original: (a: Any) => Promise<Any>, Encoder: Any): (a: Any) => Promise<Any> {
  return async function createRequest(a: Any): Promise<Any> {
    const { correlationId, clientId, request } = a;
    if (clientId != null && typeof clientId !== 'string') return original(a);
    const { apiKey, apiVersion, encode } = request;
    const payload = await encode();
    if (payload == null || !Buffer.isBuffer(payload.buf)) throw new Error('value should be an instance of Encoder');
    const body: Buffer = payload.buffer;
    const idLen = clientId == null ? 0 : Buffer.byteLength(clientId, 'utf8');
    const size = 2 + 2 + 4 + 2 + idLen + body.length;
    const header = 4 + size - body.length;
    const inPlace = payload[HAS_HEADER_ROOM] === true && header <= HEADER_ROOM;
    const out = inPlace ? Buffer.from(body.buffer, body.byteOffset - header, header + body.length) : Buffer.allocUnsafe(4 + size);
    let o = out.writeInt16BE(apiVersion, out.writeInt16BE(apiKey, out.writeInt32BE(size, 0)));
    o = putString(out, out.writeInt32BE(correlationId, o), clientId);
    if (!inPlace) body.copy(out, o);
    return encoderOver(Encoder, out);
  };
}

// ---------------------------------------------------------------------------------------------
// Fetch: record batches

const TWO32 = 2 ** 32;

/** int64 at o as a number when it is a safe integer, else null. */
function safeInt64(buf: Buffer, o: number): number | null {
  const hi = buf.readInt32BE(o);
  if (hi < -0x200000 || hi >= 0x200000) return null;
  return hi * TWO32 + buf.readUInt32BE(o + 4);
}

const int64String = (buf: Buffer, o: number): string => {
  const n = safeInt64(buf, o);
  return n !== null ? String(n) : String(buf.readBigInt64BE(o));
};

/** What kafkajs's record batch decoder throws at a batch cut short by the fetch's size limit (it checks the name only). */
const PARTIAL_BATCH = Object.assign(new Error('partial record batch at the end of a fetch response'), { name: 'KafkaJSPartialMessageError' });

export function makeRecordBatchDecoder(original: (d: Any) => Promise<Any>, deps: { Decoder: Any; RecordDecoder: Any; TimestampTypes: Any }): (d: Any) => Promise<Any> {
  const { Decoder, RecordDecoder, TimestampTypes } = deps;
  const kafkajs = (d: Any): Promise<Any> => { fastCodecStats.batchKafkajs++; return original(d); };
  return async function recordBatchDecoder(fetchDecoder: Any): Promise<Any> {
    const buf: Buffer = fetchDecoder.buffer;
    const s: number = fetchDecoder.offset;
    if (!Buffer.isBuffer(buf) || s + 61 > buf.length) return kafkajs(fetchDecoder);
    const length = buf.readInt32BE(s + 8);
    const end = s + 12 + length;
    const attributes = buf.readInt16BE(s + 21);
    // The partial batch a fetch response ends with: kafkajs's decodeMessages ends the response at
    // an error of this name. One made once: a new KafkaJSError per fetched partition (its stack
    // captured through the fetch's async frames) was ~1 % of the main thread's time.
    if (length >= 49 && end > buf.length) { fetchDecoder.offset = end; throw PARTIAL_BATCH; } // kafkajs moves past the length first too
    // compressed or odd batches: kafkajs
    if (length < 49 || end > buf.length || (attributes & 0x07) !== 0) return kafkajs(fetchDecoder);
    const firstOffsetNum = safeInt64(buf, s);
    const count = buf.readInt32BE(s + 57);
    if (firstOffsetNum === null || count < -1) return kafkajs(fetchDecoder);
    const firstTimestamp = int64String(buf, s + 27);
    const firstTimestampNum = safeInt64(buf, s + 27);
    const recordContext = {
      firstOffset: String(firstOffsetNum),
      firstTimestamp,
      partitionLeaderEpoch: buf.readInt32BE(s + 12),
      inTransaction: (attributes & 0x10) > 0,
      isControlBatch: (attributes & 0x20) > 0,
      lastOffsetDelta: buf.readInt32BE(s + 23),
      producerId: int64String(buf, s + 43),
      producerEpoch: buf.readInt16BE(s + 51),
      firstSequence: buf.readInt32BE(s + 53),
      maxTimestamp: int64String(buf, s + 35),
      timestampType: (attributes & 0x08) > 0 ? TimestampTypes.LOG_APPEND_TIME : TimestampTypes.CREATE_TIME,
    };
    const magicByte = buf.readInt8(s + 16);
    const batchContext = { ...recordContext, magicByte };
    const { isControlBatch, maxTimestamp } = recordContext;
    const appendTime = recordContext.timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp;
    tsCache.delta = NaN;
    const lb = leanRecordsOn() ? new LeanBatch(buf, magicByte, isControlBatch, batchContext, firstTimestampNum ?? NaN, appendTime ? maxTimestamp : null) : null;
    const n = count === -1 ? 0 : count;
    const records = new Array(n);
    let p = s + 61;
    for (let r = 0; r < n; r++) {
      if (p >= end) return kafkajs(fetchDecoder);
      // record length (kafkajs's 32-bit varint decoding, as readVarInt)
      let b: number, v = 0, sh = 0;
      do { b = buf[p++]; v += (b & 0x7f) << sh; sh += 7; } while (b >= 0x80);
      const recLen = (v >>> 1) ^ -(v & 1);
      const recStart = p, recEnd = p + recLen;
      if (recLen < 0 || recEnd > end) return kafkajs(fetchDecoder);
      p = recEnd;
      const rec = decodeRecord(buf, recStart, recEnd, firstOffsetNum, firstTimestampNum, appendTime ? maxTimestamp : null, magicByte, isControlBatch, batchContext, lb);
      if (rec) records[r] = rec;
      else {
        fastCodecStats.recordKafkajs++;
        records[r] = RecordDecoder(new Decoder(buf.subarray(recStart, recEnd)), batchContext);
      }
    }
    fetchDecoder.offset = end;
    fastCodecStats.batchFast++;
    return { ...recordContext, records };
  };
}

/** The last timestamp delta of the batch being decoded and its timestamp's text. */
const tsCache = { delta: NaN, text: '' };

/**
 * One record without headers, as kafkajs's record decoder returns it; null for anything else
 * (headers, varlongs past 7 bytes, lengths below -1, sums beyond 2^53, overruns).
 */
function decodeRecord(buf: Buffer, p: number, end: number, firstOffset: number, firstTimestamp: number | null,
  appendTimestamp: string | null, magicByte: number, isControlRecord: boolean, batchContext: object, lb: LeanBatch | null): object | null {
  if (p >= end) return null;
  const attributes = (buf[p++] << 24) >> 24;
  // timestamp delta: zig-zag varlong, up to 7 bytes (49 bits) in doubles
  let b: number, z = 0, mul = 1, i = 0;
  do {
    if (++i > 7) return null;
    b = buf[p++];
    z += (b & 0x7f) * mul;
    mul *= 128;
  } while (b >= 0x80);
  const timestampDelta = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  let v = 0, sh = 0;
  do { b = buf[p++]; v += (b & 0x7f) << sh; sh += 7; } while (b >= 0x80);
  const offsetDelta = (v >>> 1) ^ -(v & 1);
  v = 0; sh = 0;
  do { b = buf[p++]; v += (b & 0x7f) << sh; sh += 7; } while (b >= 0x80);
  const keyLen = (v >>> 1) ^ -(v & 1);
  if (keyLen < -1 || p + Math.max(keyLen, 0) > end) return null;
  const keyStart = p;
  if (keyLen > 0) p += keyLen;
  v = 0; sh = 0;
  do { b = buf[p++]; v += (b & 0x7f) << sh; sh += 7; } while (b >= 0x80);
  const valueLen = (v >>> 1) ^ -(v & 1);
  if (valueLen < -1 || p + Math.max(valueLen, 0) >= end) return null;
  const valueStart = p;
  if (valueLen > 0) p += valueLen;
  // header count: 0 (or -1, an empty list to kafkajs); anything else goes to kafkajs's decoder
  const h = buf[p++];
  if ((h !== 0 && h !== 1) || p > end) return null;
  let timestamp = '';
  if (appendTimestamp !== null) timestamp = appendTimestamp;
  else {
    if (firstTimestamp === null) return null;
    if (timestampDelta !== tsCache.delta) {
      const t = firstTimestamp + timestampDelta;
      if (!Number.isSafeInteger(t)) return null;
      // records of a produce call mostly share one timestamp: one string for a run of equal ones
      // (a LeanRecord makes its text only when read)
      tsCache.delta = timestampDelta;
      tsCache.text = lb === null ? String(t) : '';
    }
    timestamp = tsCache.text;
  }
  const offset = firstOffset + offsetDelta;
  if (!Number.isSafeInteger(offset)) return null;
  if (lb !== null) return new LeanRecord(lb, attributes, timestampDelta, keyStart, keyLen, valueStart, valueLen, offset);
  return {
    magicByte,
    attributes,
    timestamp,
    offset: String(offset),
    key: keyLen === -1 ? null : buf.subarray(keyStart, keyStart + keyLen),
    value: valueLen === -1 ? null : buf.subarray(valueStart, valueStart + valueLen),
    headers: {},
    isControlRecord,
    batchContext,
  };
}

// ---------------------------------------------------------------------------------------------
// Consumer batch

const notControl = (message: Any): boolean => !message.isControlRecord;

/** Whether `keep` holds for every element (then a filter would only copy the array). */
function keepAll(a: readonly Any[], keep: (m: Any) => boolean): boolean {
  for (let i = 0; i < a.length; i++) if (!keep(a[i])) return false;
  return true;
}

export function makeBatch(Original: Any, deps: { Long: Any; filterAbortedMessages: Any }): Any {
  const { Long, filterAbortedMessages } = deps;
  // kafkajs code calls `new Batch(...)` and uses its methods; the prototype stays kafkajs's
  function Batch(this: Any, topic: string, fetchedOffset: Any, partitionData: Any): void {
    this.fetchedOffset = fetchedOffset;
    const longFetchedOffset = Long.fromValue(this.fetchedOffset);
    const { abortedTransactions, messages } = partitionData;
    this.topic = topic;
    this.partition = partitionData.partition;
    this.highWatermark = partitionData.highWatermark;
    this.rawMessages = messages;
    const from = longFetchedOffset.toNumber();
    const fromSafe = Number.isSafeInteger(from);
    // offsets are kafkajs's decimal strings; only those beyond 2^53 need BigInt
    const within = (message: Any): boolean => {
      if (fromSafe && message instanceof LeanRecord) return message.offsetNumber >= from;
      if (fromSafe && typeof message.offset === 'string') {
        const o = Number(message.offset);
        if (Number.isSafeInteger(o)) return o >= from;
      }
      return Long.fromValue(message.offset).gte(longFetchedOffset);
    };
    // The filters keep the array itself when they would keep every element, as they nearly always
    // do: two copies of every fetched batch's array were a sixth of the main thread's allocations.
    this.messagesWithinOffset = keepAll(this.rawMessages, within) ? this.rawMessages : this.rawMessages.filter(within);
    const unaborted = filterAbortedMessages({ messages: this.messagesWithinOffset, abortedTransactions });
    this.messages = keepAll(unaborted, notControl) ? unaborted : unaborted.filter(notControl);
  }
  Batch.prototype = Original.prototype;
  return Batch;
}
