/**
 * Key indexes of the bucket store.
 *
 * KeyIndex is the join buffer's one index over all live slices, open and sealed (see bucket-store.ts,
 * "Key index"): per 32-bit keyHash and side, the slices that hold the key on that side, as a chain
 * of occurrences sorted by slice number. A probe looks its key up once and then visits only the
 * slices its chain names; a key with nothing on the probed side costs that one lookup. Before it,
 * a probe looked the key up in every slice its range overlapped (one hash lookup per open slice,
 * one filter test per sealed bucket): ~47 % of a worker's time with a 1-hour window.
 *
 * Keyed by hash, not by key bytes: keys whose hashes collide share a chain, which only makes the
 * probe visit a slice that then finds nothing (slices compare key bytes). The index therefore
 * answers "which slices may hold this key", never "is this entry present"; identity and
 * de-duplication stay with the slice (its table when open, its LMDB value when sealed), reached
 * through this index's chain or, for an insert, by the entry's own slice.
 *
 * Everything lives in typed arrays (no heap object per key): an open-addressing table on keyHash
 * (linear probing, backward-shift deletion, so removals leave no tombstones) with per side the
 * newest and oldest occurrence, and a pool of occurrences [f64 slice][i32 older][i32 newer] with a
 * free list.
 *
 * KeySet is an exact set of hashes, one per sealed bucket and side: it tells which bucket of a
 * sealed slice holds a key (usually one per side), and which keys a dropped bucket takes away.
 */
import { NONE } from './bucket-format.js';
import type { Side } from './store.js';

const GOLDEN = 0x9e3779b1;
const MIN_TABLE = 1024;

/** Exact set of 32-bit key hashes (as int32; open addressing, Fibonacci hashing). */
export class KeySet {
  private readonly table: Int32Array;
  private readonly shift: number;
  private hasZero = false;
  constructor(n: number) {
    let bits = 2;
    while ((1 << bits) < n * 2) bits++;
    this.table = new Int32Array(1 << bits);
    this.shift = 32 - bits;
  }
  add(h: number): void {
    if (h === 0) { this.hasZero = true; return; }
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === 0) { t[i] = h; return; }
      if (v === h) return;
      i = (i + 1) & mask;
    }
  }
  has(h: number): boolean {
    if (h === 0) return this.hasZero;
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === h) return true;
      if (v === 0) return false;
      i = (i + 1) & mask;
    }
  }
  /** Heap bytes held. */
  size(): number {
    return this.table.byteLength;
  }
  /** The hash table itself, for a full scan: 0 marks an empty position (hash 0 is hasZeroHash()). */
  slots(): Int32Array {
    return this.table;
  }
  hasZeroHash(): boolean {
    return this.hasZero;
  }
}

/*
 * Layout: both arrays are interleaved, so one operation touches one cache line per record instead
 * of one per field (the table outgrows the caches: ~1M keys per worker on the realistic workload).
 *   table, 8 × i32 per position: [key hash][used][newest left][newest right][oldest left][oldest right][–][–]
 *   pool, 16 bytes per occurrence: [f64 slice][i32 older][i32 newer]  (newer links the free list)
 */
const T_STRIDE = 8;
const T_KEY = 0;
const T_USED = 1;
const T_HEAD = 2; // + side
const T_TAIL = 4; // + side
const O_T = 0; // in f64 units: occurrence o at f64[o·2]
const O_OLDER = 2; // in i32 units: i32[o·4 + 2]
const O_NEWER = 3;

export class KeyIndex {
  private table = new Int32Array(MIN_TABLE * T_STRIDE);
  private cap = MIN_TABLE; // positions
  private shift = 32 - Math.log2(MIN_TABLE);
  private n = 0; // keys
  private occF = new Float64Array(MIN_TABLE * 2);
  private occI = new Int32Array(this.occF.buffer);
  private occTop = 0; // occurrences ever handed out (the pool's high-water mark)
  private occFree = NONE;
  private occLive = 0;

  /** The table position of hash h (valid until the next add or remove), or NONE. */
  find(h: number): number {
    const table = this.table;
    const mask = this.cap - 1;
    for (let i = Math.imul(h, GOLDEN) >>> this.shift; ; i = (i + 1) & mask) {
      const p = i * T_STRIDE;
      if (table[p + T_USED] === 0) return NONE;
      if (table[p + T_KEY] === h) return i;
    }
  }

  /** The newest occurrence of the key at `pos` on `side`, or NONE. */
  newest(pos: number, side: Side): number {
    return this.table[pos * T_STRIDE + T_HEAD + side];
  }

  /** The slice number of occurrence o. */
  sliceOf(o: number): number {
    return this.occF[o * 2 + O_T];
  }

  older(o: number): number {
    return this.occI[o * 4 + O_OLDER];
  }

  newer(o: number): number {
    return this.occI[o * 4 + O_NEWER];
  }

