/**
 * Reads the joined output (NDJSON as `run` writes it: leftId, rightId, key, leftTs, rightTs, left,
 * right), resolves each row's key, ids and event times to the input events, and counts it into the
 * multiset the batch join filled. Ids are re-canonicalised with the extractor's own routine, so an
 * output written by another tool with, say, `1.50` for an id still compares equal to the engine's
 * `1.5`. The key must be the canonical key text, as `run` writes it. A Kafka output topic is read
 * read_committed up to each partition's end as seen at the start; its values are JSON rows or
 * FlatBuffers JoinedRecords (--out-format of run).
 */
import { JsonFieldScanner, VT } from '../codec/json-scan.js';
import { writeCanonicalScalar } from '../codec/json.js';
import { decodeJoined } from '../codec/flat.js';
import { endpointsOf, kafkaTopic } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import { FileSource } from '../source/file.js';
import { rowCode, type Grouped } from './batch.js';
import type { KeyTable } from './keys.js';
import type { RowCounts } from './rows.js';
import type { Progress } from './progress.js';

const READ_TIMEOUT_MS = 6 * 3_600_000;
const F_LEFT_ID = 0, F_RIGHT_ID = 1, F_KEY = 2, F_LEFT_TS = 3, F_RIGHT_TS = 4;

export const NULL_TEXT = 'null';

/**
 * A row found in the output that is not (or not that often) in the batch join: `code` when its
 * events are in the inputs, else its texts (latin1 views of the canonical UTF-8, `null` = absent).
 */
/** Where a row is: the output file's line, or a Kafka record as "partition/offset". */
export type Where = number | string;

export interface OutputRow {
  where: Where; got: number; expected: number;
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
  unreadableExamples: Array<{ where: Where; reason: string }>;
}

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

class OutputReader {
  readonly r: OutputCounts = { rows: 0, extra: 0, duplicated: 0, unreadable: 0, extraExamples: [], duplicatedExamples: [], unreadableExamples: [] };
  private readonly sc = new JsonFieldScanner(['leftId', 'rightId', 'key', 'leftTs', 'rightTs']);
  private readonly scratch = Buffer.alloc(64 * 1024) as Latin1Buffer;

  constructor(private readonly keys: KeyTable, private readonly sides: [Grouped, Grouped], private readonly counts: RowCounts,
    private readonly maxExamples: number) {}

  bad(where: Where, reason: string): void {
    this.r.unreadable++;
    if (this.r.unreadableExamples.length < this.maxExamples) this.r.unreadableExamples.push({ where, reason });
  }

  /** One JSON row, data[start, end). */
  json(data: Latin1Buffer, bytes: Uint8Array, start: number, end: number, where: Where): void {
    const sc = this.sc;
    if (!sc.scan(bytes, start, end)) { this.bad(where, 'not a JSON object'); return; }
    const leftId = idText(sc, F_LEFT_ID, bytes, this.scratch), rightId = idText(sc, F_RIGHT_ID, bytes, this.scratch);
    const leftTs = tsOf(sc, F_LEFT_TS, data), rightTs = tsOf(sc, F_RIGHT_TS, data);
    if (leftId === undefined || rightId === undefined) { this.bad(where, 'leftId and rightId must be strings, numbers, booleans or null'); return; }
    if (leftTs === undefined || rightTs === undefined) { this.bad(where, 'leftTs and rightTs must be numbers or null'); return; }
    if (sc.type[F_KEY] !== VT.Array) { this.bad(where, 'key must be a JSON array'); return; }
    this.row(bytes, sc.start[F_KEY], sc.end[F_KEY], leftId, leftTs, rightId, rightTs, where);
  }

