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
 * (linear probing, backward-shift deletion, so removals leave no tombstones) whose positions are
 * 16-byte records [hash][state][newest occurrence per side], and a pool of 32-byte occurrences
 * [f64 slice][i32 older][i32 newer][i32 slot hint] with a free list; a chain's newest occurrence
 * names its oldest.
 * An add or a probe touches one table line and the occurrences it walks: the cost left is the miss
 * on the table line itself (random keys in a table of tens of MiB).
 *
 * No call pays for the whole index (a worker runs these between ring frames, and a long call holds
 * every event queued behind it): the table resizes incrementally (the previous table's positions
 * move over a few per add or remove, a key found there moves at once; the next table is allocated
 * early and its pages touched a few per add), and the pool grows by chunks, never by copying. Done
 * at once, resizing a 2M-position table took ~100 ms of CPU in one add (p99 latency at 100k
 * events/s went from 17 to 61 ms with the index).
 *
 * KeySet is an exact set of hashes, one per sealed bucket and side: it tells which bucket of a
 * sealed slice holds a key (usually one per side), and which keys a dropped bucket takes away.
 */
import { NONE } from './bucket-format.js';
import type { Side } from './store.js';

const GOLDEN = 0x9e3779b1;
const MIN_TABLE = 1024;

/**
 * Exact set of 32-bit key hashes (as int32; open addressing, Fibonacci hashing), each with the
 * number of the LMDB value (a run of consecutive keys, see sealed-io.ts) that holds its key. Keys
 * sharing a hash may sit in different runs: the set then keeps the first and the last (`lastRun`),
 * and a look-up reads the runs between.
 */
/** What a sealed bucket's readers ask of its per-side key filter: an exact KeySet, or its frozen group (frozen.ts). */
export interface RunFilter {
  has(h: number): boolean;
  /** The first run holding hash h, or -1. */
  run(h: number): number;
  /** The last run holding hash h, given its first. */
  lastRun(h: number, first: number): number;
  /** Heap bytes held by this filter alone. */
  size(): number;
}

export class KeySet implements RunFilter {
  /** Distinct hashes held. */
  count = 0;
  /** The highest run number added. */
  maxRun = 0;
  private readonly table: Int32Array;
  private readonly runs: Int32Array;
  private readonly shift: number;
  private hasZero = false;
  private zeroRun = 0;
  private spans: Map<number, number> | undefined = undefined; // hash → last run, for hashes in several runs
  constructor(n: number) {
    let bits = 2;
    while ((1 << bits) < n * 2) bits++;
    this.table = new Int32Array(1 << bits);
    this.runs = new Int32Array(1 << bits);
    this.shift = 32 - bits;
  }
  /** Adds hash h, held by run `run` (adds come in run order). */
  add(h: number, run = 0): void {
    if (run > this.maxRun) this.maxRun = run;
    if (h === 0) {
      if (!this.hasZero) { this.hasZero = true; this.zeroRun = run; this.count++; } else if (run !== this.zeroRun) this.span(h, run);
      return;
    }
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === 0) { t[i] = h; this.runs[i] = run; this.count++; return; }
      if (v === h) { if (this.runs[i] !== run) this.span(h, run); return; }
      i = (i + 1) & mask;
    }
  }
  private span(h: number, run: number): void {
    (this.spans ??= new Map()).set(h, run);
  }
  has(h: number): boolean {
    return this.run(h) >= 0;
  }
  /** The first run holding hash h, or -1. */
  run(h: number): number {
    if (h === 0) return this.hasZero ? this.zeroRun : -1;
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === h) return this.runs[i];
      if (v === 0) return -1;
      i = (i + 1) & mask;
    }
  }
  /** The last run holding hash h, given its first. */
  lastRun(h: number, first: number): number {
    return this.spans === undefined ? first : (this.spans.get(h) ?? first);
  }
  /** Heap bytes held. */
  size(): number {
    return this.table.byteLength + this.runs.byteLength;
  }
  /** The hash table itself, for a full scan: 0 marks an empty position (hash 0 is hasZeroHash()). */
  slots(): Int32Array {
    return this.table;
  }
  /** The first run of the hash at table position i (see slots()). */
  runAt(i: number): number {
    return this.runs[i];
  }
  /** The first run of hash 0, when held. */
  zeroHashRun(): number {
    return this.zeroRun;
  }
  /** Hashes held by several runs: hash → last run (undefined: none). */
  spanMap(): ReadonlyMap<number, number> | undefined {
    return this.spans;
  }
  hasZeroHash(): boolean {
    return this.hasZero;
  }
}

