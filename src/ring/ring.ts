/**
 * Single-producer single-consumer byte ring over a SharedArrayBuffer.
 *
 * Layout (byte offsets):
 *
 *   0      TAIL   u32  bytes ever written (producer-owned)         ┐ each on its own 64-byte line so the
 *   64     HEAD   u32  bytes ever consumed (consumer-owned)        │ two threads never write the same
 *   128    SLEEP  i32  1 while the consumer is parked on TAIL      │ cache line
 *   192    WAIT   i32  1 while the producer is parked on HEAD      ┘
 *   256    DATA   capacity bytes (power of two)
 *
 * Frames: [u32 length][u32 reserved][length bytes], padded to 8 bytes so every frame body is
 * 8-aligned. A frame never straddles the end: the producer writes WRAP as the length and continues
 * at offset 0. Counters are u32 and wrap modulo 2^32, which is harmless as capacity ≤ 2^30.
 *
 * The producer publishes TAIL once per batch, not per record (per-record publication with notify
 * is syscall-bound: 3.3 M vs 16 M rec/s measured), and only notifies when the consumer said it
 * sleeps. The consumer publishes HEAD once per drained batch.
 */
export const CONTROL_BYTES = 256;
const TAIL = 0, HEAD = 16, SLEEP = 32, WAIT = 48; // Int32Array indices
const WRAP = 0xffffffff;
export const FRAME_HEADER_BYTES = 8;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

export function createRingBuffer(capacityBytes: number): SharedArrayBuffer {
  if (capacityBytes < 1024 || (capacityBytes & (capacityBytes - 1)) !== 0 || capacityBytes > 2 ** 30) {
    throw new RangeError(`ring capacity must be a power of two between 1 KiB and 1 GiB, got ${capacityBytes}`);
  }
  return new SharedArrayBuffer(CONTROL_BYTES + capacityBytes);
}

abstract class RingSide {
  readonly sab: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly capacity: number;
  protected readonly mask: number;
  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, CONTROL_BYTES / 4);
    this.u8 = new Uint8Array(sab);
    this.dv = new DataView(sab);
    this.capacity = sab.byteLength - CONTROL_BYTES;
    this.mask = this.capacity - 1;
  }
  /** Bytes ever released by the consumer (u32, wraps). */
  releasedHead(): number {
    return Atomics.load(this.i32, HEAD) >>> 0;
  }
  /** Bytes ever published by the producer (u32, wraps). */
  publishedTail(): number {
    return Atomics.load(this.i32, TAIL) >>> 0;
  }
  /** Whether position `a` is at or past `b`, in u32 wrap-around order. */
  static reached(a: number, b: number): boolean {
    return ((a - b) | 0) >= 0;
  }
  /** Bytes written but not yet consumed, as last published. */
  usedBytes(): number {
    return (Atomics.load(this.i32, TAIL) - Atomics.load(this.i32, HEAD)) >>> 0;
  }
}

