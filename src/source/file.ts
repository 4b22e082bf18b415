import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { JoineryError } from '../core/errors.js';
import type { Side } from '../state/store.js';
import type { FileIdentity, SourcePosition } from '../checkpoint/manifest.js';
import { sniffFormat } from './sniff.js';
import type { PartitionRef, RecordBatch, Source } from './source.js';

const READ_BYTES = 1 << 20;
const MAX_RECORDS = 4096;
/** FlatBuffers files are size-prefixed: u32 little-endian length before each record. */
const FLAT_PREFIX_BYTES = 4;
/** Bytes hashed at the start of the file and just before a checkpoint position (FileIdentity). */
const IDENTITY_BYTES = 64 * 1024;

function sha256Range(fd: number, from: number, to: number): string {
  const b = Buffer.allocUnsafe(to - from);
  let n = 0;
  while (n < b.length) {
    const r = fs.readSync(fd, b, n, b.length - n, from + n);
    if (r === 0) break;
    n += r;
  }
  return createHash('sha256').update(b.subarray(0, n)).digest('hex');
}

/** The identity of the bytes of `fd` before `byte` (`head`: the first bytes' hash when already known). */
export function fileIdentity(fd: number, byte: number, head?: { bytes: number; sha256: string }): FileIdentity {
  const headBytes = Math.min(byte, IDENTITY_BYTES);
  const headSha256 = head && head.bytes === headBytes ? head.sha256 : sha256Range(fd, 0, headBytes);
  const tailBytes = Math.min(byte, IDENTITY_BYTES);
  return { sizeBytes: fs.fstatSync(fd).size, headBytes, headSha256, tailBytes, tailSha256: sha256Range(fd, byte - tailBytes, byte) };
}

/**
 * One file, one partition. NDJSON: each record is one line including its newline (the router trims
 * it; blank lines are skipped, so line numbers in error reports stay exact). FlatBuffers: records
 * are size-prefixed. Reads 1 MiB at a time; a batch is a view into the read buffer, valid until
 * the next call.
 */
export class FileSource implements Source {
  readonly name: string;
  readonly partitions: readonly PartitionRef[];
  private fd: number;
  private buf = Buffer.allocUnsafe(READ_BYTES * 2);
  private start = 0;       // first unconsumed byte in buf
  private end = 0;         // end of valid bytes in buf
  private eof = false;
  private line = 1;        // 1-based line number (or record index) of buf[start]
  private bytePosition = 0; // file offset of buf[start]
  private readonly offsets = new Uint32Array(MAX_RECORDS + 1);
  private readPos = 0;     // file offset of buf[end]
  private head: { bytes: number; sha256: string } | undefined;

  /**
   * `start`: resume at a checkpoint's position (byte offset and line number of the next record);
   * with its `identity`, the file must hold the same bytes before it as when it was taken.
   */
  constructor(readonly path: string, readonly side: Side, readonly format: 'json' | 'flatbuffers', start?: { byte: number; line: number; identity?: FileIdentity }) {
    this.name = `file:${path}`;
    this.partitions = [{ side, partition: 0 }];
    try {
      this.fd = fs.openSync(path, 'r');
      if (!fs.fstatSync(this.fd).isFile()) throw new Error('not a regular file');
    } catch (e) {
      throw new JoineryError('E_INPUT', `cannot read ${side === 0 ? 'left' : 'right'} input ${path}: ${(e as Error).message}`);
    }
    sniffFormat(this.fd, path, side, format);
    if (start) {
      const size = fs.fstatSync(this.fd).size;
      const sideName = side === 0 ? 'left' : 'right';
      const what = (why: string) => new JoineryError('E_CHECKPOINT', `${sideName} input ${path} is not the file the checkpoint read: ${why}. ` +
        `Resuming would join from the wrong place. Give the original file back; or start over with a new --checkpoint-dir (and a new output); or rebuild with --rebuild-from TIME --resume-at (see README, Rebuild)`);
      if (start.byte > size) throw what(`it has ${size} bytes but the checkpoint resumes it at byte ${start.byte} (replaced or truncated)`);
      const id = start.identity;
      if (id) {
        const now = fileIdentity(this.fd, start.byte);
        if (now.headSha256 !== id.headSha256 || now.tailSha256 !== id.tailSha256) {
          throw what(`its bytes before the resume position (byte ${start.byte}) differ from those the checkpoint recorded (${id.sizeBytes} bytes then, ${size} now: replaced, edited or prepended to)`);
        }
        this.head = { bytes: now.headBytes, sha256: now.headSha256 };
      }
      this.readPos = this.bytePosition = start.byte;
      this.line = start.line;
    }
  }

  checkpointPosition(): SourcePosition {
    const identity = fileIdentity(this.fd, this.bytePosition, this.head);
    if (identity.headBytes === IDENTITY_BYTES) this.head = { bytes: identity.headBytes, sha256: identity.headSha256 };
    return { kind: 'file', name: this.name, file: { byte: this.bytePosition, line: this.line, side: this.side, identity } };
  }

  /** File offset of the next unread record (a checkpoint position). */
  position(): number {
    return this.bytePosition;
  }

  /** Go back to a record boundary inside the last batch (a backfill's cut): the next batch starts there. */
  rewindTo(byte: number, line: number): void {
    this.bytePosition = this.readPos = byte;
    this.line = line;
    this.start = this.end = 0;
    this.eof = false;
  }

  private fill(): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end + READ_BYTES > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    const n = fs.readSync(this.fd, this.buf, this.end, READ_BYTES, this.readPos);
    this.readPos += n;
    if (n === 0) this.eof = true;
    this.end += n;
  }

  async next(): Promise<RecordBatch | null> {
    const offsets = this.offsets;
    let count = 0;
    let p = this.start;
    offsets[0] = p;
    const firstPosition = this.line;
    for (;;) {
      if (this.format === 'json') {
        while (count < MAX_RECORDS) {
          const nl = this.buf.indexOf(10, p);
          if (nl < 0 || nl >= this.end) break;
          p = nl + 1;
          offsets[++count] = p;
        }
        if (count === MAX_RECORDS) break;
        if (this.eof) {
          if (p < this.end) { p = this.end; offsets[++count] = p; }
          break;
        }
      } else {
        while (count < MAX_RECORDS && p + FLAT_PREFIX_BYTES <= this.end) {
          const len = this.buf.readUInt32LE(p);
          if (p + FLAT_PREFIX_BYTES + len > this.end) break;
          p += FLAT_PREFIX_BYTES + len;
          offsets[++count] = p;
        }
        if (count === MAX_RECORDS) break;
        if (this.eof) {
          if (p < this.end) { p = this.end; offsets[++count] = p; } // truncated tail: the router dead-letters it
          break;
        }
      }
      if (count > 0) break; // deliver what we have rather than growing the buffer
      // Not one complete record in the buffer: read more (keeps p relative to start after compaction).
      const rel = p - this.start;
      this.fill();
      p = this.start + rel;
      offsets[0] = this.start;
      if (this.eof && this.start === this.end) return null;
    }
    if (count === 0) return null;
    const batch: RecordBatch = {
      side: this.side, partition: 0, format: this.format, data: this.buf, offsets, count,
      firstPosition, firstByte: this.bytePosition, origin: this.path, recordPrefixBytes: this.format === 'flatbuffers' ? FLAT_PREFIX_BYTES : 0, lineDelimited: this.format === 'json',
    };
    this.bytePosition += p - this.start;
    this.line += count;
    this.start = p;
    return batch;
  }

  async close(): Promise<void> {
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
  }
}