/** Table positions moved from the old table to the new one per add or remove while a resize is under way. */
const MIGRATE_PER_OP = 8;
/** Occurrences per pool chunk (a power of two): the pool grows by whole chunks, never by copying them. */
const CHUNK_BITS = 16;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;

// A table position is one 16-byte record of int32 (four per 64-byte cache line), so that a lookup
// and the chain heads it leads to are one cache line: [keyHash][state][newest occurrence, left]
// [newest occurrence, right]. State: 0 empty, 1 live, 2 moved (old table only: kept so that probe
// runs through it stay intact). In separate arrays an add touched five or six lines.
const R_HASH = 0;
const R_STATE = 1;
const R_HEAD = 2; // + side
// An occurrence is one 32-byte record, [f64 slice][i32 older][i32 newer][i32 slot][3 × i32 unused],
// read through a Float64Array (slice, at 4·i) and an Int32Array (links and slot, at 8·i + 2, 3, 4)
// over one buffer. The slot is a hint: the key's slot in the slice while it is open, so that a
// probe reads the slot record without the slice's table lookup (OpenSlice.probe checks it).
// Slice numbers stay f64: floor(ts / bucketMs) is any integer a double holds. The newest
// occurrence of a chain has no newer one; its newer field holds −2 − (the chain's oldest) instead,
// so the oldest end costs no field in the table. A free occurrence links the free list in `older`.
const O_OLDER = 2;
const O_NEWER = 3;
const O_SLOT = 4;

export class KeyIndex {
  private tab: Int32Array<ArrayBuffer> = new Int32Array(MIN_TABLE * 4);
  private cap = MIN_TABLE; // positions
  private shift = 32 - Math.log2(MIN_TABLE);
  private n = 0; // keys, in both tables while resizing
  // While resizing: the previous table, whose keys move to the current one a few positions per add
  // or remove (and at once when found), so that no single call pays for the whole table.
  private oldTab: Int32Array | undefined = undefined;
  private oldCap = 0;
  private oldShift = 0;
  private oldN = 0; // live keys left in the old table
  private cursor = 0; // old positions below it are moved
  // The pool of occurrences in chunks of CHUNK (the first grows by doubling up to CHUNK): growing
  // it never copies more than one chunk. occF and occI view the same buffers.
  private occF: Float64Array[] = [new Float64Array(MIN_TABLE * 4)];
  private occI: Int32Array[] = [new Int32Array(this.occF[0].buffer)];
  private occCap = MIN_TABLE;
  private occTop = 0; // occurrences ever handed out (the pool's high-water mark)
  private occFree = NONE;
  private occLive = 0;

  /** The table position of hash h (valid until the next add or remove), or NONE. */
  find(h: number): number {
    const tab = this.tab;
    const mask = this.cap - 1;
    for (let i = Math.imul(h, GOLDEN) >>> this.shift; ; i = (i + 1) & mask) {
      const r = i << 2;
      if (tab[r + R_STATE] === 0) return this.oldTab === undefined ? NONE : this.findOld(h);
      if (tab[r] === h) return i;
    }
  }

  /**
   * Reads hash h's first table position and returns what it holds: a load issued ahead of the add
   * or lookup that needs it (see BucketStore.prefetch).
   */
  preload(h: number): number {
    return this.tab[(Math.imul(h, GOLDEN) >>> this.shift) << 2];
  }

  /**
   * The second of the loads a remove() of (h, side) starts with, issued ahead (see unindexSlots in
   * buckets.ts): the newest occurrence's record, which names the chain's oldest. Returns its link
   * field (a value to pass to preloadOldest), or NONE.
   */
  preloadNewest(h: number, side: Side): number {
    const hd = this.head(h, side);
    return hd === NONE ? NONE : this.occI[hd >>> CHUNK_BITS][((hd & CHUNK_MASK) << 3) + O_NEWER];
  }

