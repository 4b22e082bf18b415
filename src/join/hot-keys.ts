/**
 * Hot-key detection and the --max-key-entries guard, kept beside the join (the store interface
 * stays as it is: it has no per-key count, and keeping one for every key would cost a map lookup
 * and memory per key).
 *
 * Two stages:
 *  1. A count-min sketch of inserts per key hash (both sides together, so a tracked key is seen
 *     on both sides), two generations rotated by the
 *     watermark, so it covers at least the last retention span. It never under-counts the entries
 *     a key holds, so a key that may hold ≥ promoteAt entries is always found. Per event: two
 *     increments and two reads of typed arrays.
 *  2. Keys whose estimate reaches promoteAt are tracked exactly (at most TRACKED_MAX): their live
 *     entries are counted once by a probe of the store, then followed per insert and per watermark
 *     (a heap of expiry times per side). The guard decides on that exact count.
 *
 * Pairs per event come from the join loop (already counted); only events with many pairs touch a map.
 */
import type { Side, StateStore } from '../state/store.js';

/** A key holding this many entries on one side (or the guard's cap, if lower) is reported as hot. */
export const HOT_ENTRIES = 10_000;
/** An event producing this many pairs marks its key as hot. */
export const HOT_PAIRS_PER_EVENT = 10_000;
/**
 * Sketch layout: BLOCKS blocks of one 64-byte cache line each (8 cells × 2 generations of u32).
 * A key's two cells lie in one block, so an event touches one cache line: with four lines per
 * event (two rows × two generations) the sketch cost ~0.4 µs of cache misses per event inside the
 * worker, one line is a tenth of that.
 */
const BLOCK_BITS = 12;
const BLOCKS = 1 << BLOCK_BITS;
/** Cells per row, as a count-min sketch sees them (for the noise floor). */
const WIDTH = BLOCKS * 4;
const TRACKED_MAX = 64;
const REPORTED = 10;
/** Promotion needs an estimate this many times the sketch's average cell, so collisions under heavy traffic do not promote every key. */
const NOISE_FACTOR = 4;

export interface HotKeyEntries { key: string; side: 'left' | 'right'; entries: number; diverted: number }
export interface HotKeyPairs { key: string; maxPairsPerEvent: number; hotEvents: number; pairs: number }
export interface HotKeyReport { byEntries: HotKeyEntries[]; byPairsPerEvent: HotKeyPairs[]; diverted: [number, number] }

export type HotKeyLog = (msg: string, fields: Record<string, unknown>) => void;

/** Min-heap of expiry times (ms). */
class ExpiryHeap {
  private a = new Float64Array(16);
  size = 0;
  push(x: number): void {
    if (this.size === this.a.length) { const b = new Float64Array(this.a.length * 2); b.set(this.a); this.a = b; }
    const a = this.a;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p]; i = p;
    }
    a[i] = x;
  }
  /** Drop every value < wm. */
  dropBelow(wm: number): void {
    const a = this.a;
    while (this.size > 0 && a[0] < wm) {
      const x = a[--this.size];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= this.size) break;
        if (c + 1 < this.size && a[c + 1] < a[c]) c++;
        if (a[c] >= x) break;
        a[i] = a[c]; i = c;
      }
      a[i] = x;
    }
  }
}

interface Tracked {
  key: Buffer;
  text: string;
  heaps: [ExpiryHeap, ExpiryHeap];
  diverted: [number, number];
  warned: [boolean, boolean];
}

interface PairsSeen { text: string; maxPairsPerEvent: number; hotEvents: number; pairs: number }

const SIDE_NAME = ['left', 'right'] as const;

export class HotKeys {
  /** BLOCKS × 8 cells × 2 generations; cell c of generation g in block b is at b * 16 + c * 2 + g. */
  private readonly cells = new Uint32Array(BLOCKS * 16);
  /** The generation counting now (the other one holds the previous period). */
  private cur = 0;
  private genInserts: [number, number] = [0, 0]; // [current, previous]
  private genStartMs = -Infinity;
  private watermark = -Infinity;
  readonly promoteAt: number;
  private readonly hotAt: number;
  private readonly tracked = new Map<number, Tracked>();
  /** Tracked keys per sketch cell (first row): a tracked key stays exact when its estimate falls after a rotation. */
  private readonly trackedCells = new Uint8Array(BLOCKS);
  private readonly pairsSeen = new Map<number, PairsSeen>();
  readonly diverted: [number, number] = [0, 0];

