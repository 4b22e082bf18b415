/**
 * The batch interval join of `joinery verify`: both inputs in memory, grouped by canonical key,
 * each key's events sorted by (time, id), re-deliveries dropped, then a sliding window per key.
 * It follows the engine's semantics (README, Join semantics): an event's identity is (side, key,
 * time, id), and a second event of the same identity is a re-delivery, never joined; l and r join
 * when lower ≤ r.ts − l.ts ≤ upper; outer kinds add each event that joined nothing.
 *
 * A row is identified by the input events it is made of (a left and a right event, or one of them
 * for an unmatched row of an outer kind), so the multiset counts numbers (rowCode, rows.ts), shared
 * with the reading of the output, which resolves each row's key, ids and event times to those
 * events. Exact, unlike a hash of the row's text.
 */
import type { JoinKind } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import type { SideEvents } from './inputs.js';
import type { KeyTable } from './keys.js';
import type { RowCounts } from './rows.js';

/** Right event index + 1 lies below this; left index + 1 below 2^53 / R_SPAN = 2^27. */
const R_SPAN = 2 ** 26;
export const MAX_EVENTS_PER_SIDE = R_SPAN - 2;

/** A row as a number: left and right event index (−1 for the absent side of an unmatched row). */
export function rowCode(l: number, r: number): number {
  return (l + 1) * R_SPAN + (r + 1);
}
export function rowEvents(code: number): [number, number] {
  const r = code % R_SPAN;
  return [(code - r) / R_SPAN - 1, r - 1];
}

export function checkCapacity(ev: SideEvents): void {
  if (ev.n > MAX_EVENTS_PER_SIDE) throw new JoineryError('E_INPUT', `${ev.path}: more than ${MAX_EVENTS_PER_SIDE} events, beyond what verify holds in memory`);
}

/** A side's events grouped by key: order[start[k], start[k+1]) are key k's, sorted by (ts, id). */
export class Grouped {
  readonly start: Int32Array;
  readonly order: Int32Array;
  /** 1 = a re-delivery of the event before it in order (same key, ts and id): never joined. */
  readonly redelivered: Uint8Array;
  readonly matched: Uint8Array;
  redeliveries = 0;

  constructor(readonly ev: SideEvents, nKeys: number) {
    const n = ev.n, keyIdx = ev.keyIdx, ts = ev.ts, ids = ev.ids;
    const start = new Int32Array(nKeys + 1);
    for (let i = 0; i < n; i++) start[keyIdx[i] + 1]++;
    for (let k = 0; k < nKeys; k++) start[k + 1] += start[k];
    const fill = start.slice(0, nKeys);
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[fill[keyIdx[i]]++] = i;
    // Stable: of several deliveries the first in the file stays first (its line is the one reported).
    const byTsId = (a: number, b: number) => (ts[a] - ts[b]) || (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0);
    const redelivered = new Uint8Array(n);
    for (let k = 0; k < nKeys; k++) {
      const s = start[k], e = start[k + 1];
      if (e - s < 2) continue;
      let sorted = true;
      for (let j = s + 1; j < e && sorted; j++) if (byTsId(order[j - 1], order[j]) > 0) sorted = false;
      if (!sorted) order.subarray(s, e).sort(byTsId);
      for (let j = s + 1; j < e; j++) {
        const a = order[j - 1], b = order[j];
        if (ts[a] === ts[b] && ids[a] === ids[b]) { redelivered[b] = 1; this.redeliveries++; }
      }
    }
    this.start = start; this.order = order; this.redelivered = redelivered;
    this.matched = new Uint8Array(n);
  }

  /** Index of key k's event (not a re-delivery) with this id and time, or -1. */
  find(k: number, id: string, ts: number): number {
    if (k < 0 || k + 1 >= this.start.length) return -1;
    const order = this.order, t = this.ev.ts, ids = this.ev.ids;
    let lo = this.start[k], hi = this.start[k + 1];
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (t[order[mid]] < ts) lo = mid + 1; else hi = mid; }
    for (let j = lo, end = this.start[k + 1]; j < end && t[order[j]] === ts; j++) {
      const i = order[j];
      if (ids[i] === id && this.redelivered[i] === 0) return i;
    }
    return -1;
  }

  /** Another event of key k with this id but a different time (the id is not unique), or -1. */
  sameIdOtherTime(k: number, id: string, ts: number): number {
    if (k < 0 || k + 1 >= this.start.length) return -1;
    for (let j = this.start[k]; j < this.start[k + 1]; j++) {
      const i = this.order[j];
      if (this.ev.ids[i] === id && this.ev.ts[i] !== ts) return i;
    }
    return -1;
  }
}

export interface Expected { pairs: number; unmatchedLeft: number; unmatchedRight: number; rows: number }

/** Adds every row of the batch join to `counts` (expected side); returns how many of each kind. */
export function batchJoin(keys: KeyTable, left: Grouped, right: Grouped, kind: JoinKind, lowerMs: number, upperMs: number,
  counts: RowCounts): Expected {
  const out: Expected = { pairs: 0, unmatchedLeft: 0, unmatchedRight: 0, rows: 0 };
  const lo = left.order, ro = right.order;
  const lts = left.ev.ts, rts = right.ev.ts;
  const outerLeft = kind === 'left' || kind === 'full', outerRight = kind === 'right' || kind === 'full';
  const nKeys = keys.size;
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
  out.rows = out.pairs + out.unmatchedLeft + out.unmatchedRight;
  return out;
}
