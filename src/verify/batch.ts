/**
 * The batch interval join of one partition of `joinery verify`: its events as columns over the
 * spilled records (ids stay bytes in the record buffer), grouped by canonical key, each key's events
 * sorted by (time, id), re-deliveries dropped, then a sliding window per key. It follows the
 * engine's semantics (README, Join semantics): an event's identity is (side, key, time, id), and a
 * second event of the same identity is a re-delivery, never joined; l and r join when
 * lower ≤ r.ts − l.ts ≤ upper; outer kinds add each event that joined nothing.
 *
 * A row is identified by the input events it is made of (a left and a right event, or one of them
 * for an unmatched row of an outer kind), so the multiset counts numbers (rowCode, rows.ts), shared
 * with the reading of the output, which resolves each row's key, ids and event times to those
 * events. Exact, unlike a hash of the row's text.
 */
import type { JoinKind } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import type { KeyTable } from './keys.js';
import type { RowCounts } from './rows.js';
import { EV_HEAD, padded, type Views } from './spill.js';

/** Right event index + 1 lies below this; left index + 1 below 2^53 / R_SPAN = 2^27. */
const R_SPAN = 2 ** 26;
export const MAX_EVENTS_PER_SIDE = R_SPAN - 2;
/** A log's records (Kafka's) are ordered by (partition, offset): offsets below 2^40 keep the two in one number. */
const PARTITION_SPAN = 2 ** 40;

/** A row as a number: left and right event index (−1 for the absent side of an unmatched row). */
export function rowCode(l: number, r: number): number {
  return (l + 1) * R_SPAN + (r + 1);
}
export function rowEvents(code: number): [number, number] {
  const r = code % R_SPAN;
  return [(code - r) / R_SPAN - 1, r - 1];
}

/**
 * Where the chunks of a source begin: a file's chunks are byte ranges read by different threads, so
 * a record's line and the newest event time before it are its chunk's base plus its own; a Kafka
 * topic's chunks are its partitions, each with its own order and watermark.
 */
export interface ChunkBase {
  /** A topic's chunks are its partitions (Kafka); otherwise byte ranges of a file. */
  partitioned: boolean;
  lineBase: number[];
  maxBase: number[];
}

/** The order of a record in its source: the line of a file, (partition, offset) of a topic. */
export function ordOf(base: ChunkBase, chunk: number, pos: number): number {
  return base.partitioned ? chunk * PARTITION_SPAN + pos : base.lineBase[chunk] + pos;
}

/** Where a record is: its line (file) or "partition/offset" (Kafka). */
export function whereOf(base: ChunkBase, chunk: number, pos: number): number | string {
  return base.partitioned ? `${chunk}/${pos}` : base.lineBase[chunk] + pos;
}

/** One side's events of a partition as columns over its records (index = order in the partition). */
export class PartEvents {
  readonly n: number;
  readonly keyIdx: Int32Array;
  readonly ts: Float64Array;
  readonly pos: Float64Array;
  readonly chunk: Uint16Array;
  /** Newest event time of the chunk's partition (Kafka) or file before the event. */
  readonly newestBefore: Float64Array;
  readonly idOff: Int32Array;
  readonly idLen: Uint16Array;
  lateCandidates = 0;

