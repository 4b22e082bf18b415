/**
 * Reads the joined output (NDJSON as `run` writes it: leftId, rightId, key, leftTs, rightTs, left,
 * right), resolves each row's key, ids and event times to the input events, and counts it into the
 * multiset the batch join filled. Ids are re-canonicalised with the extractor's own routine, so an
 * output written by another tool with, say, `1.50` for an id still compares equal to the engine's
 * `1.5`. The key must be the canonical key text, as `run` writes it.
 */
import { JsonFieldScanner, VT } from '../codec/json-scan.js';
import { writeCanonicalScalar } from '../codec/json.js';
import { FileSource } from '../source/file.js';
import { rowCode, type Grouped } from './batch.js';
import type { KeyTable } from './keys.js';
import type { RowCounts } from './rows.js';
import type { Progress } from './progress.js';

const F_LEFT_ID = 0, F_RIGHT_ID = 1, F_KEY = 2, F_LEFT_TS = 3, F_RIGHT_TS = 4;

export const NULL_TEXT = 'null';

/**
 * A row found in the output that is not (or not that often) in the batch join: `code` when its
 * events are in the inputs, else its texts (latin1 views of the canonical UTF-8, `null` = absent).
 */
export interface OutputRow {
  line: number; got: number; expected: number;
  code?: number;
  raw?: { key: string; leftId: string; leftTs: number | null; rightId: string; rightTs: number | null };
}

export interface OutputCounts {
  rows: number;
  extra: number;
  duplicated: number;
  unreadable: number;
  extraExamples: OutputRow[];
  duplicatedExamples: OutputRow[];
  unreadableExamples: Array<{ line: number; reason: string }>;
}

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

export async function readOutput(file: string, keys: KeyTable, sides: [Grouped, Grouped], counts: RowCounts, maxExamples: number,
  progress: Progress): Promise<OutputCounts> {
  const [left, right] = sides;
  const r: OutputCounts = { rows: 0, extra: 0, duplicated: 0, unreadable: 0, extraExamples: [], duplicatedExamples: [], unreadableExamples: [] };
  const sc = new JsonFieldScanner(['leftId', 'rightId', 'key', 'leftTs', 'rightTs']);
  const src = new FileSource(file, 0, 'json');
  const scratch = Buffer.alloc(64 * 1024) as Latin1Buffer;
  const bad = (line: number, reason: string) => {
    r.unreadable++;
    if (r.unreadableExamples.length < maxExamples) r.unreadableExamples.push({ line, reason });
  };
  try {
    for (let b = await src.next(); b; b = await src.next()) {
      const data = b.data as Latin1Buffer, offs = b.offsets;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < b.count; i++) {
        const start = offs[i];
        let end = offs[i + 1];
        while (end > start && (data[end - 1] === 10 || data[end - 1] === 13 || data[end - 1] === 32 || data[end - 1] === 9)) end--;
        if (end === start) continue;
        const line = b.firstPosition + i;
        if (!sc.scan(bytes, start, end)) { bad(line, 'not a JSON object'); continue; }
        const leftId = idText(sc, F_LEFT_ID, bytes, scratch), rightId = idText(sc, F_RIGHT_ID, bytes, scratch);
        const leftTs = tsOf(sc, F_LEFT_TS, data), rightTs = tsOf(sc, F_RIGHT_TS, data);
        if (leftId === undefined || rightId === undefined) { bad(line, 'leftId and rightId must be strings, numbers, booleans or null'); continue; }
        if (leftTs === undefined || rightTs === undefined) { bad(line, 'leftTs and rightTs must be numbers or null'); continue; }
        if ((leftId === NULL_TEXT) !== (leftTs === null) || (rightId === NULL_TEXT) !== (rightTs === null) || (leftId === NULL_TEXT && rightId === NULL_TEXT)) {
          bad(line, 'a row has a left side, a right side or both, each with its id and time'); continue;
        }
        if (sc.type[F_KEY] !== VT.Array) { bad(line, 'key must be a JSON array'); continue; }
        r.rows++;
        const k = keys.find(bytes, sc.start[F_KEY], sc.end[F_KEY]);
        const l = leftId === NULL_TEXT ? -1 : left.find(k, leftId, leftTs!);
        const rr = rightId === NULL_TEXT ? -1 : right.find(k, rightId, rightTs!);
        if ((l < 0 && leftId !== NULL_TEXT) || (rr < 0 && rightId !== NULL_TEXT)) {
          r.extra++; // made of an event no input has (as joinable)
          if (r.extraExamples.length < maxExamples) {
            r.extraExamples.push({ line, got: 1, expected: 0, raw: { key: data.latin1Slice(sc.start[F_KEY], sc.end[F_KEY]), leftId, leftTs, rightId, rightTs } });
          }
          continue;
        }
        const code = rowCode(l, rr);
        const [expected, got] = counts.addGot(code);
        if (got <= expected) continue;
        if (expected === 0) {
          r.extra++;
          if (r.extraExamples.length < maxExamples) r.extraExamples.push({ line, code, got, expected });
        } else {
          r.duplicated++;
          if (r.duplicatedExamples.length < maxExamples) r.duplicatedExamples.push({ line, code, got, expected });
        }
      }
      progress.add(b.count);
    }
  } finally {
    await src.close();
  }
  return r;
}

/** Canonical text of an id (latin1 view of its UTF-8 bytes, as the inputs'), `null`, or undefined when unusable. */
function idText(sc: JsonFieldScanner, t: number, bytes: Uint8Array, scratch: Latin1Buffer): string | undefined {
  if (sc.type[t] === VT.Null) return NULL_TEXT;
  const n = writeCanonicalScalar(sc, t, bytes, scratch, 0);
  return n < 0 || n > scratch.length ? undefined : scratch.latin1Slice(0, n);
}

/** An event time, null, or undefined when it is neither a number nor null. */
function tsOf(sc: JsonFieldScanner, t: number, data: Latin1Buffer): number | null | undefined {
  const type = sc.type[t];
  if (type === VT.Null) return null;
  if (type !== VT.Number) return undefined;
  const s = sc.start[t], e = sc.end[t];
  if (sc.flags[t] === 0 && e - s <= 15 && data[s] !== 45) { // plain non-negative integer: exact as digits
    let v = 0;
    for (let p = s; p < e; p++) v = v * 10 + (data[p] - 48);
    return v;
  }
  return Number(data.latin1Slice(s, e));
}
