/**
 * Examples of differences with what the inputs say about them: where each event is in its file
 * and, when one can be told, the likely cause.
 */
import { formatDurationMs } from '../core/units.js';
import { rowEvents, type Grouped } from './batch.js';
import type { KeyTable } from './keys.js';
import { NULL_TEXT, type OutputRow, type Where } from './output.js';

export interface Example {
  key: string;
  leftId: string | null; leftTs: number | null;
  rightId: string | null; rightTs: number | null;
  /** Where the events are: record number in each input file (1-based line for NDJSON). */
  leftLine?: number; rightLine?: number;
  /** Where an extra or duplicated row is: the output file's line, or the Kafka record (partition/offset). */
  outputLine?: number; outputRecord?: string;
  /** How often the row was expected and found in the output. */
  expected?: number; got?: number;
  cause?: string;
}

export function whereFields(w: Where): { outputLine?: number; outputRecord?: string } {
  return typeof w === 'number' ? { outputLine: w } : { outputRecord: w };
}

export type MissingCause = 'late' | 'duplicate-id' | 'unknown';

/** Canonical texts are held as latin1 views of UTF-8 bytes: back to the real characters. */
export const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

export class Explainer {
  constructor(private readonly keys: KeyTable, private readonly sides: [Grouped, Grouped], private readonly maxDelayMs: number,
    private readonly lowerMs: number, private readonly upperMs: number) {}

  /** The example of a row made of input events (index −1 = the absent side of an unmatched row). */
  private ofEvents(l: number, r: number): Example {
    const [L, R] = this.sides;
    const i = l >= 0 ? l : r, ev = (l >= 0 ? L : R).ev;
    const ex: Example = { key: this.keys.text(ev.keyIdx[i]), leftId: null, leftTs: null, rightId: null, rightTs: null };
    if (l >= 0) { ex.leftId = utf8(L.ev.ids[l]); ex.leftTs = L.ev.ts[l]; ex.leftLine = L.ev.line[l]; }
    if (r >= 0) { ex.rightId = utf8(R.ev.ids[r]); ex.rightTs = R.ev.ts[r]; ex.rightLine = R.ev.line[r]; }
    return ex;
  }

  /** A row the batch join has and the output lacks (or has fewer times). */
  missing(code: number, expected: number, got: number): { ex: Example; cause: MissingCause } {
    const events = rowEvents(code);
    const ex = this.ofEvents(events[0], events[1]);
    ex.expected = expected; ex.got = got;
    for (const side of [0, 1] as const) {
      const i = events[side];
      if (i < 0) continue;
      const behind = this.sides[side].ev.behindMs[i];
      if (behind > 0) {
        ex.cause = `late: the ${side === 0 ? 'left' : 'right'} event came ${(behind / 1000).toFixed(1)} s after a newer one of its input, more than --max-delay ${formatDurationMs(this.maxDelayMs)} behind; the engine drops such an event once the watermark has passed it`;
        return { ex, cause: 'late' };
      }
    }
    for (const side of [0, 1] as const) {
      const i = events[side];
      if (i < 0) continue;
      const ev = this.sides[side].ev;
      const other = this.sides[side].sameIdOtherTime(ev.keyIdx[i], ev.ids[i], ev.ts[i]);
      if (other >= 0) {
        ex.cause = `duplicate id: the ${side === 0 ? 'left' : 'right'} id also occurs at time ${ev.ts[other]} (record ${ev.line[other]}) under the same key`;
        return { ex, cause: 'duplicate-id' };
      }
    }
    return { ex, cause: 'unknown' };
  }

  /** A row of the output that the batch join does not have at all. */
  extra(row: OutputRow): Example {
    if (row.raw) {
      const w = row.raw;
      const ex: Example = {
        key: utf8(w.key), leftId: w.leftId === NULL_TEXT ? null : utf8(w.leftId), leftTs: w.leftTs,
        rightId: w.rightId === NULL_TEXT ? null : utf8(w.rightId), rightTs: w.rightTs, ...whereFields(row.where), expected: 0, got: row.got,
      };
      const kb = new Uint8Array(Buffer.from(w.key, 'latin1'));
      const k = this.keys.find(kb, 0, kb.length);
      const absentLeft = w.leftTs !== null && this.sides[0].find(k, w.leftId, w.leftTs) < 0;
      const [s, id, ts] = absentLeft ? ['left', ex.leftId, ex.leftTs] : ['right', ex.rightId, ex.rightTs];
      ex.cause = `not in the input: no ${s} event with id ${id} and time ${ts}` + (k < 0 ? ` (no event has the key ${ex.key})` : ' under this key') +
        ', or only as a dead letter';
      return ex;
    }
    const [l, r] = rowEvents(row.code!);
    const ex = this.ofEvents(l, r);
    Object.assign(ex, whereFields(row.where)); ex.expected = 0; ex.got = row.got;
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

  duplicated(row: OutputRow): Example {
    const [l, r] = rowEvents(row.code!);
    const ex = this.ofEvents(l, r);
    Object.assign(ex, whereFields(row.where)); ex.expected = row.expected; ex.got = row.got;
    ex.cause = `emitted ${row.got === 2 && row.expected === 1 ? 'twice' : `${row.got} times so far`}, expected ${row.expected === 1 ? 'once' : `${row.expected} times`}`;
    return ex;
  }
}
