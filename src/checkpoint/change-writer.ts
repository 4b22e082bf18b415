/**
 * Writes change files (the format: delta.ts): the worker's log of its join buffer's changes, and
 * the bases a compaction folds a chain into.
 */
import * as fs from 'node:fs';
import { JoineryError } from '../core/errors.js';
import type { Side } from '../state/store.js';
import { injectedFault } from './faults.js';
import { checksummer, type Checksummer } from './checksum.js';
import { dropCachedPages } from './page-cache.js';
import {
  ChangeType, CHANGE_FORMAT, fileHeader, Flag, FILE_HEADER_BYTES, RECORD_HEADER_BYTES, TWO_32, type ChangeFormat, type ChangeRecord, type FileKind,
} from './delta.js';

/** The most a version-2 record header takes (three 5-byte varints, two f64, a partition). */
const MAX_HEADER_BYTES_V2 = 8 + 15 + 16 + 2;
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
/**
 * Changes a writer keeps in memory after failed writes before it gives up: a disk full for a
 * moment is retried, a checkpoint directory gone or full for good would otherwise grow the heap
 * until the kernel's OOM killer ends the node (seen: a 3 GiB cgroup, its checkpoint directory
 * deleted, killed 3 minutes later). Giving up stops the node with the cause; a restart resumes
 * from the last checkpoint, so nothing accepted is lost.
 */
