/**
 * Frozen groups: the key index bounded to recent state (docs/architecture.md §5, "State larger
 * than memory").
 *
 * The key index (key-index.ts) holds one 32-byte occurrence per (key, side, slice) plus its table
 * position, and every sealed bucket keeps an exact KeySet: ~75 bytes of memory per buffered event
 * when keys are mostly distinct. With a long window (24 h) that is the memory a machine runs out
 * of first, before the LMDB pages of the state itself. So a sealed slice, once it is behind the
 * watermark (no insert reaches it, see Freezer.work), leaves the key index and its KeySets for the
 * compact table of its *group* (G consecutive slice numbers): an open-addressing multimap of 8-byte
 * entries [hash][part · side · first run] at load ≤ 0.7, about 11 bytes per (key, side, slice). A
 * probe asks each group its range overlaps for the slices holding its key (one table walk per
 * group, usually one cache line) and merges them, by slice, with the key index's chain of the
 * unfrozen slices. G is chosen by the engine so that a window spans about 4 groups, at most 512
 * slices each (engine/setup.ts): a probe of a 24 h window pays ~6 table walks instead of 2,880
 * bucket look-ups (and only the side with the long range pays them).
 *
 * Slices freeze for memory: while the sealed slices in the key index would take more than their
 * budget (half the store's memory budget, at ~75 bytes per entry), the oldest sealed slices behind
 * the watermark go into their group's table, a few at a time, whether or not the group is
 * complete. So the key index holds the open slices plus that budget, whatever the state's size.
 * Freezing only complete groups kept every slice still open when its group froze (the budget's
 * recent share, sealer.ts) in the index until it expired: ~400 MB per worker at 2.6 GiB buffered,
 * growing with the state. Freezing more than memory needs costs CPU: a probe walks a table per
 * group its range overlaps, where the key index costs one lookup for a key absent from the side.
 * A table is sized when its group's first slices come, for the rest at their entries per slice;
 * a group that outgrows it goes on in a second table.
 *
 * Each build (some sealed slices of one group) fills the table from their KeySets in bounded steps
 * over several expire() calls, unseen by probes, then is switched in at once: the slices are
 * marked frozen (the chain walk skips them from then on), each part's filters become views of the
 * group, and their key index occurrences leave in bounded steps through the usual removal queue
 * (Buckets.unindexFrozen). Parts that go later (expired, or read back by a late insert) are marked
 * not live, and the group skips them; the group itself goes with its last live part.
 */
import type { Buckets } from './buckets.js';
import type { KeySet, RunFilter } from './key-index.js';
import type { Part, Slice } from './sealed-io.js';
import type { Buffered, Side } from './store.js';

/** The entry's meta word: [part index: 11 bits][side: 1 bit][first run: 20 bits], stored + 1 (0 marks an empty position). */
const RUN_BITS = 20;
const SIDE_BIT = 1 << RUN_BITS;
const PART_SHIFT = RUN_BITS + 1;
/** Runs numbered at or above this keep their bucket out of a group (they stay in the key index). */
const MAX_RUN = (1 << RUN_BITS) - 1;
/** Parts per group (the all-ones meta word is never used, so 0 stays free after the + 1). */
const MAX_PARTS = (1 << (32 - PART_SHIFT)) - 1;
const MAX_LOAD = 0.7;
const GOLDEN = 0x9e3779b1;
/** Slices between a group's last one and the watermark's before the group is frozen. */
const SEAL_SLACK = 2;
/** Work units (see seal-job.ts: ≈ one entry written to LMDB) per table entry added. */
const U_ENTRY = 1 / 8;
/**
 * Memory of a (key, side) entry of a sealed slice left in the key index: its 32-byte occurrence,
 * its share of the table's 16-byte positions (at 1/4–1/2 load) and of its bucket's KeySet (8 bytes
 * per position at 1/4–1/2 load): ~75 bytes when keys are mostly distinct.
 */
const INDEXED_BYTES_PER_ENTRY = 75;
/**
 * The sealed slices left in the key index may take this share of the store's memory budget before
 * the oldest are frozen: a frozen slice costs its probes a table walk per group, so slices are
 * frozen for memory only (`bench --state-memory 100m`: 2.48–2.57 µs per event when none froze,
 * 2.63–2.75 when every sealed slice did).
 */
const INDEX_BUDGET_SHARE = 0.5;
/** A new group's table is sized for the rest of its slices at the build's entries per slice, times this. */
const HEADROOM = 1.15;

