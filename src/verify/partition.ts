/**
 * The second pass of `joinery verify`, one key-hash partition at a time: load the partition's
 * left and right events and output rows, join the events as a batch, count the output rows into
 * the same multiset, and keep the first examples of each difference (by their order in the inputs
 * and the output, so that the report does not depend on how the data was partitioned).
 */
import type { JoinKind } from '../config/schema.js';
import { batchJoin, Grouped, ordOf, PartEvents, rowCode, rowEvents, whereOf, type ChunkBase } from './batch.js';
import { Explainer, type Example, type MissingCause, type RawRow } from './explain.js';
import { KeyTable } from './keys.js';
import { RowCounts } from './rows.js';
import { EV_HEAD, loadSegments, NULL_LEN, padded, ROW_HEAD, type Segment, type Views } from './spill.js';

export interface JoinSpec { kind: JoinKind; lowerMs: number; upperMs: number; maxDelayMs: number; examples: number }

export interface PartitionJob {
  p: number;
  /** Segments of the left events, the right events and the output rows, each in reading order. */
  segs: [Segment[], Segment[], Segment[]];
  bases: [ChunkBase, ChunkBase, ChunkBase];
  spec: JoinSpec;
}

/** An example with its order: the first N by order are reported. */
export interface Ranked { ord: [number, number]; ex: Example }

export interface PartitionResult {
  p: number;
  pairs: number; unmatchedLeft: number; unmatchedRight: number;
  rows: number; missing: number; extra: number; duplicated: number;
  missingCauses: Record<MissingCause, number>;
  events: [number, number]; redeliveries: [number, number]; lateCandidates: [number, number];
  examples: { missing: Ranked[]; extra: Ranked[]; duplicated: Ranked[] };
  /** Bytes of the partition's records (left, right, output). */
  bytes: number;
}

/** Keeps the n smallest by order. */
export class FirstN {
  readonly items: Ranked[] = [];
  constructor(private readonly n: number) {}
  /** Whether an example of this order would be kept (then `add` it). */
  wants(a: number, b: number): boolean {
    if (this.items.length < this.n) return true;
    if (this.n === 0) return false; // --examples 0
    const last = this.items[this.items.length - 1].ord;
    return a < last[0] || (a === last[0] && b < last[1]);
  }
  add(a: number, b: number, ex: Example): void {
    const it = this.items;
    let i = it.length;
    while (i > 0 && (it[i - 1].ord[0] > a || (it[i - 1].ord[0] === a && it[i - 1].ord[1] > b))) i--;
    it.splice(i, 0, { ord: [a, b], ex });
    if (it.length > this.n) it.pop();
  }
}

export function joinPartition(job: PartitionJob): PartitionResult {
  const { spec, bases } = job;
  const data = job.segs.map((s) => loadSegments(s)) as [Views, Views, Views];
  const approxEvents = (data[0].u8.length + data[1].u8.length) / (EV_HEAD + 24);
  const keys = new KeyTable(Math.ceil(approxEvents), Math.ceil(approxEvents * 20));
  const lev = new PartEvents(data[0], keys, bases[0], spec.maxDelayMs, `partition ${job.p} of the left input`);
  const rev = new PartEvents(data[1], keys, bases[1], spec.maxDelayMs, `partition ${job.p} of the right input`);
  const left = new Grouped(lev, keys.size), right = new Grouped(rev, keys.size);
  const counts = new RowCounts();
  const exp = batchJoin(keys.size, left, right, spec.kind, spec.lowerMs, spec.upperMs, counts);
  const explain = new Explainer(keys, [left, right], spec.maxDelayMs, spec.lowerMs, spec.upperMs);
  const n = spec.examples;
  const extraEx = new FirstN(n), dupEx = new FirstN(n), missEx = new FirstN(n);
  let rows = 0, extra = 0, duplicated = 0;
  // the output rows, in the order they were read
  const out = data[2], ob = bases[2];
  const outBytes = out.u8, of64 = out.f64, ou16 = out.u16, ou32 = out.u32, outLen = outBytes.length;
  const text = (s: number, e: number) => Buffer.from(out.buf, s, e - s).toString('utf8');
  for (let o = 0; o < outLen;) {
    const i8 = o >> 3, i2 = (o >> 1) + 14;
    const kl = ou16[i2], ll = ou16[i2 + 1], rl = ou16[i2 + 2], chunk = ou16[i2 + 3];
    const leftTs = of64[i8], rightTs = of64[i8 + 1], pos = of64[i8 + 2];
    const ks = o + ROW_HEAD, ls = ks + kl, lb = ll === NULL_LEN ? 0 : ll, rs = ls + lb, rb = rl === NULL_LEN ? 0 : rl;
    const h = ou32[(o >> 2) + 6] | 0;
    o += padded(ROW_HEAD + kl + lb + rb);
    rows++;
    const k = keys.findHashed(outBytes, ks, ls, h);
    const l = ll === NULL_LEN ? -1 : left.find(k, outBytes, ls, ll, leftTs);
    const r = rl === NULL_LEN ? -1 : right.find(k, outBytes, rs, rl, rightTs);
    if ((l < 0 && ll !== NULL_LEN) || (r < 0 && rl !== NULL_LEN)) {
      extra++; // made of an event no input has (as joinable)
      const ord = ordOf(ob, chunk, pos);
      if (extraEx.wants(ord, 0)) {
        const raw: RawRow = {
          key: text(ks, ls), leftId: ll === NULL_LEN ? null : text(ls, rs), leftTs: ll === NULL_LEN ? null : leftTs,
          rightId: rl === NULL_LEN ? null : text(rs, rs + rb), rightTs: rl === NULL_LEN ? null : rightTs,
          absentLeft: l < 0 && ll !== NULL_LEN, keyKnown: k >= 0,
        };
        extraEx.add(ord, 0, explain.raw(raw, whereOf(ob, chunk, pos), 1));
      }
      continue;
    }
    const code = rowCode(l, r);
    const slot = counts.addGot(code), expected = counts.expectedAt(slot), got = counts.gotAt(slot);
    if (got <= expected) continue;
    const ord = ordOf(ob, chunk, pos);
    if (expected === 0) {
      extra++;
      if (extraEx.wants(ord, 0)) extraEx.add(ord, 0, explain.extra(code, whereOf(ob, chunk, pos), got));
    } else {
      duplicated++;
      if (dupEx.wants(ord, 0)) dupEx.add(ord, 0, explain.duplicated(code, whereOf(ob, chunk, pos), expected, got));
    }
  }
  let missing = 0;
  const missingCauses: Record<MissingCause, number> = { late: 0, 'duplicate-id': 0, unknown: 0 };
  counts.forEach((code, expected, got) => {
    if (got >= expected) return;
    missing += expected - got;
    missingCauses[explain.missingCause(code)] += expected - got;
    const [l, r] = rowEvents(code);
    const a = l >= 0 ? lev.ord(l) : Infinity, b = r >= 0 ? rev.ord(r) : Infinity;
    if (missEx.wants(a, b)) missEx.add(a, b, explain.missing(code, expected, got));
  });
  return {
    p: job.p, pairs: exp.pairs, unmatchedLeft: exp.unmatchedLeft, unmatchedRight: exp.unmatchedRight,
    rows, missing, extra, duplicated, missingCauses,
    events: [lev.n, rev.n], redeliveries: [left.redeliveries, right.redeliveries], lateCandidates: [lev.lateCandidates, rev.lateCandidates],
    examples: { missing: missEx.items, extra: extraEx.items, duplicated: dupEx.items },
    bytes: data[0].u8.length + data[1].u8.length + data[2].u8.length,
  };
}