export const HELD_MAX_BYTES = 256 << 20;


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
  private heldBytes = 0;
  private readonly heldMaxBytes: number;
  private fd = -1;
  private written = 0;           // bytes safely in the file (positional writes continue here)
  private readonly hash: Checksummer | null;
  private readonly presyncBytes: number;
  private unsynced = 0;          // bytes written since the last early fdatasync was asked for
  private syncing = false;       // one in flight: it owns closing the fd if close() comes first
  private closeWhenSynced = -1;
  private readonly dropSynced: boolean;
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
   * `dropSynced`: once an early write-out is done, the file's clean pages leave the page cache
   * (page-cache.ts). A delta is read again only by a restore or a compaction, yet its pages, written
   * as fast as events arrive, pushed the join buffer's LMDB pages out of a small page cache: in a
   * 3 GiB cgroup at ~2.5 GiB buffered, the open delta files held 44–490 MB of the ~2.1 GB cache.
   */
  constructor(readonly path: string, kind: FileKind = 'delta',
    opts: { checksum?: boolean; presyncBytes?: number; format?: ChangeFormat; heldMaxBytes?: number; dropSynced?: boolean } = {}) {
    this.hash = opts.checksum ? checksummer() : null;
    this.dropSynced = opts.dropSynced === true;
    this.heldMaxBytes = opts.heldMaxBytes ?? HELD_MAX_BYTES;
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
    this.heldBytes += n;
    this.keepTail(n);
    if (!direct) this.writeHeld(); // one attempt per spill (a direct write that failed was it)
    if (this.heldBytes > this.heldMaxBytes) {
      throw new JoineryError('E_OUTPUT', `cannot write checkpoint file ${this.path}: ${this.lastError?.message ?? 'write failed'}; `
        + `${Math.round(this.heldBytes / 2 ** 20)} MiB of state changes are waiting in memory (at most ${Math.round(this.heldMaxBytes / 2 ** 20)} MiB): `
        + 'stopping; free the checkpoint directory\'s disk and restart: the node resumes from its last checkpoint', { cause: this.lastError });
    }
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
    fs.fdatasync(fd, (err) => {
      this.syncing = false;
      if (!err && this.dropSynced) dropCachedPages(this.path);
      if (this.closeWhenSynced === fd) { this.closeWhenSynced = -1; fs.close(fd, () => {}); }
    });
  }

  private writeHeld(): void {
    while (this.held.length > 0 && this.writeOut(this.held[0], this.held[0].length)) this.heldBytes -= this.held.shift()!.length;
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

  /**
   * An EVENT record whose bytes lie in a store's memory (a deferred record, see logged-store.ts):
   * the key at `keyAt` in `keySrc`, the id and then the payload at `tailAt` in `tailSrc`. Copied by
   * words, no view made per record.
   */
  eventParts(side: Side, keyGroup: number, keyHash: number, keySrc: DataView, keyAt: number, keyLen: number, ts: number,
    tailSrc: DataView, tailAt: number, idLen: number, payloadLen: number, joined: boolean, expireAtMs: number, sourcePartition: number): void {
    if (this.format !== 2) {
      const key = new Uint8Array(keySrc.buffer, keySrc.byteOffset + keyAt, keyLen);
      const id = new Uint8Array(tailSrc.buffer, tailSrc.byteOffset + tailAt, idLen);
      const payload = new Uint8Array(tailSrc.buffer, tailSrc.byteOffset + tailAt + idLen, payloadLen);
      this.recordV1(ChangeType.Event, side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, sourcePartition);
      return;
    }
    const tailLen = idLen + payloadLen;
    let p = this.head(ChangeType.Event, side, keyGroup, keyHash, keyLen, idLen, payloadLen, ts, joined, expireAtMs, sourcePartition, keyLen + tailLen);
    const dv = this.dv;
    p = keyLen <= TAIL_WORDS_MAX ? copyWordsTo(dv, p, keySrc, keyAt, keyLen) : copyView(this.buf, p, keySrc, keyAt, keyLen);
    p = tailLen <= TAIL_WORDS_MAX ? copyWordsTo(dv, p, tailSrc, tailAt, tailLen) : copyView(this.buf, p, tailSrc, tailAt, tailLen);
    this.finish(p);
  }

  mark(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.record(ChangeType.Mark, side, keyGroup, keyHash, key, ts, id, EMPTY, true, 0, 0);
  }

  expired(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.record(ChangeType.Expired, side, keyGroup, keyHash, key, ts, id, EMPTY, false, 0, 0);
  }

  private record(type: ChangeType, side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number,
    id: Uint8Array, payload: Uint8Array, joined: boolean, expireAtMs: number, sourcePartition: number): void {
    if (this.format === 1) { this.recordV1(type, side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, sourcePartition); return; }
    const keyLen = key.length, idLen = id.length, payloadLen = payload.length;
    let p = this.head(type, side, keyGroup, keyHash, keyLen, idLen, payloadLen, ts, joined, expireAtMs, sourcePartition, keyLen + idLen + payloadLen);
    const tail = this.tailFrom;
    if (tail !== null) {
      p = copyWordsTo(this.dv, p, tail, this.tailAt, keyLen + idLen + payloadLen);
    } else {
      const b = this.buf;
      p = copyBytes(b, p, key, keyLen);
      p = copyBytes(b, p, id, idLen);
      p = copyBytes(b, p, payload, payloadLen);
    }
    this.finish(p);
  }

  /** A version-2 record's header, room reserved for `tailBytes` after it; returns where the tail goes. */
  private head(type: ChangeType, side: Side, keyGroup: number, keyHash: number, keyLen: number, idLen: number, payloadLen: number,
    ts: number, joined: boolean, expireAtMs: number, sourcePartition: number, tailBytes: number): number {
    this.track(type, side, expireAtMs);
    this.reserve(MAX_HEADER_BYTES_V2 + tailBytes);
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
    return p;
  }

  /** The record that began at `used` ends at p. */
  private finish(p: number): void {
    this.bytes += p - this.used;
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

/** Copy `len` bytes of `src` at `so` into `dst` at `at` through a view (long runs: `set` beats words); returns the end. */
function copyView(dst: Buffer, at: number, src: DataView, so: number, len: number): number {
  dst.set(new Uint8Array(src.buffer, src.byteOffset + so, len), at);
  return at + len;
}

/** Unsigned LEB128 of `x` (an integer in [0, 2^32)) at `at`; returns the end. */
function putVarint(dst: Buffer, at: number, x: number): number {
  while (x >= 0x80) { dst[at++] = (x & 0x7f) | 0x80; x >>>= 7; }
  dst[at] = x;
  return at + 1;
}