/** The sealed buckets of slices of one group (G consecutive slice numbers), looked up through one table. */
export class FrozenGroup {
  readonly parts: Part[] = [];
  /** Each part's slice number (parts[i] is in slice ts[i]). */
  readonly ts: number[] = [];
  /** Parts still live; the group goes when none is. */
  live = 0;
  /** Parts [0, visible) are switched in; a build adds the entries of the ones after first, unseen by probes. */
  visible = 0;
  /** The slice numbers its switched-in parts span. */
  tMin = Infinity;
  tMax = -Infinity;
  /** Entries the table takes at its maximum load, and entries added. */
  readonly capacity: number;
  entries = 0;
  /** In Freezer.groups. */
  listed = false;
  private readonly table: Int32Array;
  private readonly size: number;
  constructor(readonly g: number, capacity: number) {
    this.size = Math.max(8, Math.ceil(capacity / MAX_LOAD));
    this.capacity = Math.floor(this.size * MAX_LOAD);
    this.table = new Int32Array(this.size * 2);
  }

  private home(h: number): number {
    return Math.floor((Math.imul(h, GOLDEN) >>> 0) * this.size / 4294967296);
  }

  add(h: number, part: number, side: Side, run: number): void {
    const t = this.table;
    const size = this.size;
    let i = this.home(h);
    while (t[2 * i + 1] !== 0) if (++i === size) i = 0;
    t[2 * i] = h;
    t[2 * i + 1] = ((part << PART_SHIFT) | (side << RUN_BITS) | run) + 1;
    this.entries++;
  }

  /** The first run of part p holding hash h on `side`, or -1. */
  run(p: number, side: Side, h: number): number {
    const t = this.table;
    const size = this.size;
    const want = (p << PART_SHIFT) | (side << RUN_BITS);
    for (let i = this.home(h); ; ) {
      const m = t[2 * i + 1];
      if (m === 0) return -1;
      if (t[2 * i] === h && (((m - 1) & ~MAX_RUN) | 0) === want) return (m - 1) & MAX_RUN;
      if (++i === size) i = 0;
    }
  }

  /**
   * Appends to `out` the slices in [tFrom, tTo] whose live, switched-in parts hold hash h on `side`
   * (in the order their entries were added: by build, and slice by slice within one).
   */
  slicesOf(h: number, side: Side, tFrom: number, tTo: number, out: number[]): void {
    const t = this.table;
    const size = this.size;
    const start = out.length;
    const visible = this.visible;
    for (let i = this.home(h); ; ) {
      const m = t[2 * i + 1];
      if (m === 0) return;
      if (t[2 * i] === h && (((m - 1) >>> RUN_BITS) & 1) === side) {
        const p = (m - 1) >>> PART_SHIFT;
        const st = this.ts[p];
        if (p < visible && st >= tFrom && st <= tTo && this.parts[p].live && (out.length === start || out[out.length - 1] !== st)) out.push(st);
      }
      if (++i === size) i = 0;
    }
  }

  heapBytes(): number {
    return this.table.byteLength;
  }
}

/** A frozen part's filter for one side: a view of its group's table. */
class FrozenFilter implements RunFilter {
  constructor(private readonly group: FrozenGroup, private readonly p: number, private readonly side: Side,
    private readonly spans: ReadonlyMap<number, number> | undefined) {}
  has(h: number): boolean {
    return this.group.run(this.p, this.side, h) >= 0;
  }
  run(h: number): number {
    return this.group.run(this.p, this.side, h);
  }
  lastRun(h: number, first: number): number {
    return this.spans === undefined ? first : (this.spans.get(h) ?? first);
  }
  size(): number {
    return 0; // the group's table is counted once, by the group
  }
}

/** A build: the KeySets of some sealed parts go into their group's table a bounded number of entries per step. */
interface Build {
  readonly group: FrozenGroup;
  /** The group's index of the build's first part (its parts are the group's from there on). */
  readonly first: number;
  readonly slices: Slice[]; // per part of the build, its slice
  readonly keys: [KeySet | undefined, KeySet | undefined][]; // per part of the build
  part: number; // of the build
  side: number;
  pos: number; // table position of the KeySet next; -1: its hash 0 first
}

/** Finds sealed slices to freeze, adds them to their group's table in steps and switches them in. */
export class Freezer {
  /** Groups with parts switched in, in the order they first had some. */
  readonly groups: FrozenGroup[] = [];
  private build: Build | undefined;
  /** Per group number, the group whose table takes that group's next parts while it has room. */
  private readonly filling = new Map<number, FrozenGroup>();
  /** What the last search saw (the slice limit, the seal count): a search only runs when one changed. */
  private seenLimit = NaN;
  private seenSeals = -1;