  constructor(readonly data: Views, keys: KeyTable, readonly base: ChunkBase, maxDelayMs: number, what: string) {
    const u8 = data.u8, u16 = data.u16, f64 = data.f64, u32 = data.u32, len = u8.length;
    let n = 0;
    for (let o = 0; o < len; o += padded(EV_HEAD + u16[(o >> 1) + 14] + u16[(o >> 1) + 15])) n++;
    if (n > MAX_EVENTS_PER_SIDE) throw new JoineryError('E_INPUT', `${what}: more than ${MAX_EVENTS_PER_SIDE} events in one partition; give verify a larger --max-memory`);
    this.n = n;
    const keyIdx = this.keyIdx = new Int32Array(n), ts = this.ts = new Float64Array(n), pos = this.pos = new Float64Array(n);
    const chunk = this.chunk = new Uint16Array(n), before = this.newestBefore = new Float64Array(n);
    const idOff = this.idOff = new Int32Array(n), idLen = this.idLen = new Uint16Array(n);
    const maxBase = base.maxBase, partitioned = base.partitioned;
    let late = 0;
    for (let i = 0, o = 0; i < n; i++) {
      const i8 = o >> 3, i2 = (o >> 1) + 14;
      const kl = u16[i2], il = u16[i2 + 1], c = u16[i2 + 2];
      const t = f64[i8];
      let b = f64[i8 + 2];
      if (!partitioned && maxBase[c] > b) b = maxBase[c];
      keyIdx[i] = keys.internHashed(u8, o + EV_HEAD, o + EV_HEAD + kl, u32[(o >> 2) + 6] | 0);
      ts[i] = t; pos[i] = f64[i8 + 1]; chunk[i] = c; before[i] = b;
      idOff[i] = o + EV_HEAD + kl; idLen[i] = il;
      if (t < b - maxDelayMs) late++;
      o += padded(EV_HEAD + kl + il);
    }
    this.lateCandidates = late;
  }

  /** ms the event lay behind the newest event before it, when more than --max-delay (else 0). */
  behindMs(i: number, maxDelayMs: number): number {
    const d = this.newestBefore[i] - this.ts[i];
    return d > maxDelayMs ? d : 0;
  }

  ord(i: number): number { return ordOf(this.base, this.chunk[i], this.pos[i]); }
  where(i: number): number | string { return whereOf(this.base, this.chunk[i], this.pos[i]); }
  idText(i: number): string { return Buffer.from(this.data.buf, this.idOff[i], this.idLen[i]).toString('utf8'); }

  /** Compares the ids of events a and b as bytes. */
  idCmp(a: number, b: number): number {
    const d = this.data.u8, la = this.idLen[a], lb = this.idLen[b];
    let oa = this.idOff[a], ob = this.idOff[b];
    const m = la < lb ? la : lb;
    for (let j = 0; j < m; j++, oa++, ob++) if (d[oa] !== d[ob]) return d[oa] - d[ob];
    return la - lb;
  }

  /** Whether event i's id equals the bytes b[s, s + len). */
  idIs(i: number, b: Uint8Array, s: number, len: number): boolean {
    if (this.idLen[i] !== len) return false;
    const d = this.data.u8;
    for (let j = 0, o = this.idOff[i]; j < len; j++) if (d[o + j] !== b[s + j]) return false;
    return true;
  }
}

/** A side's events grouped by key: order[start[k], start[k+1]) are key k's, sorted by (ts, id). */
export class Grouped {
  readonly start: Int32Array;
  readonly order: Int32Array;
  /** 1 = a re-delivery of the event before it in order (same key, ts and id): never joined. */
  readonly redelivered: Uint8Array;
  readonly matched: Uint8Array;
  redeliveries = 0;

  constructor(readonly ev: PartEvents, nKeys: number) {
    const n = ev.n, keyIdx = ev.keyIdx, ts = ev.ts;
    const start = new Int32Array(nKeys + 1);
    for (let i = 0; i < n; i++) start[keyIdx[i] + 1]++;
    for (let k = 0; k < nKeys; k++) start[k + 1] += start[k];
    const fill = start.slice(0, nKeys);
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[fill[keyIdx[i]]++] = i;
    // Stable: of several deliveries the first read stays first (its line is the one reported).
    const byTsId = (a: number, b: number) => (ts[a] - ts[b]) || ev.idCmp(a, b) || (a - b);
    const redelivered = new Uint8Array(n);
    for (let k = 0; k < nKeys; k++) {
      const s = start[k], e = start[k + 1];
      if (e - s < 2) continue;
      let sorted = true;
      for (let j = s + 1; j < e && sorted; j++) if (byTsId(order[j - 1], order[j]) > 0) sorted = false;
      if (!sorted) order.subarray(s, e).sort(byTsId);
      for (let j = s + 1; j < e; j++) {
        const a = order[j - 1], b = order[j];
        if (ts[a] === ts[b] && ev.idCmp(a, b) === 0) { redelivered[b] = 1; this.redeliveries++; }
      }
    }
    this.start = start; this.order = order; this.redelivered = redelivered;
    this.matched = new Uint8Array(n);
  }

