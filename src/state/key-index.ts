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

export class KeyIndex {
  private keys = new Int32Array(MIN_TABLE);
  private used = new Uint8Array(MIN_TABLE);
  private heads: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] = [new Int32Array(MIN_TABLE), new Int32Array(MIN_TABLE)]; // newest
  private tails: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] = [new Int32Array(MIN_TABLE), new Int32Array(MIN_TABLE)]; // oldest
  private shift = 32 - Math.log2(MIN_TABLE);
  private n = 0; // keys
  private occT = new Float64Array(MIN_TABLE); // slice number
  private occOlder = new Int32Array(MIN_TABLE);
  private occNewer = new Int32Array(MIN_TABLE); // free list link while free
  private occTop = 0; // occurrences ever handed out (the pool's high-water mark)
  private occFree = NONE;
  private occLive = 0;

  /** The table position of hash h (valid until the next add or remove), or NONE. */
  find(h: number): number {
    const keys = this.keys, used = this.used;
    const mask = keys.length - 1;
    for (let i = Math.imul(h, GOLDEN) >>> this.shift; ; i = (i + 1) & mask) {
      if (used[i] === 0) return NONE;
      if (keys[i] === h) return i;
    }
  }

  /** The newest occurrence of the key at `pos` on `side`, or NONE. */
  newest(pos: number, side: Side): number {
    return this.heads[side][pos];
  }

  /** The slice number of occurrence o. */
  sliceOf(o: number): number {
    return this.occT[o];
  }

  older(o: number): number {
    return this.occOlder[o];
  }

  newer(o: number): number {
    return this.occNewer[o];
  }

  /** Notes that slice t holds key hash h on `side` (nothing if already noted). */
  add(h: number, side: Side, t: number): void {
    let pos = this.find(h);
    if (pos === NONE) pos = this.insertKey(h);
    // Chains are newest first, and inserts mostly reach the newest slice: a short walk.
    let o = this.heads[side][pos];
    let nw = NONE;
    while (o !== NONE && this.occT[o] > t) {
      nw = o;
      o = this.occOlder[o];
    }
    if (o !== NONE && this.occT[o] === t) return;
    const x = this.alloc();
    this.occT[x] = t;
    this.occOlder[x] = o;
    this.occNewer[x] = nw;
    if (nw === NONE) this.heads[side][pos] = x; else this.occOlder[nw] = x;
    if (o === NONE) this.tails[side][pos] = x; else this.occNewer[o] = x;
  }

  /** Forgets that slice t holds hash h on `side` (the slice no longer holds it, or is gone). */
  remove(h: number, side: Side, t: number): void {
    const pos = this.find(h);
    if (pos === NONE) return;
    // Slices go oldest first: walk from the oldest end.
    let o = this.tails[side][pos];
    while (o !== NONE && this.occT[o] < t) o = this.occNewer[o];
    if (o === NONE || this.occT[o] !== t) return;
    const nw = this.occNewer[o];
    const ol = this.occOlder[o];
    if (nw === NONE) this.heads[side][pos] = ol; else this.occOlder[nw] = ol;
    if (ol === NONE) this.tails[side][pos] = nw; else this.occNewer[ol] = nw;
    this.occNewer[o] = this.occFree;
    this.occFree = o;
    if (--this.occLive === 0 && this.occTop > MIN_TABLE) {
      // Empty: give the pool back (it cannot shrink while occurrences, which it indexes, live).
      this.occT = new Float64Array(MIN_TABLE);
      this.occOlder = new Int32Array(MIN_TABLE);
      this.occNewer = new Int32Array(MIN_TABLE);
      this.occTop = 0;
      this.occFree = NONE;
    }
    if (this.heads[0][pos] === NONE && this.heads[1][pos] === NONE) this.deleteAt(pos);
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
    return this.keys.length * (4 + 1 + 16) + this.occT.length * 16;
  }

  private alloc(): number {
    this.occLive++;
    const f = this.occFree;
    if (f !== NONE) {
      this.occFree = this.occNewer[f];
      return f;
    }
    if (this.occTop === this.occT.length) {
      const cap = this.occT.length * 2;
      const t = new Float64Array(cap); t.set(this.occT); this.occT = t;
      const a = new Int32Array(cap); a.set(this.occOlder); this.occOlder = a;
      const b = new Int32Array(cap); b.set(this.occNewer); this.occNewer = b;
    }
    return this.occTop++;
  }

  private insertKey(h: number): number {
    if ((this.n + 1) * 2 > this.keys.length) this.rehash(this.keys.length * 2);
    const keys = this.keys, used = this.used;
    const mask = keys.length - 1;
    let i = Math.imul(h, GOLDEN) >>> this.shift;
    while (used[i] !== 0) i = (i + 1) & mask;
    used[i] = 1;
    keys[i] = h;
    this.heads[0][i] = this.heads[1][i] = this.tails[0][i] = this.tails[1][i] = NONE;
    this.n++;
    return i;
  }

  /** Empties position i, shifting later members of its probe run back (no tombstones). */
  private deleteAt(i: number): void {
    const keys = this.keys, used = this.used, [h0, h1] = this.heads, [t0, t1] = this.tails;
    const mask = keys.length - 1;
    used[i] = 0;
    this.n--;
    for (let j = (i + 1) & mask; used[j] !== 0; j = (j + 1) & mask) {
      const home = Math.imul(keys[j], GOLDEN) >>> this.shift;
      // j stays when its home lies cyclically in (i, j]: its probe run does not cross the hole.
      if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
      keys[i] = keys[j];
      h0[i] = h0[j]; h1[i] = h1[j]; t0[i] = t0[j]; t1[i] = t1[j];
      used[i] = 1;
      used[j] = 0;
      i = j;
    }
    if (this.n * 8 < keys.length && keys.length > MIN_TABLE) this.rehash(keys.length / 2);
  }

  private rehash(size: number): void {
    const { keys, used, heads, tails } = this;
    this.keys = new Int32Array(size);
    this.used = new Uint8Array(size);
    this.heads = [new Int32Array(size), new Int32Array(size)];
    this.tails = [new Int32Array(size), new Int32Array(size)];
    this.shift = 32 - Math.log2(size);
    const mask = size - 1;
    for (let p = 0; p < keys.length; p++) {
      if (used[p] === 0) continue;
      let i = Math.imul(keys[p], GOLDEN) >>> this.shift;
      while (this.used[i] !== 0) i = (i + 1) & mask;
      this.used[i] = 1;
      this.keys[i] = keys[p];
      this.heads[0][i] = heads[0][p]; this.heads[1][i] = heads[1][p];
      this.tails[0][i] = tails[0][p]; this.tails[1][i] = tails[1][p];
    }
  }
}
