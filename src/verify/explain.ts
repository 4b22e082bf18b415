/**
 * Examples of differences with what the inputs say about them: where each event is in its file
 * and, when one can be told, the likely cause.
 */
import { formatDurationMs } from '../core/units.js';
import { NULL_TEXT, splitElement, type Grouped } from './batch.js';
import type { KeyTable } from './inputs.js';

export interface Example {
  key: string;
  leftId: string | null; leftTs: number | null;
  rightId: string | null; rightTs: number | null;
  /** Where the events are: record number in each input file (1-based line for NDJSON); output line for extra and duplicated rows. */
  leftLine?: number; rightLine?: number; outputLine?: number;
  /** How often the row was expected and found in the output. */
  expected?: number; got?: number;
  cause?: string;
}

export type MissingCause = 'late' | 'duplicate-id' | 'unknown';

/** Canonical texts are held as latin1 views of UTF-8 bytes: back to the real characters. */
export const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

export class Explainer {
  constructor(private readonly keys: KeyTable, private readonly sides: [Grouped, Grouped], private readonly maxDelayMs: number,
    private readonly lowerMs: number, private readonly upperMs: number) {}

  /** The example of an element, with each side's event (index into its columns, or -1) looked up. */
  private base(el: string): { ex: Example; k: number | undefined; events: [number, number] } {
    const p = splitElement(el);
    const k = this.keys.index.get(p.key);
    const ex: Example = {
      key: utf8(p.key),
      leftId: p.leftId === NULL_TEXT ? null : utf8(p.leftId), leftTs: p.leftTs === NULL_TEXT ? null : Number(p.leftTs),
      rightId: p.rightId === NULL_TEXT ? null : utf8(p.rightId), rightTs: p.rightTs === NULL_TEXT ? null : Number(p.rightTs),
    };
    const events: [number, number] = [-1, -1];
    if (ex.leftTs !== null) { events[0] = this.sides[0].find(k, p.leftId, ex.leftTs); if (events[0] >= 0) ex.leftLine = this.sides[0].ev.line[events[0]]; }
    if (ex.rightTs !== null) { events[1] = this.sides[1].find(k, p.rightId, ex.rightTs); if (events[1] >= 0) ex.rightLine = this.sides[1].ev.line[events[1]]; }
    return { ex, k, events };
  }

  /** A row the batch join has and the output lacks (or has fewer times). */
  missing(el: string, expected: number, got: number): { ex: Example; cause: MissingCause } {
    const { ex, k, events } = this.base(el);
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
      const id = side === 0 ? ex.leftId : ex.rightId, ts = side === 0 ? ex.leftTs : ex.rightTs;
      if (id === null || ts === null) continue;
      const other = this.sides[side].sameIdOtherTime(k, splitElement(el)[side === 0 ? 'leftId' : 'rightId'], ts);
      if (other >= 0) {
        ex.cause = `duplicate id: the ${side === 0 ? 'left' : 'right'} id also occurs at time ${this.sides[side].ev.ts[other]} (record ${this.sides[side].ev.line[other]}) under the same key`;
        return { ex, cause: 'duplicate-id' };
      }
    }
    return { ex, cause: 'unknown' };
  }

  /** A row of the output that the batch join does not have at all. */
  extra(el: string, line: number): Example {
    const { ex, k, events } = this.base(el);
    ex.outputLine = line; ex.expected = 0;
    const absent = ([0, 1] as const).filter((s) => (s === 0 ? ex.leftTs : ex.rightTs) !== null && events[s] < 0);
    if (absent.length > 0) {
      const s = absent[0];
      ex.cause = `not in the input: no ${s === 0 ? 'left' : 'right'} event with id ${s === 0 ? ex.leftId : ex.rightId} and time ${s === 0 ? ex.leftTs : ex.rightTs}` +
        (k === undefined ? ` (no event has the key ${ex.key})` : ' under this key') + ', or only as a dead letter';
    } else if (ex.leftTs !== null && ex.rightTs !== null) {
      const d = ex.rightTs - ex.leftTs;
      if (d < this.lowerMs || d > this.upperMs) ex.cause = `beyond the bounds: rightTs − leftTs = ${d} ms, outside [${this.lowerMs}, ${this.upperMs}]`;
    } else {
      const s = ex.leftTs !== null ? 0 : 1;
      if (events[s] >= 0 && this.sides[s].matched[events[s]]) ex.cause = `an unmatched row for a ${s === 0 ? 'left' : 'right'} event that joins`;
      else if (events[s] >= 0) ex.cause = 'an unmatched row the join kind does not produce (--join)';
    }
    return ex;
  }

  duplicated(el: string, line: number, expected: number, got: number): Example {
    const { ex } = this.base(el);
    ex.outputLine = line; ex.expected = expected; ex.got = got;
    ex.cause = `emitted ${got === 2 && expected === 1 ? 'twice' : `${got} times so far`}, expected ${expected === 1 ? 'once' : `${expected} times`}`;
    return ex;
  }
}
