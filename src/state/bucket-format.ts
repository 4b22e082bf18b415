/**
 * Byte layouts shared by the bucket store's modules (see bucket-store.ts, "LMDB layout" and "Open
 * slice"): the packed event, the LMDB value header, the arena's entry header and references.
 */

export const EV_HEADER = 8 + 2 + 4; // ts, idLen, payloadLen
export const VALUE_HEADER = 4 + 4; // count, firstOrdinal (the key hash is in the record header)
export const MAX_KEY = 1978 - 5; // LMDB key limit (4 KiB pages) minus keyGroup, keyLen, side

// ---- sealed buckets: one LMDB value per run of consecutive (key, side) records, in slot order ----
//
// LMDB key: the run number (u32 big-endian, so every put appends). Value: its keys' records back to
// back, each [u32 recordLen][i32 keyHash][u8 side][u16 keyGroup BE][u16 keyLen BE][key] followed by
// the key's packed value [VALUE_HEADER][events]. An LMDB put costs ~0.8 µs CPU with one 110-byte
// event per value, ~0.2 µs per event with 16, hence runs. A run takes records while it stays within
// RUN_BYTES, up to RUN_KEYS records; a record larger than RUN_BYTES is a run of its own.
//
// RUN_BYTES is the largest value LMDB keeps inline in a leaf page (4 KiB pages, 4-byte key),
// measured with lmdb-js 3.5: a 2022-byte value shares leaf pages, 2023 bytes takes an overflow page
// of its own (a whole 4 KiB page, about half of it empty). Test: bucket-store.test.ts, "runs stay
// inline".
export const REC_HASH = 4;
export const REC_SIDE = 8;
export const REC_KEY = 9; // [u16 keyGroup][u16 keyLen][key], as in the arena's key bytes
export const RUN_KEYS = 16;
export const RUN_BYTES = 2022;
export const APPEND = { append: true } as const;

// ---- open slices: an arena of slabs, no heap object per key or per event ----
//
// An entry reference (a V8 small integer) is slabIndex·SLAB_BYTES + offset of the event bytes
// [f64 ts][u16 idLen][u32 payloadLen][id][payload]. The ENTRY_HEADER bytes before them hold, while
// the slice is open, [i32 prev][i32 next][u16 bucket (class) index, u16 source partition + 1]
// [u32 flags]: each key/side is a doubly linked list in (ts, id) order. The partition is kept for
// the deferred change log (pending-log.ts) only. Bit 0 of flags is the joined flag (read it with
// & 1); a seal job writes the entry's ordinal in its bucket into bits 1–31 as it copies the entry
// to LMDB.
export const SLAB_SHIFT = 16;
export const SLAB_BYTES = 1 << SLAB_SHIFT;
export const OFF_MASK = SLAB_BYTES - 1;
export const MAX_SLABS = 1 << 15; // references stay below 2^31
export const BIG = SLAB_BYTES / 4; // larger allocations get a slab of their own
export const ENTRY_HEADER = 16;
export const E_PREV = -16;
export const E_NEXT = -12;
export const E_CLASS = -8;
export const E_PARTITION = -6;
/** Buckets (classes) an open slice may hold: the class index is a u16 in the entry header. */
export const MAX_CLASSES = 0x10000;
export const E_JOINED = -4;
export const NONE = -1;

/** A buffer with the `start`/`end` marks lmdb-js honours on put values (then byteOffset must be 0). */
export type MarkedBuffer = Buffer & { start: number; end: number };

export function markedBuffer(size: number): MarkedBuffer {
  const b = Buffer.allocUnsafeSlow(size) as MarkedBuffer; // own ArrayBuffer, byteOffset 0
  b.start = 0;
  b.end = 0;
  return b;
}

export const EMPTY = markedBuffer(0);

/**
 * Copies `len` bytes (regions not overlapping) below this size word by word through DataViews:
 * making a view to hand to `set` allocates ~100 bytes of V8 heap per copy, which was most of a
 * worker's garbage (one per event in insert and two per entry sealed). Above it, `set` wins.
 * (Micro-benchmark, process CPU with GC: 110 bytes 37 ns by words, 48–50 ns by view and `set`;
 * 20 bytes 11 vs 47 ns; 256 bytes 79 vs 54 ns.)
 */
export const WORD_COPY_MAX = 128;

/** Copies len ≤ WORD_COPY_MAX bytes from src at so to dst at dof, 4 bytes at a time. */
export function copyWords(src: DataView, so: number, dst: DataView, dof: number, len: number): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) dst.setInt32(dof + i, src.getInt32(so + i, true), true);
  for (; i < len; i++) dst.setUint8(dof + i, src.getUint8(so + i));
}

/**
 * Short byte strings handed to a callback without a view per call: copied into a private scratch
 * buffer and read through one view per (field, length), made once. For the id and payload of each
 * entry a probe visits (valid only during the visit, by the store contract): two views per match
 * were most of what a worker still allocated per event.
 */
export class ScratchViews {
  private readonly scratch: ArrayBuffer;
  private readonly dv: DataView;
  private readonly views: Uint8Array[][] = [];
  constructor(fields: number) {
    this.scratch = new ArrayBuffer(fields * WORD_COPY_MAX);
    this.dv = new DataView(this.scratch);
    for (let f = 0; f < fields; f++) this.views.push([]);
  }
  /** Field f: a copy of len ≤ WORD_COPY_MAX bytes at off in src, valid until the next copy into f. */
  copy(f: number, src: DataView, off: number, len: number): Uint8Array {
    const base = f * WORD_COPY_MAX;
    copyWords(src, off, this.dv, base, len);
    const vs = this.views[f];
    while (vs.length <= len) vs.push(new Uint8Array(this.scratch, base, vs.length));
    return vs[len];
  }
}

export function cmpIdBytes(v: Uint8Array, off: number, len: number, id: Uint8Array): number {
  const n = len < id.length ? len : id.length;
  for (let i = 0; i < n; i++) {
    const c = v[off + i] - id[i];
    if (c !== 0) return c;
  }
  return len - id.length;
}
