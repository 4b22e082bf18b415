/**
 * The first half of a seal job (see bucket-store.ts, "Incremental sealing"): the job's state, and
 * sorting an open slice's slots into LMDB key order in bounded steps (count per key group, scatter
 * by key group with numeric sort keys, quicksort each group one partition per step). The second
 * half, writing the sorted slots into bucket databases, is in sealer.ts.
 */
import { OFF_MASK, RUN_BYTES, RUN_KEYS, SLAB_SHIFT } from './bucket-format.js';
import type { KeySet } from './key-index.js';
import type { Database } from './lmdb.js';
import type { ClassStat, OpenSlice } from './open-slice.js';
import type { Slice } from './sealed-io.js';

// ---- incremental sealing ----
//
// A seal job turns one complete open slice into sealed buckets a bounded amount of work at a time.
// Work is counted in units of about one entry written (see "Incremental sealing" in the header).

export const PH_COUNT = 0; // count the slots of each key group
export const PH_SCATTER = 1; // counting sort by key group into `order`, with each slot's sort keys
export const PH_SORT = 2; // sort each key group's range (quicksort, one partition per step)
export const PH_WRITE = 3; // append the current bucket's values in key order
export const PH_FILTER = 4; // build the current bucket's key filters
/**
 * Every bucket written; keys whose entries on a side all expired while the slice was open (in no
 * part) leave the key index, a bounded number of slots per step, before the switch. (Done at the
 * switch in one go, this took ~1 µs per key of the slice in one call: 0.1–0.2 s for a 30 s slice
 * at 50k events/s per worker, whenever a side's bucket expires while open — the right side when
 * lower = 0.)
 */
export const PH_UNINDEX = 5;
/** Ranges up to this size are finished by insertion sort. */
export const SMALL_SORT = 12;
/**
 * Work units (≈ one entry written: the write phase counts one per entry plus U_PUT per LMDB value) per
 * slot counted, per slot scattered, per element of a partition or an insertion sort, per filter
 * hash. Calibrated on the 2-vCPU box.
 */
export const U_COUNT = 1 / 32;
export const U_GROUP = 1 / 64; // per key group present (its sort, prefix sum, range)
export const U_SCATTER = 1 / 8;
export const U_PART = 1 / 48;
export const U_FILTER = 1 / 16;
export const U_PUT = 1;
export const U_UNINDEX = 1 / 4; // per key index removal (a random access into the index)

/**
 * Per-group counters shared by a store's seal jobs (one job at a time): 256 KiB, too much to
 * allocate and zero per job when a slice holds a few thousand keys. A job leaves it zeroed when its
 * sort completes; `dirty` marks one given up before that (the next job clears it all).
 */
export class GroupScratch {
  readonly counts = new Int32Array(65536);
  dirty = false;
}

/** One bucket (retention class) of a slice being sealed: its database as far as written, its bits and filters. */
export class ClassSeal {
  name: string | undefined = undefined;
  db: Database<Buffer, Buffer> | undefined = undefined;
  ordinal = 0; // next entry ordinal
  runs = 0; // runs put (the number of the run being gathered)
  runBytes = 0; // bytes of the run being gathered (at the start of the sealer's vbuf; it may span write steps)
  runRecs = 0; // its records
  readonly bits: Uint8Array;
  readonly filters: [KeySet | undefined, KeySet | undefined] = [undefined, undefined];
  constructor(readonly cs: ClassStat) {
    this.bits = new Uint8Array((cs.count + 7) >>> 3);
  }
}

/**
 * The sealing of one slice in progress. The slice stays open (in memory, fully served from its
 * arena) until every bucket's database is complete; then it switches to its parts in one step.
 * Any change to the slice's entries (an insert) abandons the job; a bucket that expires meanwhile
 * is dropped from it, its partial database with it.
 */
export class SealJob {
  phase = PH_COUNT;
  pos = 0;
  readonly n: number; // slots
  readonly order: Int32Array; // slots, in key order once sorted
  /** Sort keys by position in `order`: keyLen·2^40 + key bytes 0–4, then key bytes 5–10 (big-endian, 0-padded). */
  readonly c1: Float64Array;
  readonly c2: Float64Array;
  /** Per key group: slots counted, then the group's start, then (after the scatter) its end. */
  private readonly gcount: Int32Array;
  /** The key groups present, ascending once counted (ng of them); the sort phase walks them from gi. */
  private readonly groups: Int32Array;
  private ng = 0;
  private gi = 0;
  private readonly stack: number[] = []; // sort phase: ranges [a, b) of the current group still to sort
  readonly classes: ClassSeal[];
  ci = 0; // bucket being written (earlier ones are complete)
  fside = 0; // filter phase: side being built
  readonly nHashes = [0, 0];
  readonly hashes: [Int32Array, Int32Array];
  readonly runs: [Int32Array, Int32Array]; // the run of each hash in `hashes`
  /** Entries whose joined flag was set since the job began (their bits are set at the switch). */
  readonly late: number[] = [];
  /** Work units the job is expected to take (roughly) and those done so far. */
  readonly estimate: number;
  done = 0;

