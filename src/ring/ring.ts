/**
 * Single-producer single-consumer byte ring over a SharedArrayBuffer.
 *
 * Layout (byte offsets):
 *
 *   0      TAIL   u32  bytes ever written (producer-owned)         ┐ each on its own 64-byte line so the
 *   64     HEAD   u32  bytes ever consumed (consumer-owned)        │ two threads never write the same
 *   128    SLEEP  i32  1 while the consumer is parked on TAIL      │ cache line
 *   192    WAIT   i32  1 while the producer is parked on HEAD      ┘
 *   208    CUT    i32  set once by the producer: stop consuming at the next frame boundary (a
 *                      stop checkpoint's id, or -1: stop and drop what is unread)
 *   224    WANT   u32  while WAIT: the HEAD at which the consumer wakes the producer
 *   256    DATA   capacity bytes (power of two)
 *
 * Frames: [u32 length][u32 reserved][length bytes], padded to 8 bytes so every frame body is
 * 8-aligned. A frame never straddles the end: the producer writes WRAP as the length and continues
 * at offset 0. Counters are u32 and wrap modulo 2^32, which is harmless as capacity ≤ 2^30.
 *
 * The producer publishes TAIL once per batch, not per record (per-record publication with notify
 * is syscall-bound: 3.3 M vs 16 M rec/s measured), and only notifies when the consumer said it
 * sleeps. The consumer publishes HEAD once per drained batch.
 *
 * A producer that finds the ring full waits until a quarter of it is free again (WANT), and the
 * consumer wakes it once (it clears WAIT itself). Waking it at every release instead made the two
 * threads ping-pong on a full ring: the router refilled a few frames and parked again, and
 * Atomics.notify was 16 % of the worker's CPU in `joinery bench`.
 */
export const CONTROL_BYTES = 256;
const TAIL = 0, HEAD = 16, SLEEP = 32, WAIT = 48, CUT = 52, WANT = 56; // Int32Array indices
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

/**
 * Largest body a frame may have in a ring of `capacityBytes` (the --ring-size): a quarter of it,
 * less a frame header. The router dead-letters a larger record; verify leaves it out the same way.
 */
export function maxFrameBytesFor(capacityBytes: number): number {
  return capacityBytes / 4 - FRAME_HEADER_BYTES;
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
  /** The cut asked for (0: none; a stop checkpoint's id; -1: stop without a checkpoint). */
  cutId(): number {
    return Atomics.load(this.i32, CUT);
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
    this.maxFrameBytes = maxFrameBytesFor(this.capacity);
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

  /**
   * Ask the consumer to stop at its next frame boundary (a stop at a cut): after this the producer
   * writes nothing more into the ring, so what lies between the consumer's released head and the
   * tail is the ring's unprocessed backlog (see unreadFrames).
   */
  requestCut(id: number): void {
    this.publish();
    Atomics.store(this.i32, CUT, id);
    Atomics.notify(this.i32, TAIL);
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
    // Wake at a quarter of the ring free, or once all that is published is consumed (never later:
    // the consumer cannot go past TAIL).
    const published = Atomics.load(this.i32, TAIL) >>> 0;
    const want = Math.min(this.capacity / 4, (published - (seen >>> 0)) >>> 0);
    Atomics.store(this.i32, WANT, ((seen >>> 0) + want) | 0);
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
    if (Atomics.load(this.i32, WAIT) === 1 && RingSide.reached(this.head, Atomics.load(this.i32, WANT) >>> 0) &&
      Atomics.compareExchange(this.i32, WAIT, 1, 0) === 1) Atomics.notify(this.i32, HEAD);
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

/**
 * The frames between the consumer's released head and the published tail, in order, each as
 * [u32 length][u32 0][body] padded to 8 bytes (the ring's own framing without wrap markers).
 * Only meaningful once both sides have stopped (after a cut).
 */
export function unreadFrames(sab: SharedArrayBuffer, keep: (kind: number) => boolean): Uint8Array[] {
  const i32 = new Int32Array(sab, 0, CONTROL_BYTES / 4);
  const dv = new DataView(sab);
  const capacity = sab.byteLength - CONTROL_BYTES, mask = capacity - 1;
  let head = Atomics.load(i32, HEAD) >>> 0;
  const tail = Atomics.load(i32, TAIL) >>> 0;
  const out: Uint8Array[] = [];
  while (head !== tail) {
    let pos = head & mask;
    let len = dv.getUint32(CONTROL_BYTES + pos, true);
    if (len === WRAP) { head = (head + capacity - pos) >>> 0; pos = 0; len = dv.getUint32(CONTROL_BYTES, true); }
    const size = align8(FRAME_HEADER_BYTES + len);
    if (keep(dv.getUint8(CONTROL_BYTES + pos + FRAME_HEADER_BYTES))) out.push(new Uint8Array(sab, CONTROL_BYTES + pos, size).slice());
    head = (head + size) >>> 0;
  }
  return out;
}

/**
 * Frames written after a cut, when the ring no longer takes any (the router finishes the batch in
 * hand): grows as needed, same framing as unreadFrames. Bounded by one source batch.
 */
export class FrameSpill {
  u8 = new Uint8Array(4096);
  dv = new DataView(this.u8.buffer);
  length = 0;
  private pendingSize = 0;
  reserve(bodyBytes: number): number {
    const size = align8(FRAME_HEADER_BYTES + bodyBytes);
    if (this.length + size > this.u8.length) {
      const grown = new Uint8Array(Math.max(this.u8.length * 2, this.length + size));
      grown.set(this.u8.subarray(0, this.length));
      this.u8 = grown;
      this.dv = new DataView(grown.buffer);
    }
    this.u8.fill(0, this.length, this.length + size);
    this.dv.setUint32(this.length, bodyBytes, true);
    this.pendingSize = size;
    return this.length + FRAME_HEADER_BYTES;
  }
  commit(): void {
    this.length += this.pendingSize;
    this.pendingSize = 0;
  }
  bytes(): Uint8Array {
    return this.u8.subarray(0, this.length);
  }
}

/** Walk frames in the unreadFrames layout: `visit(bodyOffset, bodyBytes)`. */
export function forEachFrame(bytes: Uint8Array, visit: (bodyOffset: number, bodyBytes: number) => void): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos < bytes.length) {
    if (pos + FRAME_HEADER_BYTES > bytes.length) throw new RangeError(`truncated frame header at byte ${pos}`);
    const len = dv.getUint32(pos, true);
    if (pos + FRAME_HEADER_BYTES + len > bytes.length) throw new RangeError(`frame at byte ${pos} runs past the end`);
    visit(pos + FRAME_HEADER_BYTES, len);
    pos += align8(FRAME_HEADER_BYTES + len);
  }
}