  /** What the sealed slices in the key index may take (estimated) before the oldest are frozen. */
  private readonly indexBudgetBytes: number;

  /**
   * groupSlices: G, the slices per group (0: never freeze). memoryBytes: the store's memory budget
   * (0: none, and every sealed slice behind the watermark is frozen).
   */
  constructor(private readonly b: Buckets, readonly groupSlices: number, memoryBytes = 0) {
    this.indexBudgetBytes = memoryBytes * INDEX_BUDGET_SHARE;
  }

  /**
   * Does up to `budget` units of freezing work. A sealed slice may be frozen once it is SEAL_SLACK
   * slices behind the watermark's (no insert reaches it any more, but a late one: that reads it
   * back, see sealer.ts unseal), oldest first, while the sealed slices in the key index are over
   * their budget. Slices still open then are frozen when they are sealed, if still needed.
   */
  work(budget: number): number {
    const G = this.groupSlices;
    if (G <= 0) return 0;
    let used = 0;
    while (used < budget) {
      if (this.build === undefined && !this.start(G)) break;
      used += this.step(budget - used);
    }
    return used;
  }

  /**
   * Starts a build of the oldest sealed, unfrozen slices behind the limit that share a group
   * number; false when there are none, or when the key index's sealed slices fit their budget.
   */
  private start(G: number): boolean {
    const b = this.b;
    const limit = Math.floor(b.wmMax / b.bucketMs) - SEAL_SLACK;
    if (!Number.isFinite(limit)) return false;
    // The scan is over every slice: only when a slice was sealed or the limit moved since the last one.
    if (limit === this.seenLimit && b.sealGen === this.seenSeals) return false;
    this.seenLimit = limit;
    this.seenSeals = b.sealGen;
    const order = b.order;
    let g = NaN;
    const slices: Slice[] = [];
    const keys: [KeySet | undefined, KeySet | undefined][] = [];
    const parts: Part[] = [];
    const ts: number[] = [];
    let entries = 0, nSlices = 0;
    let indexed = 0; // (key, side) entries of every sealed slice still in the key index
    let batching = true;
    for (let j = 0; j < order.length; j++) {
      const s = order[j];
      if (s.open !== undefined || s.frozen) continue;
      for (const p of s.parts) for (const f of p.filters) indexed += (f as KeySet | undefined)?.count ?? 0;
      if (!batching || s.t >= limit || s.parts.length === 0 || s.parts.length > MAX_PARTS || b.job?.slice === s) continue;
      const sg = Math.floor(s.t / G);
      // One group number per build (the next build takes the rest), within a group's parts.
      if ((sg !== g && parts.length > 0) || parts.length + s.parts.length > MAX_PARTS) { batching = false; continue; }
      let fits = true;
      for (const p of s.parts) {
        for (const f of p.filters) if (f !== undefined && (f as KeySet).maxRun >= MAX_RUN) fits = false;
      }
      if (!fits) continue; // stays in the key index
      g = sg;
      nSlices++;
      for (const p of s.parts) {
        slices.push(s);
        const k = p.filters as [KeySet | undefined, KeySet | undefined];
        keys.push([k[0], k[1]]);
        parts.push(p);
        ts.push(s.t);
        entries += (k[0]?.count ?? 0) + (k[1]?.count ?? 0);
      }
    }
    // A frozen slice costs its probes a table walk per group; while the sealed slices in the key
    // index fit the budget, they stay there.
    if (indexed * INDEXED_BYTES_PER_ENTRY <= this.indexBudgetBytes) return false;
    if (parts.length === 0) return false;
    let group = this.filling.get(g);
    if (group === undefined || group.entries + entries > group.capacity || group.parts.length + parts.length > MAX_PARTS) {
      // Sized for the rest of the group's slices at this build's entries per slice: a group that
      // turns out larger goes on in a second table (one more walk for the probes that reach it).
      const left = (g + 1) * G - ts[0];
      group = new FrozenGroup(g, Math.max(entries, Math.ceil(entries / nSlices * left * HEADROOM)));
      this.filling.set(g, group);
    }
    const first = group.parts.length;
    group.parts.push(...parts);
    group.ts.push(...ts);
    this.build = { group, first, slices, keys, part: 0, side: 0, pos: -1 };
    this.seenSeals = -1; // more may be waiting: search again after this build
    return true;
  }

