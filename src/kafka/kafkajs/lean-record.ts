/**
 * Fetched records that point into the fetch response instead of holding their own key and value
 * Buffers and offset string.
 *
 * Why: kafkajs's record object carries a key and a value sub-Buffer and a decimal offset string;
 * making those three per record, then dropping them as soon as KafkaSource has copied the value
 * into its batch buffer, was a measurable share of the main thread's time and of the garbage the
 * collector threads chase. A LeanRecord keeps only positions; `key`, `value` and `offset` are
 * getters that build the same Buffer views and string when something asks (kafkajs's batch code
 * reads `offset` a few times per batch). KafkaSource copies values straight from `buf`.
 *
 * The fast record-batch decoder (fast-codec.ts) makes LeanRecords once useLeanRecords(true) was
 * called (KafkaSource does, when it opens); until then it makes kafkajs's plain objects, which
 * test/unit/fast-codec.test.ts compares with kafkajs's own field for field.
 */
let lean = false;

/** Whether the fast decoder makes LeanRecords (process-wide, like the patch itself); JOINERY_FAST_SKIP=lean keeps them off. */
export function useLeanRecords(on: boolean): void {
  lean = on && !(process.env.JOINERY_FAST_SKIP ?? '').includes('lean');
}

export function leanRecordsOn(): boolean {
  return lean;
}

const NO_HEADERS: Record<string, never> = Object.freeze({});

/** What the LeanRecords of one record batch share (one object per batch, not per record). */
export class LeanBatch {
  constructor(
    /** The fetch response the batch lies in. */
    readonly buf: Buffer,
    readonly magicByte: number,
    readonly isControlRecord: boolean,
    readonly batchContext: object,
    /** The batch's first timestamp, for records' timestamp deltas. */
    readonly firstTimestamp: number,
    /** The batch's max timestamp as text when it is a LOG_APPEND_TIME batch (every record's timestamp), else null. */
    readonly appendTimestamp: string | null,
  ) {}
}

/**
 * A header-less record as kafkajs's record decoder returns it, read lazily from its batch's
 * buffer. What every record of a batch has in common lives once in its LeanBatch, and the
 * timestamp's text is made only when read: eight fields instead of twelve and a string, as these
 * are most of what the main thread allocates while it reads Kafka.
 */
export class LeanRecord {
  constructor(
    readonly lb: LeanBatch,
    readonly attributes: number,
    /** Timestamp − the batch's first timestamp. */
    readonly timestampDelta: number,
    /** Key at [keyStart, keyStart + keyLength) of `buf`; keyLength −1: a null key. */
    readonly keyStart: number,
    readonly keyLength: number,
    readonly valueStart: number,
    readonly valueLength: number,
    readonly offsetNumber: number,
  ) {}

  get buf(): Buffer { return this.lb.buf; }
  get magicByte(): number { return this.lb.magicByte; }
  get isControlRecord(): boolean { return this.lb.isControlRecord; }
  get batchContext(): object { return this.lb.batchContext; }
  get headers(): Record<string, never> { return NO_HEADERS; }

  get timestamp(): string {
    const b = this.lb;
    return b.appendTimestamp ?? String(b.firstTimestamp + this.timestampDelta);
  }

  get key(): Buffer | null {
    return this.keyLength < 0 ? null : this.lb.buf.subarray(this.keyStart, this.keyStart + this.keyLength);
  }

  get value(): Buffer | null {
    return this.valueLength < 0 ? null : this.lb.buf.subarray(this.valueStart, this.valueStart + this.valueLength);
  }

  get offset(): string {
    return String(this.offsetNumber);
  }
}

/** A message's value length (0 for null), without building its Buffer when it is a LeanRecord. */
export function valueLengthOf(m: { value: Buffer | null }): number {
  if (m instanceof LeanRecord) return m.valueLength > 0 ? m.valueLength : 0;
  return m.value ? m.value.length : 0;
}

/** A message's offset as a number. */
export function offsetOf(m: { offset: string }): number {
  return m instanceof LeanRecord ? m.offsetNumber : Number(m.offset);
}

/** Values up to this many bytes are copied in 4-byte words, longer ones through one `set`. */
const WORD_COPY_MAX_BYTES = 256;

/**
 * Copies the messages' values one after another into `dst` from `at`, writing each end position
 * into `ends` (from index 1); returns the position after the last. Measured per ~110-byte value
 * (Node 20, 2 cores): a byte loop ~250–500 ns, `set` from a fresh view ~100 ns plus its garbage,
 * 4-byte DataView words ~100 ns and no garbage.
 */
export function copyValues(msgs: ReadonlyArray<{ value: Buffer | null }>, first: number, dst: Uint8Array, ends: Uint32Array): number {
  const ddv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  let src: Buffer | null = null, sdv: DataView | null = null;
  let at = 0;
  for (let i = first, k = 1; i < msgs.length; i++, k++) {
    const m = msgs[i];
    if (m instanceof LeanRecord) {
      const n = m.valueLength;
      if (n > 0) {
        if (m.buf !== src) { src = m.buf; sdv = new DataView(src.buffer, src.byteOffset, src.byteLength); }
        const s = m.valueStart;
        if (n > WORD_COPY_MAX_BYTES) dst.set(new Uint8Array(src.buffer, src.byteOffset + s, n), at);
        else {
          let j = 0;
          for (; j + 4 <= n; j += 4) ddv.setInt32(at + j, sdv!.getInt32(s + j));
          for (; j < n; j++) dst[at + j] = src[s + j];
        }
        at += n;
      }
    } else {
      const v = m.value;
      if (v && v.length > 0) { dst.set(v, at); at += v.length; }
    }
    ends[k] = at;
  }
  return at;
}
