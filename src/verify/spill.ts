/**
 * The records verify partitions its inputs and the output into (by key hash), and where they wait
 * until their partition is joined: in memory while the scan's share of --max-memory holds them,
 * then appended to one spill file per (writer, source, partition) in the spill directory. A
 * partition is later loaded whole (its files in writer order, then the in-memory rest), which
 * keeps each writer's records in the order it read them.
 *
 * Records are 8-byte aligned (written and read through typed-array views, the cheapest access):
 *
 * Event record: f64 time, f64 position in its chunk (line, or Kafka offset), f64 newest time of its
 * chunk before it (−∞ if none), u32 key hash, u16 key bytes, u16 id bytes, u16 chunk (file chunk,
 * or Kafka partition), key bytes, id bytes (canonical texts), padding.
 *
 * Output row record: f64 left time, f64 right time, f64 position, u32 key hash, u16 key bytes, u16
 * left id bytes, u16 right id bytes (NULL_LEN = absent side), u16 chunk, key, left id, right id,
 * padding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const EV_HEAD = 34;
export const ROW_HEAD = 36;
export const NULL_LEN = 0xffff;

/** Bytes a record of n bytes takes, padded to 8. */
export const padded = (n: number): number => (n + 7) & ~7;

/** Views of one buffer of records. */
export class Views {
  readonly u8: Uint8Array;
  readonly f64: Float64Array;
  readonly u32: Uint32Array;
  readonly u16: Uint16Array;
  constructor(readonly buf: ArrayBuffer, bytes = buf.byteLength) {
    this.u8 = new Uint8Array(buf, 0, bytes);
    this.f64 = new Float64Array(buf, 0, bytes >> 3);
    this.u32 = new Uint32Array(buf, 0, bytes >> 2);
    this.u16 = new Uint16Array(buf, 0, bytes >> 1);
  }
}

/** Partition of a key hash: its top bits (the key table of a partition indexes by the low bits). */
export function partitionOf(hash: number, bits: number): number {
  return bits === 0 ? 0 : hash >>> (32 - bits);
}

/** A segment of a partition's records: a spill file, or bytes still in memory. */
export interface Segment { file?: string; buf?: ArrayBuffer; bytes: number }

export class PartitionWriter {
  readonly bufs: Views[] = [];
  readonly used: Int32Array;
  /** Bytes appended to each partition's spill file so far (0 = no file). */
  readonly spilled: Float64Array;
  private buffered = 0;
  /** Bytes of all partition buffers (what they hold and their room). */
  capacity = 0;
  private readonly initial: number;

  /**
   * `name`: file name prefix (source and writer); `budget`: shared with the other writers of the
   * same thread (up to three: left, right, output), so that all their buffers together stay under it.
   */
  constructor(private readonly dir: string, private readonly name: string, readonly parts: number, private readonly budget: Budget, expectBytes = 0) {
    this.used = new Int32Array(parts);
    this.spilled = new Float64Array(parts);
    // sized for what is expected, within the budget: growing by doubling copies everything once more
    const share = Math.floor(budget.limitBytes / (6 * parts));
    this.initial = padded(Math.max(256, Math.min(share, Math.max(64 * 1024, Math.ceil((expectBytes * 1.1) / parts)))));
    for (let p = 0; p < parts; p++) this.bufs.push(new Views(new ArrayBuffer(this.initial)));
    this.capacity = this.initial * parts;
    budget.writers.push(this);
  }

  /** Room for n more bytes (a multiple of 8) in partition p's buffer: the views to write into at used[p]. */
  room(p: number, n: number): Views {
    let b = this.bufs[p];
    const u = this.used[p];
    if (u + n <= b.u8.length) return b;
    const cap = padded(Math.max(b.u8.length * 2, u + n));
    if (this.budget.capacityBytes() - b.u8.length + cap > this.budget.limitBytes && this.budget.bufferedBytes() > 0) {
      this.budget.flushAll();
      b = this.bufs[p];
      if (n <= b.u8.length) return b;
    }
    const bigger = new Views(new ArrayBuffer(padded(Math.max(b.u8.length * 2, this.used[p] + n))));
    bigger.u8.set(b.u8.subarray(0, this.used[p]));
    this.capacity += bigger.u8.length - b.u8.length;
    this.bufs[p] = bigger;
    return bigger;
  }

  /** Records that n bytes were written at used[p]. */
  wrote(p: number, n: number): void {
    this.used[p] += n;
    this.buffered += n;
  }

  bufferedBytes(): number { return this.buffered; }

  file(p: number): string { return path.join(this.dir, `${this.name}-${p}`); }

  flush(): void {
    for (let p = 0; p < this.parts; p++) {
      const u = this.used[p];
      if (u === 0) continue;
      fs.appendFileSync(this.file(p), this.bufs[p].u8.subarray(0, u));
      this.spilled[p] += u;
      this.used[p] = 0;
      // back to the first size: a buffer grown for one burst would hold its share of memory for good
      if (this.bufs[p].u8.length > this.initial) {
        this.capacity -= this.bufs[p].u8.length - this.initial;
        this.bufs[p] = new Views(new ArrayBuffer(this.initial));
      }
    }
    this.buffered = 0;
  }

  /** Partition p's segments (file first, then the in-memory rest); the buffer moves to the caller. */
  segments(p: number): Segment[] {
    const out: Segment[] = [];
    if (this.spilled[p] > 0) out.push({ file: this.file(p), bytes: this.spilled[p] });
    if (this.used[p] > 0) out.push({ buf: this.bufs[p].buf, bytes: this.used[p] });
    return out;
  }

  spilledBytes(): number {
    let s = 0;
    for (let p = 0; p < this.parts; p++) s += this.spilled[p];
    return s;
  }
}

/** The scan's memory share of one thread, over all its writers. */
export class Budget {
  readonly writers: PartitionWriter[] = [];
  flushes = 0;
  constructor(readonly limitBytes: number) {}
  bufferedBytes(): number {
    let s = 0;
    for (const w of this.writers) s += w.bufferedBytes();
    return s;
  }
  capacityBytes(): number {
    let s = 0;
    for (const w of this.writers) s += w.capacity;
    return s;
  }
  flushAll(): void {
    this.flushes++;
    for (const w of this.writers) w.flush();
  }
}

/** Loads the segments of one partition into one buffer, in order (a lone in-memory segment as it is). */
export function loadSegments(segs: readonly Segment[]): Views {
  let total = 0;
  for (const s of segs) total += s.bytes;
  if (segs.length === 1 && segs[0].buf) return new Views(segs[0].buf, total);
  const ab = new ArrayBuffer(total);
  const out = Buffer.from(ab);
  let o = 0;
  for (const s of segs) {
    if (s.buf) { out.set(new Uint8Array(s.buf, 0, s.bytes), o); o += s.bytes; continue; }
    const fd = fs.openSync(s.file!, 'r');
    try {
      let n = 0;
      while (n < s.bytes) {
        const r = fs.readSync(fd, out, o + n, s.bytes - n, n);
        if (r === 0) throw new Error(`spill file ${s.file} is shorter than written (${n} of ${s.bytes} bytes)`);
        n += r;
      }
    } finally {
      fs.closeSync(fd);
    }
    o += s.bytes;
  }
  return new Views(ab);
}