  constructor(readonly slice: Slice, readonly os: OpenSlice, private readonly scratch: GroupScratch) {
    const n = this.n = os.n;
    if (scratch.dirty) scratch.counts.fill(0);
    scratch.dirty = true;
    this.gcount = scratch.counts;
    this.groups = new Int32Array(Math.min(n, 65536));
    this.order = new Int32Array(n);
    this.c1 = new Float64Array(n);
    this.c2 = new Float64Array(n);
    this.hashes = [new Int32Array(n), new Int32Array(n)];
    this.runs = [new Int32Array(n), new Int32Array(n)];
    this.classes = [...os.classes.values()].sort((a, b) => a.c - b.c).map((cs) => new ClassSeal(cs));
    let est = n * (U_GROUP + U_COUNT + U_SCATTER + 8 * U_PART);
    for (const cl of this.classes) {
      // One value per run: a run closes at RUN_KEYS records or before it would pass RUN_BYTES.
      const runs = cl.cs.count / RUN_KEYS + cl.cs.bytes / RUN_BYTES;
      est += n * U_COUNT + cl.cs.count * (1 + U_FILTER) + runs * U_PUT;
    }
    if (os.classList.length > this.classes.length) est += n * (U_COUNT + U_UNINDEX);
    this.estimate = est;
  }

  /**
   * Sorts the slots, about `budget` units of work per call (at least one small step). Returns the
   * units used; the phase is PH_WRITE once `order` holds the slots in LMDB key order (keyGroup,
   * keyLen, key bytes).
   */
  sortStep(budget: number): number {
    let used = 0;
    const n = this.n;
    const os = this.os;
    while (used < budget && this.phase < PH_WRITE) {
      if (this.phase === PH_COUNT) {
        const counts = this.gcount, group = os.group, groups = this.groups;
        const end = Math.min(n, this.pos + Math.max(1024, Math.ceil((budget - used) / U_COUNT)));
        let ng = this.ng;
        for (let s = this.pos; s < end; s++) {
          const g = group[s];
          if (counts[g]++ === 0) groups[ng++] = g;
        }
        this.ng = ng;
        used += (end - this.pos) * U_COUNT;
        this.pos = end;
        if (end === n) {
          groups.subarray(0, ng).sort();
          let start = 0;
          for (let i = 0; i < ng; i++) { // counts[g] = start of group g
            const g = groups[i];
            const c = counts[g];
            counts[g] = start;
            start += c;
          }
          used += ng * U_GROUP;
          this.phase = PH_SCATTER;
          this.pos = 0;
        }
      } else if (this.phase === PH_SCATTER) {
        // gcount[g] serves as group g's fill position: afterwards it is the *end* of group g.
        const st = this.gcount, order = this.order, c1 = this.c1, c2 = this.c2;
        const group = os.group, keyRef = os.keyRef, keyLen = os.keyLen, slabs = os.slabs;
        const end = Math.min(n, this.pos + Math.max(256, Math.ceil((budget - used) / U_SCATTER)));
        for (let s = this.pos; s < end; s++) {
          const p = st[group[s]]++;
          order[p] = s;
          const len = keyLen[s];
          const r = keyRef[s];
          const b = slabs[r >>> SLAB_SHIFT];
          const o = r & OFF_MASK;
          let x = 0;
          for (let i = 0; i < 5; i++) x = x * 256 + (i < len ? b[o + i] : 0);
          c1[p] = len * 1099511627776 + x;
          let y = 0;
          if (len > 5) for (let i = 5; i < 11; i++) y = y * 256 + (i < len ? b[o + i] : 0);
          c2[p] = y;
        }
        used += (end - this.pos) * U_SCATTER;
        this.pos = end;
        if (end === n) {
          this.phase = PH_SORT;
          this.gi = 0;
          this.pos = 0; // start of group groups[gi] (the end of the group before it)
        }
      } else {
        used += this.sortGroups(budget - used);
      }
    }
    return used;
  }