  /**
   * maxEntries: the guard's cap per key and side (0 = no guard). rotateMs: how long (in watermark
   * time) an entry can stay buffered, at least; the sketch keeps two such periods.
   */
  constructor(private readonly store: StateStore, readonly maxEntries: number, private readonly rotateMs: number,
    private readonly expireAt: (side: Side, ts: number) => number, private readonly warn: HotKeyLog) {
    this.hotAt = maxEntries > 0 ? Math.min(HOT_ENTRIES, maxEntries) : HOT_ENTRIES;
    this.promoteAt = Math.max(1, Math.floor(this.hotAt / 2));
  }

  /**
   * Before inserting an event: the key's live entry count on `side` if it is tracked (or now gets
   * promoted), else -1. Cheap for keys that are not hot (two sketch reads).
   */
  check(side: Side, keyGroup: number, keyHash: number, key: Uint8Array): number {
    // The key group is the hash's low bits (one worker sees a fraction of them): mix before indexing.
    const x = Math.imul(keyHash, 0x9e3779b1);
    const base = (x >>> (32 - BLOCK_BITS)) << 4;
    const i0 = base + (((x >>> 17) & 7) << 1), i1 = base + (((x >>> 14) & 7) << 1);
    const c = this.cells;
    const est = Math.min(c[i0] + c[i0 + 1], c[i1] + c[i1 + 1]);
    if (est + 1 < this.promoteAt && (this.tracked.size === 0 || this.trackedCells[base >>> 4] === 0)) return -1;
    return this.slowCheck(side, keyGroup, keyHash, key, est);
  }

  private slowCheck(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, est: number): number {
    let t = this.tracked.get(keyHash);
    if (t !== undefined) return t.key.equals(key) ? t.heaps[side].size : -1;
    const floor = (this.genInserts[0] + this.genInserts[1]) / WIDTH * NOISE_FACTOR;
    if (est + 1 < this.promoteAt || est < floor || !this.makeRoom()) return -1;
    t = { key: Buffer.from(key), text: Buffer.from(key).toString('utf8'), heaps: [new ExpiryHeap(), new ExpiryHeap()], diverted: [0, 0], warned: [false, false] };
    // Count what is buffered now (including what a restored checkpoint brought), both sides.
    const wm = this.watermark;
    const from = Number.isFinite(wm) ? wm - 1 - this.rotateMs : Number.MIN_SAFE_INTEGER; // rotateMs ≥ the longest retention
    for (const s of [0, 1] as const) {
      const heap = t.heaps[s];
      this.store.probe(s, keyGroup, keyHash, key, from, Number.MAX_SAFE_INTEGER, (e) => {
        const x = this.expireAt(s, e.ts);
        if (x >= wm) heap.push(x);
      });
    }
    this.tracked.set(keyHash, t);
    this.trackedCells[Math.imul(keyHash, 0x9e3779b1) >>> (32 - BLOCK_BITS)]++;
    return t.heaps[side].size;
  }

  /** A tracked slot for a new key: free, or taken from the key holding the fewest entries if that is well below promoteAt. */
  private makeRoom(): boolean {
    if (this.tracked.size < TRACKED_MAX) return true;
    let victim = -1, least = Infinity;
    for (const [h, t] of this.tracked) {
      const n = Math.max(t.heaps[0].size, t.heaps[1].size);
      if (n < least) { least = n; victim = h; }
    }
    if (least >= this.promoteAt / 2) return false;
    this.untrack(victim);
    return true;
  }

  private untrack(keyHash: number): void {
    this.tracked.delete(keyHash);
    this.trackedCells[Math.imul(keyHash, 0x9e3779b1) >>> (32 - BLOCK_BITS)]--;
  }

  /** After a successful insert. `count` is what check() returned. */
  inserted(side: Side, keyHash: number, key: Uint8Array, ts: number, count: number): void {
    const x = Math.imul(keyHash, 0x9e3779b1);
    const base = ((x >>> (32 - BLOCK_BITS)) << 4) + this.cur;
    const c = this.cells;
    c[base + (((x >>> 17) & 7) << 1)]++;
    c[base + (((x >>> 14) & 7) << 1)]++; // the same cell twice when both positions coincide: still never under-counts
    this.genInserts[0]++;
    if (count < 0) return;
    const t = this.tracked.get(keyHash)!;
    t.heaps[side].push(this.expireAt(side, ts));
    if (!t.warned[side] && t.heaps[side].size >= this.hotAt) {
      t.warned[side] = true;
      this.warn(`hot key ${t.text}: ${t.heaps[side].size} entries buffered on the ${SIDE_NAME[side]} side`, { key: t.text, side: SIDE_NAME[side], entries: t.heaps[side].size, maxKeyEntries: this.maxEntries || null });
    }
  }