  /** Index of key k's event (not a re-delivery) with the id bytes b[s, s + len) and this time, or -1. */
  find(k: number, b: Uint8Array, s: number, len: number, ts: number): number {
    if (k < 0 || k + 1 >= this.start.length) return -1;
    const order = this.order, t = this.ev.ts;
    let lo = this.start[k], hi = this.start[k + 1];
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (t[order[mid]] < ts) lo = mid + 1; else hi = mid; }
    for (let j = lo, end = this.start[k + 1]; j < end && t[order[j]] === ts; j++) {
      const i = order[j];
      if (this.redelivered[i] === 0 && this.ev.idIs(i, b, s, len)) return i;
    }
    return -1;
  }

  /** sameIdOtherTime's answers by event, −2 = not worked out yet (filled a key at a time). */
  private otherTime: Int32Array | null = null;

  /**
   * Another event of event i's key with its id but a different time (the id is not unique), or -1:
   * the first such in (ts, id) order. Worked out for all of a key's events at its first question:
   * asked once per missing row, a scan of the key's events each time took minutes on one hot key
   * with many rows missing.
   */
  sameIdOtherTime(i: number): number {
    const ev = this.ev, ts = ev.ts;
    if (this.otherTime === null) this.otherTime = new Int32Array(ev.n).fill(-2);
    const memo = this.otherTime;
    if (memo[i] !== -2) return memo[i];
    const k = ev.keyIdx[i];
    // order holds the key's events by (ts, id, index): sorted stably by id, each id's events stay in that order
    const byId = Array.from(this.order.subarray(this.start[k], this.start[k + 1])).sort((a, b) => ev.idCmp(a, b) || (ts[a] - ts[b]) || (a - b));
    for (let j = 0; j < byId.length;) {
      let g = j + 1;
      while (g < byId.length && ev.idCmp(byId[j], byId[g]) === 0) g++;
      const first = byId[j];
      let second = -1; // the first of the id's events at another time than `first`
      for (let x = j + 1; x < g; x++) if (ts[byId[x]] !== ts[first]) { second = byId[x]; break; }
      for (let x = j; x < g; x++) memo[byId[x]] = ts[byId[x]] !== ts[first] ? first : second;
      j = g;
    }
    return memo[i];
  }
}

export interface Expected { pairs: number; unmatchedLeft: number; unmatchedRight: number }

/** Adds every row of the batch join to `counts` (expected side); returns how many of each kind. */
export function batchJoin(nKeys: number, left: Grouped, right: Grouped, kind: JoinKind, lowerMs: number, upperMs: number,
  counts: RowCounts): Expected {
  const out: Expected = { pairs: 0, unmatchedLeft: 0, unmatchedRight: 0 };
  const lo = left.order, ro = right.order;
  const lts = left.ev.ts, rts = right.ev.ts;
  const outerLeft = kind === 'left' || kind === 'full', outerRight = kind === 'right' || kind === 'full';
  for (let k = 0; k < nKeys; k++) {
    const ls = left.start[k], le = left.start[k + 1], rs = right.start[k], re = right.start[k + 1];
    if ((ls === le || rs === re) && !(outerLeft && ls < le) && !(outerRight && rs < re)) continue;
    let p = rs;
    for (let j = ls; j < le; j++) {
      const l = lo[j];
      if (left.redelivered[l]) continue;
      const from = lts[l] + lowerMs, to = lts[l] + upperMs;
      while (p < re && rts[ro[p]] < from) p++;
      for (let q = p; q < re; q++) {
        const r = ro[q];
        if (rts[r] > to) break;
        if (right.redelivered[r]) continue;
        counts.addExpected(rowCode(l, r));
        left.matched[l] = 1; right.matched[r] = 1;
        out.pairs++;
      }
      if (outerLeft && left.matched[l] === 0) {
        counts.addExpected(rowCode(l, -1));
        out.unmatchedLeft++;
      }
    }
    if (outerRight) {
      for (let q = rs; q < re; q++) {
        const r = ro[q];
        if (right.redelivered[r] || right.matched[r]) continue;
        counts.addExpected(rowCode(-1, r));
        out.unmatchedRight++;
      }
    }
  }
  return out;
}