  /** The third: the oldest occurrence's record (where remove() usually finds its slice), from preloadNewest's value. */
  preloadOldest(link: number): number {
    if (link >= 0 || link === NONE) return 0;
    const o = -2 - link;
    return this.occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_NEWER];
  }

  /** The newest occurrence of the key at `pos` on `side`, or NONE. */
  newest(pos: number, side: Side): number {
    return this.tab[(pos << 2) + R_HEAD + side];
  }

  /** The newest occurrence of hash h on `side`, or NONE: find() and newest() in one. */
  head(h: number, side: Side): number {
    const tab = this.tab;
    const mask = this.cap - 1;
    for (let i = Math.imul(h, GOLDEN) >>> this.shift; ; i = (i + 1) & mask) {
      const r = i << 2;
      if (tab[r + R_STATE] === 0) {
        if (this.oldTab === undefined) return NONE;
        const p = this.findOld(h);
        return p === NONE ? NONE : this.tab[(p << 2) + R_HEAD + side];
      }
      if (tab[r] === h) return tab[r + R_HEAD + side];
    }
  }

  /** The slice number of occurrence o. */
  sliceOf(o: number): number {
    return this.occF[o >>> CHUNK_BITS][(o & CHUNK_MASK) << 2];
  }

  /**
   * Occurrence o's slot hint: the slot its slice gave the key when it was added (−1: none). Colliding
   * keys share an occurrence, and a slice sealed and unsealed numbers its slots anew (it adds them
   * again), so a reader checks the slot's key before trusting it.
   */
  slotOf(o: number): number {
    return this.occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_SLOT];
  }

  older(o: number): number {
    return this.occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_OLDER];
  }

  newer(o: number): number {
    const v = this.occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_NEWER];
    return v < 0 ? NONE : v;
  }

  /**
   * Notes that slice t holds key hash h on `side` (nothing if already noted), and `slot` as the
   * occurrence's slot hint (see slotOf), replacing an earlier one.
   */
  add(h: number, side: Side, t: number, slot = -1): void {
    if (this.oldTab !== undefined) this.migrate(MIGRATE_PER_OP);
    // One probe run finds the key or the empty position it would take.
    let tab = this.tab;
    const mask = this.cap - 1;
    let pos = Math.imul(h, GOLDEN) >>> this.shift;
    for (;;) {
      const r = pos << 2;
      if (tab[r + R_STATE] === 0) {
        pos = this.insertKey(h, pos);
        tab = this.tab;
        break;
      }
      if (tab[r] === h) break;
      pos = (pos + 1) & mask;
    }
    // Chains are newest first, and inserts mostly reach the newest slice: a short walk. (Chunks are
    // indexed in place, not through sliceOf(): a call that is not inlined boxes the f64 it returns.)
    const occF = this.occF, occI = this.occI;
    const hp = (pos << 2) + R_HEAD + side;
    let o = tab[hp];
    let nw = NONE;
    let ot = 0;
    while (o !== NONE) {
      ot = occF[o >>> CHUNK_BITS][(o & CHUNK_MASK) << 2];
      if (ot <= t) break;
      nw = o;
      o = occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_OLDER];
    }
    if (o !== NONE && ot === t) {
      occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_SLOT] = slot;
      return;
    }
    const x = this.alloc();
    const xi = this.occI[x >>> CHUNK_BITS], xr = (x & CHUNK_MASK) << 3;
    this.occF[x >>> CHUNK_BITS][xr >>> 1] = t;
    xi[xr + O_OLDER] = o;
    xi[xr + O_SLOT] = slot;
    if (nw === NONE) {
      // x is the newest: it takes over the oldest end's link (or is the oldest itself).
      if (o === NONE) xi[xr + O_NEWER] = -2 - x;
      else {
        const oi = occI[o >>> CHUNK_BITS], or = ((o & CHUNK_MASK) << 3) + O_NEWER;
        xi[xr + O_NEWER] = oi[or];
        oi[or] = x;
      }
      tab[hp] = x;
    } else {
      xi[xr + O_NEWER] = nw;
      occI[nw >>> CHUNK_BITS][((nw & CHUNK_MASK) << 3) + O_OLDER] = x;
      if (o !== NONE) occI[o >>> CHUNK_BITS][((o & CHUNK_MASK) << 3) + O_NEWER] = x;
      else {
        const hd = tab[hp]; // x is the new oldest
        occI[hd >>> CHUNK_BITS][((hd & CHUNK_MASK) << 3) + O_NEWER] = -2 - x;
      }
    }
  }

  /** Forgets that slice t holds hash h on `side` (the slice no longer holds it, or is gone). */
  remove(h: number, side: Side, t: number): void {
    if (this.oldTab !== undefined) this.migrate(MIGRATE_PER_OP);
    const pos = this.find(h);
    if (pos === NONE) return;
    const tab = this.tab;
    const hp = (pos << 2) + R_HEAD + side;
    const hd = tab[hp];
    if (hd === NONE) return;
    // Slices go oldest first: walk from the oldest end (named by the newest occurrence).
    const occF = this.occF, occI = this.occI;
    const hdi = occI[hd >>> CHUNK_BITS], hdr = ((hd & CHUNK_MASK) << 3) + O_NEWER;
    let o = hd;
    let nwf = hdi[hdr];
    if (occF[hd >>> CHUNK_BITS][(hd & CHUNK_MASK) << 2] !== t) {
      // Not the newest: from the oldest, forward.
      o = -2 - nwf;
      for (;;) {
        const c = o >>> CHUNK_BITS, j = o & CHUNK_MASK;
        const ot = occF[c][j << 2];
        nwf = occI[c][(j << 3) + O_NEWER];
        if (ot === t) break;
        if (ot > t || nwf < 0) return;
        o = nwf;
      }
    }
    const oi = occI[o >>> CHUNK_BITS], or = (o & CHUNK_MASK) << 3;
    const ol = oi[or + O_OLDER];
    if (nwf < 0) {
      // o is the newest: its older one (if any) becomes the newest and takes the oldest end's link.
      tab[hp] = ol;
      if (ol !== NONE) occI[ol >>> CHUNK_BITS][((ol & CHUNK_MASK) << 3) + O_NEWER] = nwf;
    } else {
      occI[nwf >>> CHUNK_BITS][((nwf & CHUNK_MASK) << 3) + O_OLDER] = ol;
      if (ol !== NONE) occI[ol >>> CHUNK_BITS][((ol & CHUNK_MASK) << 3) + O_NEWER] = nwf;
      else hdi[hdr] = -2 - nwf; // o was the oldest
    }
    oi[or + O_OLDER] = this.occFree;
    this.occFree = o;
    if (--this.occLive === 0 && this.occTop > MIN_TABLE) {
      // Empty: give the pool back (it cannot shrink while occurrences, which it indexes, live).
      this.occF = [new Float64Array(MIN_TABLE * 4)];
      this.occI = [new Int32Array(this.occF[0].buffer)];
      this.occCap = MIN_TABLE;
      this.occTop = 0;
      this.occFree = NONE;
    }
    const r = pos << 2;
    if (tab[r + R_HEAD] === NONE && tab[r + R_HEAD + 1] === NONE) this.deleteAt(pos);
  }

  /** Forgets everything (every slice is gone): no walk over the keys. */
  clear(): void {
    const fresh = new KeyIndex();
    Object.assign(this, fresh);
  }

  /** Keys (hashes) indexed. */
  size(): number {
    return this.n;
  }

  /** Occurrences (hash, side, slice) indexed. */
  occurrences(): number {
    return this.occLive;
  }

  /** Is a resize under way (keys still in the previous table)? */
  resizing(): boolean {
    return this.oldTab !== undefined;
  }

  /** Heap bytes held. */
  heapBytes(): number {
    return (this.cap + this.oldCap + (this.next === undefined ? 0 : this.next.length >>> 2)) * 16 + this.occCap * 32;
  }

  private alloc(): number {
    this.occLive++;
    const f = this.occFree;
    if (f !== NONE) {
      this.occFree = this.occI[f >>> CHUNK_BITS][((f & CHUNK_MASK) << 3) + O_OLDER];
      return f;
    }
    if (this.occTop === this.occCap) {
      if (this.occCap < CHUNK) {
        const cap = this.occCap * 2;
        const a = new Float64Array(cap * 4); a.set(this.occF[0]);
        this.occF[0] = a;
        this.occI[0] = new Int32Array(a.buffer);
        this.occCap = cap;
      } else {
        const a = new Float64Array(CHUNK * 4);
        this.occF.push(a);
        this.occI.push(new Int32Array(a.buffer));
        this.occCap += CHUNK;
      }
    }
    return this.occTop++;
  }

  /**
   * Adds key h, found in neither table by a probe run of the current one that ended at the empty
   * position `at`; returns its position, chains empty.
   */
  private insertKey(h: number, at: number): number {
    if (this.oldTab !== undefined) {
      const p = this.findOld(h);
      if (p !== NONE) return p;
    }
    const cap = this.cap;
    if ((this.n + 1) * 2 > cap) {
      this.startResize(cap * 2);
      this.n++;
      return this.place(h);
    }
    if (this.n * 8 > cap * 3 && this.oldTab === undefined) this.prepare(cap * 2);
    this.n++;
    // findOld() may have moved other keys in, but only into positions that were not empty before
    // them; `at` is still the first empty one of h's run unless it was taken.
    if (this.tab[(at << 2) + R_STATE] !== 0) return this.place(h);
    const r = at << 2;
    this.tab[r + R_HASH] = h;
    this.tab[r + R_STATE] = 1;
    this.tab[r + R_HEAD] = this.tab[r + R_HEAD + 1] = NONE;
    return at;
  }

  // The next (larger) table, allocated at 3/8 load and its memory touched a few pages per add, so
  // that the page faults of its 16 bytes per position are not all taken by the adds right after
  // the switch (~30 ms of CPU for a 4M-position table, in one batch of adds).
  private next: Int32Array<ArrayBuffer> | undefined = undefined;
  private touch = 0; // pages of `next` touched

  private prepare(size: number): void {
    let nx = this.next;
    if (nx === undefined || nx.length !== size * 4) {
      nx = this.next = new Int32Array(size * 4);
      this.touch = 0;
    }
    // 4 KiB pages of 256 positions. One page per 8 adds: from 3/8 to 1/2 load there are size/16
    // adds, for size/256 pages.
    if ((this.n & 7) !== 0) return;
    if (this.touch < (size >>> 8)) nx[(this.touch++) << 10] = 0;
  }

  /** Puts h into the current table (it is in neither); returns its position, chains empty. */
  private place(h: number): number {
    const tab = this.tab;
    const mask = this.cap - 1;
    let i = Math.imul(h, GOLDEN) >>> this.shift;
    while (tab[(i << 2) + R_STATE] !== 0) i = (i + 1) & mask;
    const r = i << 2;
    tab[r + R_HASH] = h;
    tab[r + R_STATE] = 1;
    tab[r + R_HEAD] = tab[r + R_HEAD + 1] = NONE;
    return i;
  }

  /** Empties position i, shifting later members of its probe run back (no tombstones). */
  private deleteAt(i: number): void {
    const tab = this.tab;
    const mask = this.cap - 1;
    tab[(i << 2) + R_STATE] = 0;
    this.n--;
    for (let j = (i + 1) & mask; tab[(j << 2) + R_STATE] !== 0; j = (j + 1) & mask) {
      const rj = j << 2;
      const home = Math.imul(tab[rj], GOLDEN) >>> this.shift;
      // j stays when its home lies cyclically in (i, j]: its probe run does not cross the hole.
      if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
      const ri = i << 2;
      tab[ri] = tab[rj];
      tab[ri + R_STATE] = 1;
      tab[ri + R_HEAD] = tab[rj + R_HEAD];
      tab[ri + R_HEAD + 1] = tab[rj + R_HEAD + 1];
      tab[rj + R_STATE] = 0;
      i = j;
    }
    if (this.n * 8 < this.cap && this.cap > MIN_TABLE && this.oldTab === undefined) this.startResize(this.cap / 2);
  }

  /** Makes a table of `size` the current one; the keys move over in later calls (migrate). */
  private startResize(size: number): void {
    if (this.oldTab !== undefined) this.migrate(Infinity); // one resize at a time (rare: moving is faster than filling)
    this.oldTab = this.tab;
    this.oldCap = this.cap;
    this.oldShift = this.shift;
    this.oldN = this.n;
    this.cursor = 0;
    const nx = this.next;
    this.next = undefined;
    this.tab = nx !== undefined && nx.length === size * 4 ? nx : new Int32Array(size * 4);
    this.cap = size;
    this.shift = 32 - Math.log2(size);
    if (this.oldN === 0) this.dropOld();
  }

  /** Moves the live keys of up to `positions` old-table positions to the current table. */
  private migrate(positions: number): void {
    const old = this.oldTab!;
    const end = Math.min(this.oldCap, this.cursor + positions);
    for (let p = this.cursor; p < end; p++) if (old[(p << 2) + R_STATE] === 1) this.moveOld(p);
    this.cursor = end;
    if (end === this.oldCap || this.oldN === 0) this.dropOld();
  }

  /** Moves old position p (live) to the current table; returns its new position. */
  private moveOld(p: number): number {
    const old = this.oldTab!;
    const rp = p << 2;
    const i = this.place(old[rp]);
    const ri = i << 2;
    this.tab[ri + R_HEAD] = old[rp + R_HEAD];
    this.tab[ri + R_HEAD + 1] = old[rp + R_HEAD + 1];
    old[rp + R_STATE] = 2;
    this.oldN--;
    return i;
  }

  /** find() for a key not in the current table: looks in the old one and moves it over when there. */
  private findOld(h: number): number {
    const old = this.oldTab!;
    const mask = this.oldCap - 1;
    for (let p = Math.imul(h, GOLDEN) >>> this.oldShift; ; p = (p + 1) & mask) {
      const rp = p << 2;
      const u = old[rp + R_STATE];
      if (u === 0) return NONE;
      if (u === 1 && old[rp] === h) {
        const i = this.moveOld(p);
        if (this.oldN === 0) this.dropOld();
        return i;
      }
    }
  }

  private dropOld(): void {
    this.oldTab = undefined;
    this.oldCap = 0;
    this.oldN = 0;
    this.cursor = 0;
  }
}