  /** One row: key bytes kb[ks, ke), ids as latin1 views of their canonical UTF-8 (`null` = absent side). */
  row(kb: Uint8Array, ks: number, ke: number, leftId: string, leftTs: number | null, rightId: string, rightTs: number | null, where: Where): void {
    const r = this.r;
    if ((leftId === NULL_TEXT) !== (leftTs === null) || (rightId === NULL_TEXT) !== (rightTs === null) || (leftId === NULL_TEXT && rightId === NULL_TEXT)) {
      this.bad(where, 'a row has a left side, a right side or both, each with its id and time'); return;
    }
    r.rows++;
    const k = this.keys.find(kb, ks, ke);
    const l = leftId === NULL_TEXT ? -1 : this.sides[0].find(k, leftId, leftTs!);
    const rr = rightId === NULL_TEXT ? -1 : this.sides[1].find(k, rightId, rightTs!);
    if ((l < 0 && leftId !== NULL_TEXT) || (rr < 0 && rightId !== NULL_TEXT)) {
      r.extra++; // made of an event no input has (as joinable)
      if (r.extraExamples.length < this.maxExamples) {
        const key = Buffer.from(kb.buffer, kb.byteOffset + ks, ke - ks).toString('latin1');
        r.extraExamples.push({ where, got: 1, expected: 0, raw: { key, leftId, leftTs, rightId, rightTs } });
      }
      return;
    }
    const code = rowCode(l, rr);
    const [expected, got] = this.counts.addGot(code);
    if (got <= expected) return;
    if (expected === 0) {
      r.extra++;
      if (r.extraExamples.length < this.maxExamples) r.extraExamples.push({ where, code, got, expected });
    } else {
      r.duplicated++;
      if (r.duplicatedExamples.length < this.maxExamples) r.duplicatedExamples.push({ where, code, got, expected });
    }
  }
}

export async function readOutput(cfg: Config, file: string | undefined, keys: KeyTable, sides: [Grouped, Grouped], counts: RowCounts,
  progress: Progress): Promise<OutputCounts> {
  const reader = new OutputReader(keys, sides, counts, cfg.examples);
  if (file === undefined) await readKafka(cfg, reader, progress);
  else await readFile(file, reader, progress);
  return reader.r;
}

async function readFile(file: string, reader: OutputReader, progress: Progress): Promise<void> {
  const src = new FileSource(file, 0, 'json');
  try {
    for (let b = await src.next(); b; b = await src.next()) {
      const data = b.data as Latin1Buffer, offs = b.offsets;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < b.count; i++) {
        const start = offs[i];
        let end = offs[i + 1];
        while (end > start && (data[end - 1] === 10 || data[end - 1] === 13 || data[end - 1] === 32 || data[end - 1] === 9)) end--;
        if (end === start) continue;
        reader.json(data, bytes, start, end, b.firstPosition + i);
      }
      progress.add(b.count);
    }
  } finally {
    await src.close();
  }
}

/** A JSON value starts with `{` (after blanks); a JoinedRecord FlatBuffer with its root offset. */
function isJsonValue(v: Buffer): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === 123) return true;
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return false;
  }
  return false;
}

async function readKafka(cfg: Config, reader: OutputReader, progress: Progress): Promise<void> {
  const { readTopic } = await (await import('../kafka/adapters.js')).kafkaAdapter();
  const { parseBrokers } = await import('../kafka/options.js');
  const topic = kafkaTopic(endpointsOf(cfg).output)!;
  const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  // the timeout bounds the whole read: hours, since a topic of tens of GB takes that long
  await readTopic(parseBrokers(cfg.brokers!), topic, (m) => {
    const where = `${m.partition}/${m.offset}`;
    const v = m.value;
    progress.add(1);
    if (v === null || v.length === 0) { reader.bad(where, 'an empty record value'); return; }
    if (isJsonValue(v)) { reader.json(v as Latin1Buffer, new Uint8Array(v.buffer, v.byteOffset, v.length), 0, v.length, where); return; }
    let d;
    try {
      d = decodeJoined(new Uint8Array(v.buffer, v.byteOffset, v.length));
    } catch (e) {
      reader.bad(where, `neither JSON nor a FlatBuffers JoinedRecord: ${(e as Error).message}`); return;
    }
    const kb = new Uint8Array(Buffer.from(d.key, 'utf8'));
    reader.row(kb, 0, kb.length, d.leftId === null ? NULL_TEXT : latin1(d.leftId), d.leftTs, d.rightId === null ? NULL_TEXT : latin1(d.rightId), d.rightTs, where);
  }, { timeoutMs: READ_TIMEOUT_MS, isolation: 'read_committed' }).catch((e: Error) => {
    if (e instanceof JoineryError) throw e;
    throw new JoineryError('E_INPUT', `cannot read --output kafka:${topic}: ${e.message}`);
  });
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
