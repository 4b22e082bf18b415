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
export class KeySet {
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
    if (h === 0) {
      if (!this.hasZero) { this.hasZero = true; this.zeroRun = run; } else if (run !== this.zeroRun) this.span(h, run);
      return;
    }
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === 0) { t[i] = h; this.runs[i] = run; return; }
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

export class KeyIndex {
  private keys = new Int32Array(MIN_TABLE);
  private used = new Uint8Array(MIN_TABLE);
  private heads: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] = [new Int32Array(MIN_TABLE), new Int32Array(MIN_TABLE)]; // newest
  private tails: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] = [new Int32Array(MIN_TABLE), new Int32Array(MIN_TABLE)]; // oldest
  private shift = 32 - Math.log2(MIN_TABLE);
  private n = 0; // keys, in both tables while resizing
  // While resizing: the previous table, whose keys move to the current one a few positions per add
  // or remove (and at once when found), so that no single call pays for the whole table. Used
  // marks: 0 empty, 1 live, 2 moved (kept so that probe runs through it stay intact).
  private oldKeys: Int32Array | undefined = undefined;
  private oldUsed = new Uint8Array(0);
  private oldHeads: [Int32Array, Int32Array] = [new Int32Array(0), new Int32Array(0)];
  private oldTails: [Int32Array, Int32Array] = [new Int32Array(0), new Int32Array(0)];
  private oldShift = 0;
  private oldN = 0; // live keys left in the old table
  private cursor = 0; // old positions below it are moved
  // The pool of occurrences in chunks of CHUNK (the first grows by doubling up to CHUNK): growing
  // it never copies more than one chunk.
  private occT: Float64Array[] = [new Float64Array(MIN_TABLE)]; // slice number
  private occOlder: Int32Array[] = [new Int32Array(MIN_TABLE)];
  private occNewer: Int32Array[] = [new Int32Array(MIN_TABLE)]; // free list link while free
  private occCap = MIN_TABLE;
  private occTop = 0; // occurrences ever handed out (the pool's high-water mark)
  private occFree = NONE;
  private occLive = 0;

  /** The table position of hash h (valid until the next add or remove), or NONE. */
  find(h: number): number {
    const keys = this.keys, used = this.used;
    const mask = keys.length - 1;
    for (let i = Math.imul(h, GOLDEN) >>> this.shift; ; i = (i + 1) & mask) {
      if (used[i] === 0) return this.oldKeys === undefined ? NONE : this.findOld(h);
      if (keys[i] === h) return i;
    }
  }

  /** The newest occurrence of the key at `pos` on `side`, or NONE. */
  newest(pos: number, side: Side): number {
    return this.heads[side][pos];
  }

  /** The slice number of occurrence o. */
  sliceOf(o: number): number {
    return this.occT[o >>> CHUNK_BITS][o & CHUNK_MASK];
  }

  older(o: number): number {
    return this.occOlder[o >>> CHUNK_BITS][o & CHUNK_MASK];
  }

  newer(o: number): number {
    return this.occNewer[o >>> CHUNK_BITS][o & CHUNK_MASK];
  }

  /** Notes that slice t holds key hash h on `side` (nothing if already noted). */
  add(h: number, side: Side, t: number): void {
    if (this.oldKeys !== undefined) this.migrate(MIGRATE_PER_OP);
    let pos = this.find(h);
    if (pos === NONE) pos = this.insertKey(h);
    // Chains are newest first, and inserts mostly reach the newest slice: a short walk. (Chunks are
    // indexed in place, not through sliceOf(): a call that is not inlined boxes the f64 it returns.)
    const occT = this.occT, occOlder = this.occOlder;
    let o = this.heads[side][pos];
    let nw = NONE;
    while (o !== NONE && occT[o >>> CHUNK_BITS][o & CHUNK_MASK] > t) {
      nw = o;
      o = occOlder[o >>> CHUNK_BITS][o & CHUNK_MASK];
    }
    if (o !== NONE && occT[o >>> CHUNK_BITS][o & CHUNK_MASK] === t) return;
    const x = this.alloc();
    const c = x >>> CHUNK_BITS, i = x & CHUNK_MASK;
    this.occT[c][i] = t;
    this.occOlder[c][i] = o;
    this.occNewer[c][i] = nw;
    if (nw === NONE) this.heads[side][pos] = x; else this.occOlder[nw >>> CHUNK_BITS][nw & CHUNK_MASK] = x;
    if (o === NONE) this.tails[side][pos] = x; else this.occNewer[o >>> CHUNK_BITS][o & CHUNK_MASK] = x;
  }

  /** Forgets that slice t holds hash h on `side` (the slice no longer holds it, or is gone). */
  remove(h: number, side: Side, t: number): void {
    if (this.oldKeys !== undefined) this.migrate(MIGRATE_PER_OP);
    const pos = this.find(h);
    if (pos === NONE) return;
    // Slices go oldest first: walk from the oldest end.
    const occT = this.occT, occNewer = this.occNewer;
    let o = this.tails[side][pos];
    while (o !== NONE && occT[o >>> CHUNK_BITS][o & CHUNK_MASK] < t) o = occNewer[o >>> CHUNK_BITS][o & CHUNK_MASK];
    if (o === NONE || occT[o >>> CHUNK_BITS][o & CHUNK_MASK] !== t) return;
    const nw = occNewer[o >>> CHUNK_BITS][o & CHUNK_MASK];
    const ol = this.occOlder[o >>> CHUNK_BITS][o & CHUNK_MASK];
    if (nw === NONE) this.heads[side][pos] = ol; else this.occOlder[nw >>> CHUNK_BITS][nw & CHUNK_MASK] = ol;
    if (ol === NONE) this.tails[side][pos] = nw; else this.occNewer[ol >>> CHUNK_BITS][ol & CHUNK_MASK] = nw;
    this.occNewer[o >>> CHUNK_BITS][o & CHUNK_MASK] = this.occFree;
    this.occFree = o;
    if (--this.occLive === 0 && this.occTop > MIN_TABLE) {
      // Empty: give the pool back (it cannot shrink while occurrences, which it indexes, live).
      this.occT = [new Float64Array(MIN_TABLE)];
      this.occOlder = [new Int32Array(MIN_TABLE)];
      this.occNewer = [new Int32Array(MIN_TABLE)];
      this.occCap = MIN_TABLE;
      this.occTop = 0;
      this.occFree = NONE;
    }
    if (this.heads[0][pos] === NONE && this.heads[1][pos] === NONE) this.deleteAt(pos);
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
    return this.oldKeys !== undefined;
  }

  /** Heap bytes held. */
  heapBytes(): number {
    return (this.keys.length + this.oldUsed.length + (this.next?.keys.length ?? 0)) * (4 + 1 + 16) + this.occCap * 16;
  }

  private alloc(): number {
    this.occLive++;
    const f = this.occFree;
    if (f !== NONE) {
      this.occFree = this.occNewer[f >>> CHUNK_BITS][f & CHUNK_MASK];
      return f;
    }
    if (this.occTop === this.occCap) {
      if (this.occCap < CHUNK) {
        const cap = this.occCap * 2;
        const t = new Float64Array(cap); t.set(this.occT[0]); this.occT[0] = t;
        const a = new Int32Array(cap); a.set(this.occOlder[0]); this.occOlder[0] = a;
        const b = new Int32Array(cap); b.set(this.occNewer[0]); this.occNewer[0] = b;
        this.occCap = cap;
      } else {
        this.occT.push(new Float64Array(CHUNK));
        this.occOlder.push(new Int32Array(CHUNK));
        this.occNewer.push(new Int32Array(CHUNK));
        this.occCap += CHUNK;
      }
    }
    return this.occTop++;
  }

  private insertKey(h: number): number {
    const len = this.keys.length;
    if ((this.n + 1) * 2 > len) this.startResize(len * 2);
    else if (this.n * 8 > len * 3 && this.oldKeys === undefined) this.prepare(len * 2);
    this.n++;
    return this.place(h);
  }

  // The next (larger) table, allocated at 3/8 load and its memory touched a few pages per add, so
  // that the page faults of its ~21 bytes per position are not all taken by the adds right after
  // the switch (~30 ms of CPU for a 4M-position table, in one batch of adds).
  private next: { keys: Int32Array<ArrayBuffer>; used: Uint8Array<ArrayBuffer>; heads: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>]; tails: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] } | undefined = undefined;
  private touch = 0; // pages of `next` touched

  private prepare(size: number): void {
    let nx = this.next;
    if (nx === undefined || nx.keys.length !== size) {
      nx = this.next = {
        keys: new Int32Array(size), used: new Uint8Array(size),
        heads: [new Int32Array(size), new Int32Array(size)], tails: [new Int32Array(size), new Int32Array(size)],
      };
      this.touch = 0;
    }
    // 4 KiB pages: 1024 positions of an Int32Array, 4096 of the Uint8Array. One page per 8 adds:
    // from 3/8 to 1/2 load there are size/16 adds, for ~size/200 pages.
    if ((this.n & 7) !== 0) return;
    const perArray = size >>> 10;
    if (this.touch < perArray * 5 + (size >>> 12)) {
      const a = Math.floor(this.touch / perArray);
      const at = (this.touch % perArray) << 10;
      if (a === 0) nx.keys[at] = 0;
      else if (a === 1) nx.heads[0][at] = 0;
      else if (a === 2) nx.heads[1][at] = 0;
      else if (a === 3) nx.tails[0][at] = 0;
      else if (a === 4) nx.tails[1][at] = 0;
      else nx.used[(this.touch - perArray * 5) << 12] = 0;
      this.touch++;
    }
  }

  /** Puts h into the current table (it is in neither); returns its position, chains empty. */
  private place(h: number): number {
    const keys = this.keys, used = this.used;
    const mask = keys.length - 1;
    let i = Math.imul(h, GOLDEN) >>> this.shift;
    while (used[i] !== 0) i = (i + 1) & mask;
    used[i] = 1;
    keys[i] = h;
    this.heads[0][i] = this.heads[1][i] = this.tails[0][i] = this.tails[1][i] = NONE;
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
    if (this.n * 8 < keys.length && keys.length > MIN_TABLE && this.oldKeys === undefined) this.startResize(keys.length / 2);
  }

  /** Makes a table of `size` the current one; the keys move over in later calls (migrate). */
  private startResize(size: number): void {
    if (this.oldKeys !== undefined) this.migrate(Infinity); // one resize at a time (rare: moving is faster than filling)
    this.oldKeys = this.keys;
    this.oldUsed = this.used;
    this.oldHeads = this.heads;
    this.oldTails = this.tails;
    this.oldShift = this.shift;
    this.oldN = this.n;
    this.cursor = 0;
    const nx = this.next;
    this.next = undefined;
    if (nx !== undefined && nx.keys.length === size) {
      this.keys = nx.keys; this.used = nx.used; this.heads = nx.heads; this.tails = nx.tails;
    } else {
      this.keys = new Int32Array(size);
      this.used = new Uint8Array(size);
      this.heads = [new Int32Array(size), new Int32Array(size)];
      this.tails = [new Int32Array(size), new Int32Array(size)];
    }
    this.shift = 32 - Math.log2(size);
    if (this.oldN === 0) this.dropOld();
  }

  /** Moves the live keys of up to `positions` old-table positions to the current table. */
  private migrate(positions: number): void {
    const used = this.oldUsed;
    const end = Math.min(used.length, this.cursor + positions);
    for (let p = this.cursor; p < end; p++) if (used[p] === 1) this.moveOld(p);
    this.cursor = end;
    if (end === used.length || this.oldN === 0) this.dropOld();
  }

  /** Moves old position p (live) to the current table; returns its new position. */
  private moveOld(p: number): number {
    const i = this.place(this.oldKeys![p]);
    this.heads[0][i] = this.oldHeads[0][p]; this.heads[1][i] = this.oldHeads[1][p];
    this.tails[0][i] = this.oldTails[0][p]; this.tails[1][i] = this.oldTails[1][p];
    this.oldUsed[p] = 2;
    this.oldN--;
    return i;
  }

  /** find() for a key not in the current table: looks in the old one and moves it over when there. */
  private findOld(h: number): number {
    const keys = this.oldKeys!, used = this.oldUsed;
    const mask = keys.length - 1;
    for (let p = Math.imul(h, GOLDEN) >>> this.oldShift; ; p = (p + 1) & mask) {
      const u = used[p];
      if (u === 0) return NONE;
      if (u === 1 && keys[p] === h) {
        const i = this.moveOld(p);
        if (this.oldN === 0) this.dropOld();
        return i;
      }
    }
  }

  private dropOld(): void {
    this.oldKeys = undefined;
    this.oldUsed = new Uint8Array(0);
    this.oldHeads = this.oldTails = [new Int32Array(0), new Int32Array(0)];
    this.oldN = 0;
    this.cursor = 0;
  }
}
