/**
 * Examples of differences with what the inputs say about them: where each event is in its input
 * and, when one can be told, the likely cause.
 */
import { formatDurationMs } from '../core/units.js';
import { rowEvents, type Grouped } from './batch.js';
import type { KeyTable } from './keys.js';

export interface Example {
  key: string;
  leftId: string | null; leftTs: number | null;
  rightId: string | null; rightTs: number | null;
  /** Where the events are: record number in each input file (1-based line for NDJSON). */
  leftLine?: number; rightLine?: number;
  /** Where the events are in a Kafka input: "partition/offset". */
  leftRecord?: string; rightRecord?: string;
  /** Where an extra or duplicated row is: the output file's line, or the Kafka record (partition/offset). */
  outputLine?: number; outputRecord?: string;
  /** How often the row was expected and found in the output. */
  expected?: number; got?: number;
  cause?: string;
}

export type Where = number | string;

export function whereFields(w: Where): { outputLine?: number; outputRecord?: string } {
  return typeof w === 'number' ? { outputLine: w } : { outputRecord: w };
}

export type MissingCause = 'late' | 'duplicate-id' | 'unknown';

/** An output row that is not in the inputs: its texts (ids null for an absent side). */
export interface RawRow { key: string; leftId: string | null; leftTs: number | null; rightId: string | null; rightTs: number | null;
  /** Whether the left side (else the right) names an event no input has. */
  absentLeft: boolean; keyKnown: boolean }

export class Explainer {
  constructor(private readonly keys: KeyTable, private readonly sides: [Grouped, Grouped], private readonly maxDelayMs: number,
    private readonly lowerMs: number, private readonly upperMs: number) {}

  /** The example of a row made of input events (index −1 = the absent side of an unmatched row). */
  ofEvents(l: number, r: number): Example {
    const [L, R] = this.sides;
    const i = l >= 0 ? l : r, ev = (l >= 0 ? L : R).ev;
    const ex: Example = { key: this.keys.text(ev.keyIdx[i]), leftId: null, leftTs: null, rightId: null, rightTs: null };
    if (l >= 0) {
      ex.leftId = L.ev.idText(l); ex.leftTs = L.ev.ts[l];
      const w = L.ev.where(l);
      if (typeof w === 'number') ex.leftLine = w; else ex.leftRecord = w;
    }
    if (r >= 0) {
      ex.rightId = R.ev.idText(r); ex.rightTs = R.ev.ts[r];
      const w = R.ev.where(r);
      if (typeof w === 'number') ex.rightLine = w; else ex.rightRecord = w;
    }
    return ex;
  }

  /** The likely cause of a missing row, cheap: every missing row is counted by cause. */
  missingCause(code: number): MissingCause {
    const events = rowEvents(code);
    for (const side of [0, 1] as const) if (events[side] >= 0 && this.sides[side].ev.behindMs(events[side], this.maxDelayMs) > 0) return 'late';
    for (const side of [0, 1] as const) if (events[side] >= 0 && this.sides[side].sameIdOtherTime(events[side]) >= 0) return 'duplicate-id';
    return 'unknown';
  }

  /** A row the batch join has and the output lacks (or has fewer times). */
  missing(code: number, expected: number, got: number): Example {
    const events = rowEvents(code);
    const ex = this.ofEvents(events[0], events[1]);
    ex.expected = expected; ex.got = got;
    for (const side of [0, 1] as const) {
      const i = events[side];
      if (i < 0) continue;
      const behind = this.sides[side].ev.behindMs(i, this.maxDelayMs);
      if (behind > 0) {
        ex.cause = `late: the ${side === 0 ? 'left' : 'right'} event came ${(behind / 1000).toFixed(1)} s after a newer one of its input, more than --max-delay ${formatDurationMs(this.maxDelayMs)} behind; the engine drops such an event once the watermark has passed it`;
        return ex;
      }
    }
    for (const side of [0, 1] as const) {
      const i = events[side];
      if (i < 0) continue;
      const ev = this.sides[side].ev;
      const other = this.sides[side].sameIdOtherTime(i);
      if (other >= 0) {
        const w = ev.where(other);
        ex.cause = `duplicate id: the ${side === 0 ? 'left' : 'right'} id also occurs at time ${ev.ts[other]} (record ${w}) under the same key`;
        return ex;
      }
    }
    return ex;
  }

  /** A row of the output that names an event no input has (as joinable). */
  raw(w: RawRow, where: Where, got: number): Example {
    const ex: Example = { key: w.key, leftId: w.leftId, leftTs: w.leftTs, rightId: w.rightId, rightTs: w.rightTs, ...whereFields(where), expected: 0, got };
    const [s, id, ts] = w.absentLeft ? ['left', ex.leftId, ex.leftTs] : ['right', ex.rightId, ex.rightTs];
    ex.cause = `not in the input: no ${s} event with id ${id} and time ${ts}` + (w.keyKnown ? ' under this key' : ` (no event has the key ${ex.key})`) +
      ', or only as a dead letter';
    return ex;
  }

  /** A row of the output made of input events that the batch join does not have at all. */
  extra(code: number, where: Where, got: number): Example {
    const [l, r] = rowEvents(code);
    const ex = this.ofEvents(l, r);
    Object.assign(ex, whereFields(where)); ex.expected = 0; ex.got = got;
    if (l >= 0 && r >= 0) {
      const d = ex.rightTs! - ex.leftTs!;
      if (d < this.lowerMs || d > this.upperMs) ex.cause = `beyond the bounds: rightTs − leftTs = ${d} ms, outside [${this.lowerMs}, ${this.upperMs}]`;
    } else {
      const s = l >= 0 ? 0 : 1;
      ex.cause = this.sides[s].matched[l >= 0 ? l : r] ? `an unmatched row for a ${s === 0 ? 'left' : 'right'} event that joins`
        : 'an unmatched row the join kind does not produce (--join)';
    }
    return ex;
  }

  duplicated(code: number, where: Where, expected: number, got: number): Example {
    const [l, r] = rowEvents(code);
    const ex = this.ofEvents(l, r);
    Object.assign(ex, whereFields(where)); ex.expected = expected; ex.got = got;
    ex.cause = `emitted ${got === 2 && expected === 1 ? 'twice' : `${got} times so far`}, expected ${expected === 1 ? 'once' : `${expected} times`}`;
    return ex;
  }
}
