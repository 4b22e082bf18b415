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
 */
import * as fs from 'node:fs';
import type { Side } from '../state/store.js';
import { injectedFault } from './faults.js';
import { checksummer, type Checksummer } from './checksum.js';

export const enum ChangeType { Event = 1, Mark = 2, Expired = 3 }
const MAGIC = Buffer.from('JNRYDLT', 'latin1');
/** The record format written now, and those read (the version byte after the magic). */
export const CHANGE_FORMAT = 2;
export const CHANGE_FORMATS_READ = [1, 2] as const;
export type ChangeFormat = (typeof CHANGE_FORMATS_READ)[number];
export const FILE_HEADER_BYTES = 16;
/** Version 1's fixed record header. */
export const RECORD_HEADER_BYTES = 40;
/** The most a version-2 record header takes (three 5-byte varints, two f64, a partition). */
const MAX_HEADER_BYTES_V2 = 8 + 15 + 16 + 2;
const enum Flag { Side = 1, Joined = 2, TsF64 = 4, ExpireF64 = 8, Partition = 16, Reserved = 0xe0 }
const TWO_32 = 4294967296;
const TWO_48 = 281474976710656;
const TWO_MINUS_32 = 1 / TWO_32, TWO_MINUS_16 = 1 / 65536;
const EXPIRE_DELTA_MAX = 2147483648;
/** One write per MiB: 64 KiB (to stay in L2) cost the kernel ~43 ns per 130-byte record instead of ~28, 4 MiB ×5. */
const WRITE_BUFFER_BYTES = 1 << 20;
const PAGE_BYTES = 4096;
/** The longest key + id + payload eventFrom copies by words. */
const TAIL_WORDS_MAX = 160;
/**
 * A delta file asks the kernel to write its pages out (fdatasync on libuv's pool, not waited for)
 * each time this much more is in it. Otherwise nothing reaches the disk before the checkpoint's
 * fsync (dirty pages age 30 s by default), which then writes a whole interval at once — and the
 * last checkpoint of a bounded run waits for that.
 */
const PRESYNC_BYTES = 16 << 20;

export type FileKind = 'delta' | 'base';

