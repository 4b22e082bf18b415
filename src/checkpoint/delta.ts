/**
 * State change files: what a worker's join buffer gained, and which buffered events changed,
 * since the previous checkpoint (a delta), or everything live at one checkpoint (a base).
 *
 * The state of a worker is a pure function of three kinds of change, so logging them is enough
 * to rebuild it on any number of workers (records carry their key group):
 *   EVENT    an event was buffered (payload included; `joined` set when it joined on arrival);
 *   MARK     a buffered event of an outer side joined a later partner (its joined bit);
 *   EXPIRED  an event of an outer side left the buffer (its unmatched row, if any, was emitted).
 * Inner sides need neither MARK nor EXPIRED: an event past its expiry can never join a future
 * event (that event would be late), so restoring it anyway only costs space until the next
 * watermark removes it again.
 *
 * File: 16-byte header `JNRYDLT` + u8 version | u32 kind (0 delta, 1 base) | u32 reserved; then
 * records. Version 2 (written now) records, little-endian:
 *   u8 type | u8 flags | u16 keyGroup | u32 keyHash | varint keyLen | varint idLen |
 *   [EVENT: varint payloadLen] | ts | [EVENT: expireAt] | [EVENT, flag: u16 sourcePartition+1] | key | id | payload
 * flags: bit 0 side, bit 1 joined, bit 2 ts is an f64 (else a u48: ts is an integer in [1, 2^48),
 * as millisecond timestamps are), bit 3 expireAt is an f64 (else a varint: expireAt − ts, an
 * integer in [0, 2^31), as a join window's bound is), bit 4 a source partition follows. That is 20
 * bytes of header for a typical event where version 1 spent 40 — a sixth of each record on `bench`
 * data, and the workers' cost of a change file is per byte (the kernel's copy into the page cache,
 * then the side thread's read-back and checksum).
 * Version 1 (still read; written only with `format: 1`): a fixed 40-byte header
 *   u8 type | u8 side | u8 joined | u8 0 | u16 keyGroup | u16 keyLen | u32 keyHash | u16 idLen |
 *   u16 sourcePartition+1 | u32 payloadLen | u32 0 | f64 ts | f64 expireAtMs | key | id | payload
 * sourcePartition (EVENT records): the Kafka partition the event came from, plus one (0: another
 * source, or a file written before it existed) — what lets one partition's state be taken out of
 * a checkpoint when the partition moves to another member of the consumer group.
 * Integrity is checked with the file's checksum (checksum.ts) recorded in the manifest, not per record.
 * This module holds the format and its reader; change-writer.ts writes it.
 */
import type { Side } from '../state/store.js';

export const enum ChangeType { Event = 1, Mark = 2, Expired = 3 }
const MAGIC = Buffer.from('JNRYDLT', 'latin1');
/** The record format written now, and those read (the version byte after the magic). */
export const CHANGE_FORMAT = 2;
export const CHANGE_FORMATS_READ = [1, 2] as const;
export type ChangeFormat = (typeof CHANGE_FORMATS_READ)[number];
export const FILE_HEADER_BYTES = 16;
/** Version 1's fixed record header. */
export const RECORD_HEADER_BYTES = 40;
export const enum Flag { Side = 1, Joined = 2, TsF64 = 4, ExpireF64 = 8, Partition = 16, Reserved = 0xe0 }
export const TWO_32 = 4294967296;

export type FileKind = 'delta' | 'base';