  /** Notes that slice t holds key hash h on `side` (nothing if already noted). */
  add(h: number, side: Side, t: number): void {
    let pos = this.find(h);
    if (pos === NONE) pos = this.insertKey(h);
    const p = pos * T_STRIDE;
    // Chains are newest first, and inserts mostly reach the newest slice: a short walk.
    let o = this.table[p + T_HEAD + side];
    let nw = NONE;
    while (o !== NONE && this.occF[o * 2] > t) {
      nw = o;
      o = this.occI[o * 4 + O_OLDER];
    }
    if (o !== NONE && this.occF[o * 2] === t) return;
    const x = this.alloc(); // may replace the pool arrays
    const f = this.occF, i32 = this.occI, table = this.table;
    f[x * 2] = t;
    i32[x * 4 + O_OLDER] = o;
    i32[x * 4 + O_NEWER] = nw;
    if (nw === NONE) table[p + T_HEAD + side] = x; else i32[nw * 4 + O_OLDER] = x;
    if (o === NONE) table[p + T_TAIL + side] = x; else i32[o * 4 + O_NEWER] = x;
  }

  /** Forgets that slice t holds hash h on `side` (the slice no longer holds it, or is gone). */
  remove(h: number, side: Side, t: number): void {
    const pos = this.find(h);
    if (pos === NONE) return;
    const table = this.table, f = this.occF, i32 = this.occI;
    const p = pos * T_STRIDE;
    // Slices go oldest first: walk from the oldest end.
    let o = table[p + T_TAIL + side];
    while (o !== NONE && f[o * 2] < t) o = i32[o * 4 + O_NEWER];
    if (o === NONE || f[o * 2] !== t) return;
    const nw = i32[o * 4 + O_NEWER];
    const ol = i32[o * 4 + O_OLDER];
    if (nw === NONE) table[p + T_HEAD + side] = ol; else i32[nw * 4 + O_OLDER] = ol;
    if (ol === NONE) table[p + T_TAIL + side] = nw; else i32[ol * 4 + O_NEWER] = nw;
    i32[o * 4 + O_NEWER] = this.occFree;
    this.occFree = o;
    if (--this.occLive === 0 && this.occTop > MIN_TABLE) {
      // Empty: give the pool back (it cannot shrink while occurrences, which it indexes, live).
      this.occF = new Float64Array(MIN_TABLE * 2);
      this.occI = new Int32Array(this.occF.buffer);
      this.occTop = 0;
      this.occFree = NONE;
    }
    if (table[p + T_HEAD] === NONE && table[p + T_HEAD + 1] === NONE) this.deleteAt(pos);
  }

  /** Keys (hashes) indexed. */
  size(): number {
    return this.n;
  }

  /** Occurrences (hash, side, slice) indexed. */
  occurrences(): number {
    return this.occLive;
  }

  /** Heap bytes held. */
  heapBytes(): number {
    return this.table.byteLength + this.occF.byteLength;
  }

  private alloc(): number {
    this.occLive++;
    const f = this.occFree;
    if (f !== NONE) {
      this.occFree = this.occI[f * 4 + O_NEWER];
      return f;
    }
    if (this.occTop * 2 === this.occF.length) {
      const grown = new Float64Array(this.occF.length * 2);
      const grownI = new Int32Array(grown.buffer);
      grownI.set(this.occI); // as i32: a copy as f64 could canonicalise the links' NaN bit patterns
      this.occF = grown;
      this.occI = grownI;
    }
    return this.occTop++;
  }

  private insertKey(h: number): number {
    if ((this.n + 1) * 2 > this.cap) this.rehash(this.cap * 2);
    const table = this.table;
    const mask = this.cap - 1;
    let i = Math.imul(h, GOLDEN) >>> this.shift;
    while (table[i * T_STRIDE + T_USED] !== 0) i = (i + 1) & mask;
    const p = i * T_STRIDE;
    table[p + T_USED] = 1;
    table[p + T_KEY] = h;
    table[p + T_HEAD] = table[p + T_HEAD + 1] = table[p + T_TAIL] = table[p + T_TAIL + 1] = NONE;
    this.n++;
    return i;
  }

  /** Empties position i, shifting later members of its probe run back (no tombstones). */
  private deleteAt(i: number): void {
    const table = this.table;
    const mask = this.cap - 1;
    table[i * T_STRIDE + T_USED] = 0;
    this.n--;
    for (let j = (i + 1) & mask; table[j * T_STRIDE + T_USED] !== 0; j = (j + 1) & mask) {
      const home = Math.imul(table[j * T_STRIDE + T_KEY], GOLDEN) >>> this.shift;
      // j stays when its home lies cyclically in (i, j]: its probe run does not cross the hole.
      if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
      for (let k = 0; k < T_STRIDE; k++) table[i * T_STRIDE + k] = table[j * T_STRIDE + k];
      table[j * T_STRIDE + T_USED] = 0;
      i = j;
    }
    if (this.n * 8 < this.cap && this.cap > MIN_TABLE) this.rehash(this.cap / 2);
  }

  private rehash(size: number): void {
    const old = this.table;
    const oldCap = this.cap;
    const table = this.table = new Int32Array(size * T_STRIDE);
    this.cap = size;
    this.shift = 32 - Math.log2(size);
    const mask = size - 1;
    for (let q = 0; q < oldCap; q++) {
      const src = q * T_STRIDE;
      if (old[src + T_USED] === 0) continue;
      let i = Math.imul(old[src + T_KEY], GOLDEN) >>> this.shift;
      while (table[i * T_STRIDE + T_USED] !== 0) i = (i + 1) & mask;
      const dst = i * T_STRIDE;
      for (let k = 0; k < T_STRIDE; k++) table[dst + k] = old[src + k];
    }
  }
}