  /** The guard refused an event of a tracked key: count it, warn once per key and side. */
  divert(side: Side, keyHash: number, entries: number): string {
    const t = this.tracked.get(keyHash)!;
    this.diverted[side]++;
    t.diverted[side]++;
    const reason = `key ${t.text} holds ${entries} entries on the ${SIDE_NAME[side]} side (--max-key-entries)`;
    if (t.diverted[side] === 1) {
      this.warn(`hot key ${t.text}: ${SIDE_NAME[side]} events beyond ${this.maxEntries} buffered entries are diverted to --late-out (--max-key-entries)`, { key: t.text, side: SIDE_NAME[side], entries, maxKeyEntries: this.maxEntries });
    }
    return reason;
  }

  /** An event produced `pairs` pairs (called only when pairs ≥ HOT_PAIRS_PER_EVENT). */
  manyPairs(keyHash: number, key: Uint8Array, pairs: number): void {
    let p = this.pairsSeen.get(keyHash);
    if (p === undefined) {
      if (this.pairsSeen.size >= TRACKED_MAX) {
        let victim = -1, least = Infinity;
        for (const [h, q] of this.pairsSeen) if (q.maxPairsPerEvent < least) { least = q.maxPairsPerEvent; victim = h; }
        if (least >= pairs) return;
        this.pairsSeen.delete(victim);
      }
      p = { text: Buffer.from(key).toString('utf8'), maxPairsPerEvent: 0, hotEvents: 0, pairs: 0 };
      this.pairsSeen.set(keyHash, p);
      this.warn(`hot key ${p.text}: one event produced ${pairs} pairs`, { key: p.text, pairsPerEvent: pairs });
    }
    p.hotEvents++;
    p.pairs += pairs;
    if (pairs > p.maxPairsPerEvent) p.maxPairsPerEvent = pairs;
  }

  onWatermark(wm: number): void {
    this.watermark = wm;
    if (!Number.isFinite(this.genStartMs)) this.genStartMs = wm;
    else if (wm - this.genStartMs >= this.rotateMs) {
      // The older generation goes; what it counted can no longer be buffered.
      this.cur ^= 1;
      const c = this.cells;
      for (let i = this.cur; i < c.length; i += 2) c[i] = 0;
      this.genInserts = [0, this.genInserts[0]];
      this.genStartMs = wm;
    }
    for (const [h, t] of this.tracked) {
      t.heaps[0].dropBelow(wm); t.heaps[1].dropBelow(wm);
      for (const s of [0, 1] as const) if (t.heaps[s].size < this.hotAt / 2) t.warned[s] = false;
      // A key that cooled down gives its slot back (the sketch promotes it again if it heats up).
      if (t.heaps[0].size + t.heaps[1].size === 0 && t.diverted[0] + t.diverted[1] === 0) this.untrack(h);
    }
  }

  report(): HotKeyReport {
    const byEntries: HotKeyEntries[] = [];
    for (const t of this.tracked.values()) {
      for (const s of [0, 1] as const) {
        if (t.heaps[s].size > 0 || t.diverted[s] > 0) byEntries.push({ key: t.text, side: SIDE_NAME[s], entries: t.heaps[s].size, diverted: t.diverted[s] });
      }
    }
    byEntries.sort((a, b) => b.entries - a.entries || b.diverted - a.diverted);
    const byPairsPerEvent = [...this.pairsSeen.values()].sort((a, b) => b.maxPairsPerEvent - a.maxPairsPerEvent).slice(0, REPORTED)
      .map((p) => ({ key: p.text, maxPairsPerEvent: p.maxPairsPerEvent, hotEvents: p.hotEvents, pairs: p.pairs }));
    return { byEntries: byEntries.slice(0, REPORTED), byPairsPerEvent, diverted: [this.diverted[0], this.diverted[1]] };
  }
}