export function fileHeader(kind: FileKind, format: ChangeFormat = CHANGE_FORMAT): Buffer {
  const h = Buffer.alloc(FILE_HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[7] = format;
  h.writeUInt32LE(kind === 'base' ? 1 : 0, 8);
  return h;
}

/**
 * Appends change records to one file through a 1 MiB buffer (one write per MiB, not per record).
 * The file is a staged file of the CheckpointStorage port (storage.ts): local disk by contract, so
 * these synchronous writes are the whole cost on the worker's hot path; the coordinator publishes it.
 * A failed write (disk full) keeps the bytes: they are retried, at the same file position, by the
 * next flush, so a change is never lost while the process lives; `complete` says whether
 * everything appended is in the file.
 */
export class ChangeWriter {
  private buf = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private used = 0;
  private held: Buffer[] = [];   // buffers not yet in the file, in order (after a failed write)
  private fd = -1;
  private written = 0;           // bytes safely in the file (positional writes continue here)
  private readonly hash: Checksummer | null;
  private readonly presyncBytes: number;
  private unsynced = 0;          // bytes written since the last early fdatasync was asked for
  private syncing = false;       // one in flight: it owns closing the fd if close() comes first
  private closeWhenSynced = -1;
  bytes = 0;          // appended so far, header included
  records = 0;
  lastError: Error | null = null;
  readonly format: ChangeFormat;
  /** The latest expireAt of the EVENT records per side (−Infinity: none), and how many MARK/EXPIRED records. */
  private expireMax0 = -Infinity;
  private expireMax1 = -Infinity;
  private notes = 0;

  /**
   * With `checksum`, the file's checksum (checksum.ts) is computed as it is written (digest()), sparing a read-back.
   * `presyncBytes` (default: PRESYNC_BYTES for deltas, which a worker fills while it runs on; 0 for
   * bases, written in one go and then fsynced): write the pages out early, in the background.
   * `format` 1 writes the old records (tests of reading files written before version 2).
   */
  constructor(readonly path: string, kind: FileKind = 'delta', opts: { checksum?: boolean; presyncBytes?: number; format?: ChangeFormat } = {}) {
    this.hash = opts.checksum ? checksummer() : null;
    this.presyncBytes = opts.presyncBytes ?? (kind === 'delta' ? PRESYNC_BYTES : 0);
    this.format = opts.format ?? CHANGE_FORMAT;
    this.append(fileHeader(kind, this.format), 0, FILE_HEADER_BYTES);
  }

  /**
   * When the file holds only EVENT records: the latest expireAt per side (null: no event of that
   * side), so a checkpoint can drop the whole file once every event in it has expired
   * (file-expiry.ts). Undefined when it also holds MARK or EXPIRED records, or a bound is not finite.
   */
  expireAtMaxMs(): [number | null, number | null] | undefined {
    const a = this.expireMax0, b = this.expireMax1;
    if (this.notes > 0 || a === Infinity || b === Infinity || Number.isNaN(a) || Number.isNaN(b)) return undefined;
    return [a === -Infinity ? null : a, b === -Infinity ? null : b];
  }

  private track(type: ChangeType, side: Side, expireAtMs: number): void {
    if (type !== ChangeType.Event) this.notes++;
    else if (side === 0) { if (!(expireAtMs <= this.expireMax0)) this.expireMax0 = expireAtMs; } else if (!(expireAtMs <= this.expireMax1)) this.expireMax1 = expireAtMs;
  }

  /** `<algorithm>:<hex>` of everything appended; only with `checksum`, after a successful close(). */
  digest(): string {
    if (!this.hash || !this.complete) throw new Error(`${this.path}: no checksum (not computed, or the file is incomplete)`);
    return this.hash.digest();
  }

  private reserve(n: number): void {
    if (this.used + n <= this.buf.length) return;
    this.spill(false);
    if (this.used + n > this.buf.length) {
      // The unaligned tail a spill left at the start moves along.
      const grown = Buffer.allocUnsafe(Math.max(this.used + n, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
      this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    }
  }

  private append(src: Uint8Array, from: number, len: number): void {
    this.reserve(len);
    this.buf.set(src.subarray(from, from + len), this.used);
    this.used += len;
    this.bytes += len;
  }

  /**
   * Write the buffer out and reuse it. Only a failed write copies it (into the held list, for the
   * next flush): the hot path writes each MiB straight from the one buffer.
   */
  private spill(final: boolean): void {
    if (this.used === 0) return;
    const direct = this.held.length === 0;
    // Until the last one, writes end on a page boundary (the rest waits at the buffer's start): a
    // write into a recycled file (stage()) whose pages the kernel has evicted then never has to
    // read a page back to change part of it.
    let n = this.used;
    if (direct && !final) { const cut = n - ((this.written + n) & (PAGE_BYTES - 1)); if (cut > 0) n = cut; }
    this.hash?.update(this.buf.subarray(0, n));
    if (direct && this.writeOut(this.buf, n)) { this.keepTail(n); return; }
    this.held.push(Buffer.from(this.buf.subarray(0, n)));
    this.keepTail(n);
    if (!direct) this.writeHeld(); // one attempt per spill (a direct write that failed was it)
  }

  /** Drop the first `n` bytes of the buffer (written or held), keeping the rest at its start. */
  private keepTail(n: number): void {
    if (n < this.used) this.buf.copyWithin(0, n, this.used);
    this.used -= n;
  }

  /** Write `len` bytes of `b` at the end of the file; false (lastError set) when that failed. */
  private writeOut(b: Buffer, len: number): boolean {
    try {
      // No O_TRUNC: the staged file may be a recycled one, overwritten in place (close() cuts it).
      if (this.fd < 0) this.fd = fs.openSync(this.path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
      injectedFault('delta-write', this.path);
      let off = 0;
      while (off < len) off += fs.writeSync(this.fd, b, off, len - off, this.written + off);
      this.written += len;
      this.lastError = null;
      this.unsynced += len;
      if (this.presyncBytes > 0 && this.unsynced >= this.presyncBytes && !this.syncing) this.presync();
      return true;
    } catch (e) {
      // A partial write is rewritten whole at the same position by the retry.
      this.lastError = e as Error;
      return false;
    }
  }

  private presync(): void {
    this.syncing = true;
    this.unsynced = 0;
    const fd = this.fd;
    // Only the early write-out: the checkpoint's own fsync (side pool) is what makes it durable.
    fs.fdatasync(fd, () => {
      this.syncing = false;
      if (this.closeWhenSynced === fd) { this.closeWhenSynced = -1; fs.close(fd, () => {}); }
    });
  }

  private writeHeld(): void {
    while (this.held.length > 0 && this.writeOut(this.held[0], this.held[0].length)) this.held.shift();
  }

  event(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number, sourcePartition = 0): void {
    this.record(ChangeType.Event, side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, sourcePartition);
  }

  /**
   * An EVENT record whose key, id and payload also lie back to back in `src` at `srcAt` (a worker's
   * ring frame holds them so): the record's tail is one copy, by words, from there, rather than
   * three copies of the views (two byte loops and a `set`): 112 → 86 ns per `bench` record, alone.
   * The views give the lengths; the bytes must be the same. Long tails go the old way (`set`
   * beats words beyond ~160 bytes).
   */
  eventFrom(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number, sourcePartition: number, src: DataView, srcAt: number): void {
    if (this.format !== 2 || key.length + id.length + payload.length > TAIL_WORDS_MAX) { this.record(ChangeType.Event, side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, sourcePartition); return; }
    this.tailFrom = src;
    this.tailAt = srcAt;
    this.record(ChangeType.Event, side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, sourcePartition);
    this.tailFrom = null;
  }

  /** Set by eventFrom for the record being written: where its key, id and payload are, contiguous. */
  private tailFrom: DataView | null = null;
  private tailAt = 0;

  mark(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.record(ChangeType.Mark, side, keyGroup, keyHash, key, ts, id, EMPTY, true, 0, 0);
  }

  expired(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.record(ChangeType.Expired, side, keyGroup, keyHash, key, ts, id, EMPTY, false, 0, 0);
  }

  private record(type: ChangeType, side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number,
    id: Uint8Array, payload: Uint8Array, joined: boolean, expireAtMs: number, sourcePartition: number): void {
    if (this.format === 1) { this.recordV1(type, side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, sourcePartition); return; }
    this.track(type, side, expireAtMs);
    const keyLen = key.length, idLen = id.length, payloadLen = payload.length;
    this.reserve(MAX_HEADER_BYTES_V2 + keyLen + idLen + payloadLen);
    const b = this.buf, dv = this.dv, o = this.used;
    const event = type === ChangeType.Event;
    let flags = side | (joined ? Flag.Joined : 0);
    b[o] = type;
    dv.setUint16(o + 2, keyGroup, true);
    dv.setUint32(o + 4, keyHash >>> 0, true);
    // Lengths below 128 (nearly all) are one byte; no call.
    let p = o + 8;
    if (keyLen < 0x80) b[p++] = keyLen; else p = putVarint(b, p, keyLen);
    if (idLen < 0x80) b[p++] = idLen; else p = putVarint(b, p, idLen);
    if (event) { if (payloadLen < 0x80) b[p++] = payloadLen; else p = putVarint(b, p, payloadLen); }
    // Millisecond timestamps are integers below 2^48: 6 bytes, as three u16 (each part a small
    // integer, so no slow double-to-int32 conversion). Anything else (fractions, negative, 0 and
    // -0) keeps its f64.
    if (ts >= 1 && ts < TWO_48 && Math.floor(ts) === ts) {
      const hi = Math.floor(ts * TWO_MINUS_32), rest = ts - hi * TWO_32, mid = Math.floor(rest * TWO_MINUS_16);
      dv.setUint16(p, rest - mid * 65536, true);
      dv.setUint16(p + 2, mid, true);
      dv.setUint16(p + 4, hi, true);
      p += 6;
    } else {
      flags |= Flag.TsF64;
      dv.setFloat64(p, ts, true);
      p += 8;
    }
    if (event) {
      // expireAt is ts plus a side's window bound: a varint of the difference when it reads back exactly.
      const d = expireAtMs - ts;
      if (d >= 0 && d < EXPIRE_DELTA_MAX && Math.floor(d) === d && ts + d === expireAtMs) {
        if (d < 0x80) b[p++] = d; else p = putVarint(b, p, d);
      } else { flags |= Flag.ExpireF64; dv.setFloat64(p, expireAtMs, true); p += 8; }
      if (sourcePartition !== 0) { flags |= Flag.Partition; dv.setUint16(p, sourcePartition, true); p += 2; }
    }
    b[o + 1] = flags;
    const tail = this.tailFrom;
    if (tail !== null) {
      p = copyWordsTo(dv, p, tail, this.tailAt, keyLen + idLen + payloadLen);
    } else {
      p = copyBytes(b, p, key, keyLen);
      p = copyBytes(b, p, id, idLen);
      p = copyBytes(b, p, payload, payloadLen);
    }
    this.bytes += p - o;
    this.used = p;
    this.records++;
  }

  private recordV1(type: ChangeType, side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number,
    id: Uint8Array, payload: Uint8Array, joined: boolean, expireAtMs: number, sourcePartition: number): void {
    this.track(type, side, expireAtMs);
    const keyLen = key.length, idLen = id.length, payloadLen = payload.length;
    const n = RECORD_HEADER_BYTES + keyLen + idLen + payloadLen;
    this.reserve(n);
    const b = this.buf, dv = this.dv, o = this.used;
    b[o] = type; b[o + 1] = side; b[o + 2] = joined ? 1 : 0; b[o + 3] = 0;
    dv.setUint16(o + 4, keyGroup, true);
    dv.setUint16(o + 6, keyLen, true);
    dv.setUint32(o + 8, keyHash >>> 0, true);
    dv.setUint16(o + 12, idLen, true);
    dv.setUint16(o + 14, sourcePartition, true);
    dv.setUint32(o + 16, payloadLen, true);
    dv.setUint32(o + 20, 0, true);
    dv.setFloat64(o + 24, ts, true);
    dv.setFloat64(o + 32, expireAtMs, true);
    let p = o + RECORD_HEADER_BYTES;
    p = copyBytes(b, p, key, keyLen);
    p = copyBytes(b, p, id, idLen);
    copyBytes(b, p, payload, payloadLen);
    this.used = o + n;
    this.bytes += n;
    this.records++;
  }

  /**
   * Append a record read from another change file as it is, with its joined flag set to `r.joined`;
   * a record of another format is encoded afresh (forEachChange gives those their views).
   */
  copy(r: ChangeRecord): void {
    if (r.format !== this.format) {
      this.record(r.type, r.side, r.keyGroup, r.keyHash, r.key, r.ts, r.id, r.payload, r.joined, r.expireAtMs, r.sourcePartition);
      return;
    }
    this.track(r.type, r.side, r.expireAtMs);
    const n = r.end - r.start;
    this.reserve(n);
    this.buf.set(r.buf.subarray(r.start, r.end), this.used);
    if (this.format === 1) this.buf[this.used + 2] = r.joined ? 1 : 0;
    else this.buf[this.used + 1] = (this.buf[this.used + 1] & ~Flag.Joined) | (r.joined ? Flag.Joined : 0);
    this.used += n;
    this.bytes += n;
    this.records++;
  }

  /** Write out everything appended so far. Returns true when the file holds all of it. */
  flush(): boolean {
    this.spill(true);
    if (this.held.length > 0) this.writeHeld();
    return this.complete;
  }

  /** Cut the file at what was written: a recycled file holds older bytes past it. False (lastError set) when that failed. */
  private cut(): boolean {
    if (this.fd < 0) return true;
    try {
      fs.ftruncateSync(this.fd, this.written);
      this.lastError = null;
      return true;
    } catch (e) {
      this.lastError = e as Error;
      return false;
    }
  }

  /** True when every appended byte is in the file. */
  get complete(): boolean {
    return this.held.length === 0 && this.used === 0 && this.lastError === null;
  }

  /** Flush and close; returns whether the file is complete (if not, keep the writer and retry). */
  close(): boolean {
    this.flush();
    const ok = this.held.length === 0 && this.used === 0 && this.cut();
    if (ok && this.fd >= 0) {
      // An fdatasync still running on this fd closes it when done (the fd must not be reused under it).
      if (this.syncing) this.closeWhenSynced = this.fd; else fs.closeSync(this.fd);
      this.fd = -1;
    }
    return ok;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Copy `src` into `dst` at `at`; returns the end. Short runs byte by byte: for the dozen bytes of a
 * key or an id, TypedArray#set's call into the runtime costs more than the copy.
 */
function copyBytes(dst: Buffer, at: number, src: Uint8Array, len: number): number {
  if (len > 32) dst.set(src, at);
  else for (let i = 0; i < len; i++) dst[at + i] = src[i];
  return at + len;
}

/**
 * Copy `len` bytes of `src` at `so` to `dst` at `at`, 4 bytes at a time (no view to make, no call
 * into the runtime); returns the end. The regions do not overlap (the change buffer is the
 * writer's own).
 */
function copyWordsTo(dst: DataView, at: number, src: DataView, so: number, len: number): number {
  let i = 0;
  for (; i + 4 <= len; i += 4) dst.setInt32(at + i, src.getInt32(so + i, true), true);
  for (; i < len; i++) dst.setUint8(at + i, src.getUint8(so + i));
  return at + len;
}

/** Unsigned LEB128 of `x` (an integer in [0, 2^32)) at `at`; returns the end. */
function putVarint(dst: Buffer, at: number, x: number): number {
  while (x >= 0x80) { dst[at++] = (x & 0x7f) | 0x80; x >>>= 7; }
  dst[at] = x;
  return at + 1;
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
  const format = formatOf(buf, name);
  const r: ChangeRecord = { type: ChangeType.Event, side: 0, joined: false, keyGroup: 0, keyHash: 0, ts: 0, expireAtMs: 0, sourcePartition: 0, format, key: buf, id: buf, payload: buf, buf, start: 0, end: 0 };
  if (format === 1) return forEachV1(buf, name, kgFrom, kgTo, visit, start, maxRecords, r);
  const len = buf.length;
  let o = start;
  let n = 0;
  while (o < len && n < maxRecords) {
    n++;
    const type = buf[o];
    if (type < ChangeType.Event || type > ChangeType.Expired) throw new CorruptChangeFile(`${name}: bad record type ${type} at byte ${o}`);
    if (o + 8 > len) throw truncated(name, o);
    const flags = buf[o + 1];
    if ((flags & Flag.Reserved) !== 0) throw new CorruptChangeFile(`${name}: bad record flags ${flags} at byte ${o}`);
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

const truncated = (name: string, o: number) => new CorruptChangeFile(`${name}: truncated record at byte ${o}`);

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
  throw new CorruptChangeFile(`${name}: bad length at byte ${o}`);
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
    if (type < ChangeType.Event || type > ChangeType.Expired) throw new CorruptChangeFile(`${name}: bad record type ${type} at byte ${o}`);
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