  /** Sorts key group after key group: one partition or one small insertion sort per iteration. */
  private sortGroups(budget: number): number {
    let used = 0;
    const stack = this.stack;
    while (used < budget) {
      if (stack.length === 0) {
        // The next key group with two slots or more (the others need no sorting).
        const st = this.gcount, groups = this.groups, ng = this.ng;
        const gi0 = this.gi;
        let gi = gi0;
        let lo = this.pos;
        while (gi < ng && st[groups[gi]] - lo <= 1) lo = st[groups[gi++]];
        used += (gi - gi0) * U_GROUP;
        if (gi >= ng) {
          for (let i = 0; i < ng; i++) st[groups[i]] = 0; // the scratch goes back zeroed
          this.scratch.dirty = false;
          this.phase = PH_WRITE;
          this.pos = 0;
          return used;
        }
        const hi = st[groups[gi]];
        this.gi = gi + 1;
        this.pos = hi;
        stack.push(lo, hi);
        continue;
      }
      const b = stack.pop()!;
      const a = stack.pop()!;
      if (b - a <= SMALL_SORT) {
        this.insertionSort(a, b);
        used += (b - a) * U_PART;
        continue;
      }
      const m = this.partition(a, b);
      used += (b - a) * U_PART;
      // The larger side waits below the smaller: the stack stays O(log n) deep.
      if (m - a > b - m - 1) {
        if (m - a > 1) stack.push(a, m);
        if (b - m - 1 > 1) stack.push(m + 1, b);
      } else {
        if (b - m - 1 > 1) stack.push(m + 1, b);
        if (m - a > 1) stack.push(a, m);
      }
    }
    return used;
  }

  /** Orders position p against (v1, v2, slot s), both in one key group (slots have distinct keys). */
  private cmpAt(p: number, v1: number, v2: number, s: number): number {
    const a1 = this.c1[p];
    if (a1 !== v1) return a1 < v1 ? -1 : 1;
    const a2 = this.c2[p];
    if (a2 !== v2) return a2 < v2 ? -1 : 1;
    return this.cmpTail(this.order[p], s);
  }

  /** Key bytes from 11 on of two slots with equal key lengths. */
  private cmpTail(x: number, y: number): number {
    if (x === y) return 0;
    const os = this.os;
    const rx = os.keyRef[x], ry = os.keyRef[y];
    const bx = os.slabs[rx >>> SLAB_SHIFT], by = os.slabs[ry >>> SLAB_SHIFT];
    const ox = rx & OFF_MASK, oy = ry & OFF_MASK;
    const len = os.keyLen[x];
    for (let i = 11; i < len; i++) if (bx[ox + i] !== by[oy + i]) return bx[ox + i] - by[oy + i];
    return 0;
  }

  private swap(p: number, q: number): void {
    const c1 = this.c1, c2 = this.c2, order = this.order;
    const t1 = c1[p]; c1[p] = c1[q]; c1[q] = t1;
    const t2 = c2[p]; c2[p] = c2[q]; c2[q] = t2;
    const t = order[p]; order[p] = order[q]; order[q] = t;
  }

  private insertionSort(a: number, b: number): void {
    const c1 = this.c1, c2 = this.c2, order = this.order;
    for (let i = a + 1; i < b; i++) {
      const v1 = c1[i], v2 = c2[i], s = order[i];
      let j = i - 1;
      while (j >= a && this.cmpAt(j, v1, v2, s) > 0) {
        c1[j + 1] = c1[j];
        c2[j + 1] = c2[j];
        order[j + 1] = order[j];
        j--;
      }
      c1[j + 1] = v1;
      c2[j + 1] = v2;
      order[j + 1] = s;
    }
  }

  /**
   * Partitions [a, b) (more than SMALL_SORT positions) around a median of three; returns the
   * pivot's final position m: [a, m) sorts before it, (m, b) after.
   */
  private partition(a: number, b: number): number {
    const c1 = this.c1, c2 = this.c2, order = this.order;
    const m = (a + b) >>> 1;
    const z = b - 1;
    if (this.cmpAt(m, c1[a], c2[a], order[a]) < 0) this.swap(m, a);
    if (this.cmpAt(z, c1[a], c2[a], order[a]) < 0) this.swap(z, a);
    if (this.cmpAt(z, c1[m], c2[m], order[m]) < 0) this.swap(z, m);
    // Now a ≤ pivot ≤ z: sentinels for both scans. The pivot waits at z − 1.
    const p = z - 1;
    this.swap(m, p);
    const v1 = c1[p], v2 = c2[p], vs = order[p];
    let i = a, j = p;
    for (;;) {
      do i++; while (this.cmpAt(i, v1, v2, vs) < 0);
      do j--; while (this.cmpAt(j, v1, v2, vs) > 0);
      if (i >= j) break;
      this.swap(i, j);
    }
    this.swap(i, p);
    return i;
  }
}