  /** Adds up to `budget` units of the build's entries; switches its parts in when all are added. */
  private step(budget: number): number {
    const bd = this.build!;
    const group = bd.group;
    let used = 0;
    while (bd.part < bd.keys.length && used < budget) {
      const f = bd.keys[bd.part][bd.side];
      if (f === undefined) { this.nextSide(bd); continue; }
      const side = bd.side as Side;
      const p = bd.first + bd.part;
      if (bd.pos < 0) {
        if (f.hasZeroHash()) { group.add(0, p, side, f.zeroHashRun()); used += U_ENTRY; }
        bd.pos = 0;
      }
      const hs = f.slots();
      let i = bd.pos;
      const end = Math.min(hs.length, i + Math.ceil((budget - used) / U_ENTRY) * 2);
      for (; i < end; i++) {
        const h = hs[i];
        if (h !== 0) { group.add(h, p, side, f.runAt(i)); used += U_ENTRY; }
      }
      used += (i - bd.pos) / 64; // scanning empty positions is not free either
      bd.pos = i;
      if (i === hs.length) this.nextSide(bd);
    }
    if (bd.part === bd.keys.length) this.switchIn(bd);
    return Math.max(used, U_ENTRY);
  }

  private nextSide(bd: Build): void {
    bd.pos = -1;
    if (++bd.side > 1) { bd.side = 0; bd.part++; }
  }

  /**
   * The group's table replaces the build's slices' key index entries and KeySets. A slice read back
   * into memory while the table was built (slice.open set) is left out; parts dropped meanwhile are
   * not live, and the group skips them.
   */
  private switchIn(bd: Build): void {
    this.build = undefined;
    const b = this.b;
    const group = bd.group;
    for (let i = 0; i < bd.keys.length; i++) {
      const p = bd.first + i;
      const s = bd.slices[i];
      const part = group.parts[p];
      if (s.open !== undefined || b.slices.get(s.t) !== s || !part.live) continue;
      const k = bd.keys[i];
      part.filters = [
        k[0] === undefined ? undefined : new FrozenFilter(group, p, 0, k[0].spanMap()),
        k[1] === undefined ? undefined : new FrozenFilter(group, p, 1, k[1].spanMap()),
      ];
      part.group = group;
      group.live++;
      if (s.t < group.tMin) group.tMin = s.t;
      if (s.t > group.tMax) group.tMax = s.t;
      s.frozen = true;
      b.unindexFrozen(part, s.t, k);
    }
    group.visible = group.parts.length;
    if (group.live > 0 && !group.listed) {
      group.listed = true;
      this.groups.push(group);
    }
  }

  /** The frozen slices in [tFrom, tTo] holding hash h on `side`, ascending (valid until the next call). */
  slicesOf(h: number, side: Side, tFrom: number, tTo: number): readonly number[] {
    const out = this.found;
    out.length = 0;
    for (const g of this.groups) if (g.tMax >= tFrom && g.tMin <= tTo) g.slicesOf(h, side, tFrom, tTo, out);
    // Groups fill in seal order, which is not slice order (sealer.ts): sort what came out of order.
    for (let i = 1; i < out.length; i++) {
      if (out[i] > out[i - 1]) continue;
      out.sort((x, y) => x - y);
      let n = 1;
      for (let j = 1; j < out.length; j++) if (out[j] !== out[n - 1]) out[n++] = out[j];
      out.length = n;
      break;
    }
    return out;
  }

  private readonly found: number[] = [];

  /** Visits the entries of frozen slice t for a probe (see BucketStore.probe). */
  probeSlice(t: number, side: Side, keyGroup: number, h: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    const b = this.b;
    const slice = b.slices.get(t);
    if (slice === undefined || !slice.frozen) return; // gone, or read back into memory (then in the chain)
    b.probedSlices++;
    b.reader.probeSlice(slice, side, keyGroup, h, key, fromTs, toTs, visit);
  }

  /** A part went (dropped, or read back into memory); a frozen group goes with its last live part. */
  partGone(part: Part): void {
    part.live = false;
    const g = part.group;
    if (g === undefined) return;
    part.group = undefined;
    if (--g.live === 0) {
      const i = this.groups.indexOf(g);
      if (i >= 0) this.groups.splice(i, 1);
      g.listed = false;
      if (this.filling.get(g.g) === g) this.filling.delete(g.g);
    }
  }

  /** Everything went at once (end of input). */
  clear(): void {
    this.groups.length = 0;
    this.build = undefined;
    this.filling.clear();
  }

  heapBytes(): number {
    let n = 0;
    for (const g of this.groups) n += g.heapBytes();
    return n;
  }
}