export function fileHeader(kind: FileKind, format: ChangeFormat = CHANGE_FORMAT): Buffer {
  const h = Buffer.alloc(FILE_HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[7] = format;
  h.writeUInt32LE(kind === 'base' ? 1 : 0, 8);
  return h;
}

/** One decoded change record; byte fields are views into the file buffer. */
export interface ChangeRecord {
  type: ChangeType;
  side: Side;
  joined: boolean;
  keyGroup: number;
  keyHash: number;
  ts: number;
  expireAtMs: number;
  /** Kafka partition + 1 (0: none recorded). */
  sourcePartition: number;
  /** The file's record format (its bytes are copied as they are only into a file of the same). */
  format: ChangeFormat;
  key: Uint8Array;
  id: Uint8Array;
  payload: Uint8Array;
  /** The whole record: buf[start, end). */
  buf: Buffer;
  start: number;
  end: number;
}

export class CorruptChangeFile extends Error {}

/** A record cut short by the end of the bytes at hand (`at`: where it starts). */
class Truncated extends CorruptChangeFile {
  constructor(name: string, readonly at: number) {
    super(`${name}: truncated record at byte ${byteBase + at}`);
  }
}

/** File offset of the bytes being parsed (forEachChangeIn: a chunk's), for error messages. */
let byteBase = 0;

/** Check the header; returns the kind. */
export function checkHeader(buf: Buffer, name: string): FileKind {
  if (buf.length < FILE_HEADER_BYTES || !buf.subarray(0, 7).equals(MAGIC)) {
    throw new CorruptChangeFile(`${name}: not a joinery state file (bad header)`);
  }
  formatOf(buf, name);
  return buf.readUInt32LE(8) === 1 ? 'base' : 'delta';
}

function formatOf(buf: Buffer, name: string): ChangeFormat {
  const v = buf[7];
  if (!(CHANGE_FORMATS_READ as readonly number[]).includes(v)) {
    throw new CorruptChangeFile(`${name}: change-file format ${v}, this joinery reads ${CHANGE_FORMATS_READ.join(', ')}`);
  }
  return v as ChangeFormat;
}

/**
 * Visit the records of a change file whose key group lies in [kgFrom, kgTo), starting at byte
 * `start` and stopping after `maxRecords` records have been read; returns where it stopped
 * (buf.length at the end), so a caller can cut the work into transactions. One reused record
 * object; its views are valid during the call only. Without `views`, key, id and payload are not
 * set (a caller copying whole records saves three allocations per record) — except for records of
 * an older format, which a copy encodes afresh.
 */
export function forEachChange(buf: Buffer, name: string, kgFrom: number, kgTo: number, visit: (r: ChangeRecord) => void,
  start = FILE_HEADER_BYTES, maxRecords = Infinity, views = true): number {
  if (start === FILE_HEADER_BYTES) checkHeader(buf, name);
  return parse(buf, name, kgFrom, kgTo, visit, start, maxRecords, views, formatOf(buf, name));
}

function parse(buf: Buffer, name: string, kgFrom: number, kgTo: number, visit: (r: ChangeRecord) => void,
  start: number, maxRecords: number, views: boolean, format: ChangeFormat): number {
  const r: ChangeRecord = { type: ChangeType.Event, side: 0, joined: false, keyGroup: 0, keyHash: 0, ts: 0, expireAtMs: 0, sourcePartition: 0, format, key: buf, id: buf, payload: buf, buf, start: 0, end: 0 };
  if (format === 1) return forEachV1(buf, name, kgFrom, kgTo, visit, start, maxRecords, r);
  const len = buf.length;
  let o = start;
  let n = 0;
  while (o < len && n < maxRecords) {
    n++;
    const type = buf[o];
    if (type < ChangeType.Event || type > ChangeType.Expired) throw new CorruptChangeFile(`${name}: bad record type ${type} at byte ${byteBase + o}`);
    if (o + 8 > len) throw truncated(name, o);
    const flags = buf[o + 1];
    if ((flags & Flag.Reserved) !== 0) throw new CorruptChangeFile(`${name}: bad record flags ${flags} at byte ${byteBase + o}`);
    const event = type === ChangeType.Event;
    let p = o + 8;
    // Lengths below 128 (nearly all) are one byte.
    let keyLen = buf[p];
    if (keyLen < 0x80) p++; else { keyLen = getVarint(buf, p, name, o); p = varintEnd; }
    if (p >= len) throw truncated(name, o);
    let idLen = buf[p];
    if (idLen < 0x80) p++; else { idLen = getVarint(buf, p, name, o); p = varintEnd; }
    let payloadLen = 0;
    if (event) {
      if (p >= len) throw truncated(name, o);
      payloadLen = buf[p];
      if (payloadLen < 0x80) p++; else { payloadLen = getVarint(buf, p, name, o); p = varintEnd; }
    }
    let ts: number;
    if ((flags & Flag.TsF64) === 0) {
      if (p + 6 > len) throw truncated(name, o);
      ts = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
      ts += (buf[p + 4] | (buf[p + 5] << 8)) * TWO_32;
      p += 6;
    } else {
      if (p + 8 > len) throw truncated(name, o);
      ts = buf.readDoubleLE(p);
      p += 8;
    }
    let expireAtMs = 0, sourcePartition = 0;
    if (event) {
      if ((flags & Flag.ExpireF64) === 0) {
        if (p >= len) throw truncated(name, o);
        let d = buf[p];
        if (d < 0x80) p++; else { d = getVarint(buf, p, name, o); p = varintEnd; }
        expireAtMs = ts + d;
      } else {
        if (p + 8 > len) throw truncated(name, o);
        expireAtMs = buf.readDoubleLE(p);
        p += 8;
      }
      if ((flags & Flag.Partition) !== 0) {
        if (p + 2 > len) throw truncated(name, o);
        sourcePartition = buf[p] | (buf[p + 1] << 8);
        p += 2;
      }
    }
    const end = p + keyLen + idLen + payloadLen;
    if (end > len) throw truncated(name, o);
    const kg = buf[o + 2] | (buf[o + 3] << 8);
    if (kg >= kgFrom && kg < kgTo) {
      r.type = type; r.side = (flags & Flag.Side) as Side; r.joined = (flags & Flag.Joined) !== 0; r.keyGroup = kg;
      r.keyHash = (buf[o + 4] | (buf[o + 5] << 8) | (buf[o + 6] << 16) | (buf[o + 7] << 24)) >>> 0;
      r.sourcePartition = sourcePartition; r.ts = ts; r.expireAtMs = expireAtMs;
      r.start = o; r.end = end;
      if (views) {
        // Plain views, not Buffer#subarray: its species lookup costs more than the rest of the record.
        const ab = buf.buffer, at = buf.byteOffset;
        r.key = new Uint8Array(ab, at + p, keyLen); r.id = new Uint8Array(ab, at + p + keyLen, idLen); r.payload = new Uint8Array(ab, at + p + keyLen + idLen, payloadLen);
      }
      visit(r);
    }
    o = end;
  }
  return o;
}

const truncated = (name: string, o: number) => new Truncated(name, o);

/**
 * forEachChange over a chunk of a file (bytes from file offset `base`, records from `start`, the
 * file's format given): returns where it stopped. With `more` (the file goes on past the chunk) a
 * record cut by the chunk's end is not an error: the offset returned is its start, for the next
 * chunk. fold.ts reads files this way so that a restore holds one chunk, not a whole file.
 */
export function forEachChangeIn(buf: Buffer, name: string, kgFrom: number, kgTo: number, visit: (r: ChangeRecord) => void,
  start: number, maxRecords: number, views: boolean, format: ChangeFormat, base: number, more: boolean): number {
  byteBase = base;
  try {
    return parse(buf, name, kgFrom, kgTo, visit, start, maxRecords, views, format);
  } catch (e) {
    if (more && e instanceof Truncated) return e.at;
    throw e;
  } finally {
    byteBase = 0;
  }
}

/** The format of a file whose first bytes (at least FILE_HEADER_BYTES) are `head`; checks the header. */
export function formatOfHeader(head: Buffer, name: string): ChangeFormat {
  checkHeader(head, name);
  return formatOf(head, name);
}

/** Where the last getVarint ended (a second return value without an allocation). */
let varintEnd = 0;

/** A varint of at most 5 bytes (a value below 2^32) at `p`, of the record at `o`. */
function getVarint(buf: Buffer, p: number, name: string, o: number): number {
  let x = 0, mul = 1;
  for (let i = 0; i < 5; i++) {
    if (p >= buf.length) throw truncated(name, o);
    const b = buf[p++];
    x += (b & 0x7f) * mul;
    if (b < 0x80) { varintEnd = p; return x; }
    mul *= 128;
  }
  throw new CorruptChangeFile(`${name}: bad length at byte ${byteBase + o}`);
}

/** Version 1: fixed 40-byte headers. Its records always get views (a copy into a version-2 file encodes them). */
function forEachV1(buf: Buffer, name: string, kgFrom: number, kgTo: number, visit: (r: ChangeRecord) => void,
  start: number, maxRecords: number, r: ChangeRecord): number {
  let o = start;
  let n = 0;
  while (o < buf.length && n < maxRecords) {
    n++;
    if (o + RECORD_HEADER_BYTES > buf.length) throw truncated(name, o);
    const type = buf[o];
    if (type < ChangeType.Event || type > ChangeType.Expired) throw new CorruptChangeFile(`${name}: bad record type ${type} at byte ${byteBase + o}`);
    const keyLen = buf.readUInt16LE(o + 6), idLen = buf.readUInt16LE(o + 12), payloadLen = buf.readUInt32LE(o + 16);
    const end = o + RECORD_HEADER_BYTES + keyLen + idLen + payloadLen;
    if (end > buf.length) throw truncated(name, o);
    const kg = buf.readUInt16LE(o + 4);
    if (kg >= kgFrom && kg < kgTo) {
      r.type = type; r.side = buf[o + 1] as Side; r.joined = buf[o + 2] === 1; r.keyGroup = kg;
      r.keyHash = buf.readUInt32LE(o + 8); r.sourcePartition = buf.readUInt16LE(o + 14); r.ts = buf.readDoubleLE(o + 24); r.expireAtMs = buf.readDoubleLE(o + 32);
      r.start = o; r.end = end;
      const ab = buf.buffer, k0 = buf.byteOffset + o + RECORD_HEADER_BYTES;
      r.key = new Uint8Array(ab, k0, keyLen); r.id = new Uint8Array(ab, k0 + keyLen, idLen); r.payload = new Uint8Array(ab, k0 + keyLen + idLen, payloadLen);
      visit(r);
    }
    o = end;
  }
  return o;
}