export class RingProducer extends RingSide {
  private tail: number;
  private cachedHead: number;
  private pendingSize = 0;
  /** Largest body a single frame may have. */
  readonly maxFrameBytes: number;
  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.tail = Atomics.load(this.i32, TAIL) >>> 0;
    this.cachedHead = Atomics.load(this.i32, HEAD) >>> 0;
    this.maxFrameBytes = this.capacity / 4 - FRAME_HEADER_BYTES;
  }

  /**
   * Reserve room for a frame body of `bodyBytes`; returns the absolute byte offset (in the SAB) of
   * the body, 8-aligned, or -1 if the ring is full. Every successful reserve must be followed by
   * commit() before the next reserve.
   */
  reserve(bodyBytes: number): number {
    if (bodyBytes > this.maxFrameBytes) throw new RangeError(`frame of ${bodyBytes} bytes exceeds the ring's limit of ${this.maxFrameBytes}`);
    const size = align8(FRAME_HEADER_BYTES + bodyBytes);
    let pos = this.tail & this.mask;
    const toEnd = this.capacity - pos;
    const need = size <= toEnd ? size : toEnd + size;
    if (this.capacity - ((this.tail - this.cachedHead) >>> 0) < need) {
      this.cachedHead = Atomics.load(this.i32, HEAD) >>> 0;
      if (this.capacity - ((this.tail - this.cachedHead) >>> 0) < need) return -1;
    }
    if (size > toEnd) {
      this.dv.setUint32(CONTROL_BYTES + pos, WRAP, true);
      this.tail = (this.tail + toEnd) >>> 0;
      pos = 0;
    }
    this.dv.setUint32(CONTROL_BYTES + pos, bodyBytes, true);
    this.pendingSize = size;
    return CONTROL_BYTES + pos + FRAME_HEADER_BYTES;
  }

  commit(): void {
    this.tail = (this.tail + this.pendingSize) >>> 0;
    this.pendingSize = 0;
  }

  /** Make committed frames visible to the consumer; wake it only if it parked. */
  publish(): void {
    Atomics.store(this.i32, TAIL, this.tail | 0);
    if (Atomics.load(this.i32, SLEEP) === 1) Atomics.notify(this.i32, TAIL);
  }

  /** Unpublished committed bytes exist. */
  hasUnpublished(): boolean {
    return (Atomics.load(this.i32, TAIL) >>> 0) !== this.tail;
  }

  /**
   * Resolve once the consumer has released space (or after timeoutMs). Uses waitAsync so the
   * main thread's event loop (Kafka heartbeats, timers) keeps running while the ring is full.
   */
  async waitForSpace(timeoutMs: number): Promise<void> {
    const seen = Atomics.load(this.i32, HEAD);
    Atomics.store(this.i32, WAIT, 1);
    if (Atomics.load(this.i32, HEAD) === seen) {
      const r = Atomics.waitAsync(this.i32, HEAD, seen, timeoutMs);
      if (r.async) await r.value;
    }
    Atomics.store(this.i32, WAIT, 0);
  }
}

export class RingConsumer extends RingSide {
  private head: number;
  private cachedTail: number;
  /** Body length of the frame returned by the last next(). */
  frameBytes = 0;
  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.head = Atomics.load(this.i32, HEAD) >>> 0;
    this.cachedTail = this.head;
  }

  /**
   * Offset of the next frame's body, or -1 when nothing is published. The bytes stay valid until
   * release(); frames are consumed in order.
   */
  next(): number {
    if (this.head === this.cachedTail) {
      this.cachedTail = Atomics.load(this.i32, TAIL) >>> 0;
      if (this.head === this.cachedTail) return -1;
    }
    let pos = this.head & this.mask;
    let len = this.dv.getUint32(CONTROL_BYTES + pos, true);
    if (len === WRAP) {
      this.head = (this.head + this.capacity - pos) >>> 0;
      pos = 0;
      len = this.dv.getUint32(CONTROL_BYTES, true);
    }
    this.frameBytes = len;
    this.head = (this.head + align8(FRAME_HEADER_BYTES + len)) >>> 0;
    return CONTROL_BYTES + pos + FRAME_HEADER_BYTES;
  }

  /** Hand the consumed space back to the producer. */
  release(): void {
    Atomics.store(this.i32, HEAD, this.head | 0);
    if (Atomics.load(this.i32, WAIT) === 1) Atomics.notify(this.i32, HEAD);
  }

  /** Park until the producer publishes (or timeoutMs). Blocking: only for threads with nothing else to do. */
  waitForData(timeoutMs: number): void {
    const seen = this.cachedTail | 0;
    Atomics.store(this.i32, SLEEP, 1);
    // Re-check after announcing sleep: the producer checks SLEEP after storing TAIL, so one of us sees the other.
    if (Atomics.load(this.i32, TAIL) === seen) Atomics.wait(this.i32, TAIL, seen, timeoutMs);
    Atomics.store(this.i32, SLEEP, 0);
  }

  /** Like waitForData but keeps the worker's event loop alive (messages, timers). */
  async waitForDataAsync(timeoutMs: number): Promise<void> {
    const seen = this.cachedTail | 0;
    Atomics.store(this.i32, SLEEP, 1);
    if (Atomics.load(this.i32, TAIL) === seen) {
      const r = Atomics.waitAsync(this.i32, TAIL, seen, timeoutMs);
      if (r.async) await r.value;
    }
    Atomics.store(this.i32, SLEEP, 0);
  }
}
