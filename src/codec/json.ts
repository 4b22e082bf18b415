/**
 * Key, time and id extraction from one NDJSON record. The record is scanned as bytes (see
 * json-scan.ts), never parsed into objects: the router writes the canonical key and id bytes
 * straight into its scratch buffer, and the record itself travels on as the original bytes and is
 * written to the output verbatim, so nothing is re-serialised.
 */
import { JsonWasmBatch } from './json-wasm.js';
import { canonicalNumberText, isWellFormedUtf8, utf8ErrorAt, writeBytes, writeText } from './canonical.js';
import { JsonFieldScanner, VF, VT } from './json-scan.js';

export interface Extractor {
  ts: number;
  error: string;
  /**
   * After a successful extract: the canonical key (JSON array text of the key values, e.g. [7,42]
   * or ["a",3]; see canonical.ts) is out[0, keyLen), the canonical id (JSON text, e.g. "imp-9" or
   * 17) out[keyLen, keyLen + idLen). When keyLen + idLen > out.length, they were not written.
   */
  keyLen: number;
  idLen: number;
  /**
   * After a successful extract: bytes at the record's start that are not part of its value (the
   * UTF-8 byte order mark a JSON record may start with); its payload begins after them.
   */
  lead: number;
  /** Reads key, time and id of the record bytes[start, end); false with `error` set when it cannot. */
  extract(bytes: Uint8Array, start: number, end: number, out: Uint8Array): boolean;
  /**
   * Optional: reads records [0, count) of a batch ahead (record i: bytes[offs[i] + skip,
   * offs[i + 1]), NDJSON lines when `lines`). Returns what took some of them, or null: for each
   * record, `take` first, then extract() when it declines.
   */
  prepare?(bytes: Uint8Array, offs: Uint32Array, count: number, skip: number, lines: boolean): PreparedBatch | null;
}

/** Records of a batch read ahead (JsonExtractor: json-wasm.ts); valid while `generation` is unchanged. */
export interface PreparedBatch {
  readonly generation: number;
  /** Record i's key and id into out, its time and lengths into ex; false: call extract() for it. */
  take(i: number, out: Uint8Array, ex: Extractor): boolean;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Whether bytes [start, end) start like a JSON object: `{` after blanks. The one rule behind the
 * format hints, for a file's first bytes (source/sniff.ts) and for a record that failed as a
 * FlatBuffer (flat.ts).
 */
export function startsLikeJsonObject(b: Uint8Array, start = 0, end = b.length): boolean {
  for (let i = Math.max(0, start), e = Math.min(end, b.length); i < e; i++) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b; // '{'
  }
  return false;
}

/** Key and id texts of an extractor's last successful extract into `out` (tests, tools). */
export function extractedTexts(ex: Extractor, out: Uint8Array): { keyText: string; idText: string } {
  return {
    keyText: decoder.decode(out.subarray(0, ex.keyLen)),
    idText: decoder.decode(out.subarray(ex.keyLen, ex.keyLen + ex.idLen)),
  };
}

/** Canonical text of a key or id value (a JS value); undefined when the value cannot serve as one. */
export function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

/**
 * Canonical key text of a JSON array of scalar values given as text (e.g. the key parameter of
 * GET /state), the same bytes the router computes for a record with those key values; undefined
 * when it is not such an array. Numbers keep their exact digits here too.
 */
export function canonicalKeyOfJsonArray(text: string): string | undefined {
  let values: unknown;
  try { values = JSON.parse(text); } catch { return undefined; }
  if (!Array.isArray(values) || values.length === 0) return undefined;
  const x = new JsonExtractor(values.map((_, i) => `k.${i}`), 't', 'k.0');
  const rec = Buffer.from(`{"t":0,"k":${text}}`, 'utf8');
  const out = new Uint8Array(rec.length * 6 + 64);
  return x.extract(rec, 0, rec.length, out) ? extractedTexts(x, out).keyText : undefined;
}

/** Integers up to this many digits are exact as doubles when accumulated digit by digit. */
const EXACT_DIGITS = 15;

/**
 * Writes the canonical text of scanner target t (scanned from b) at out[o…); returns the position
 * after it, or -1 when it is not a scalar. Shared with `joinery verify`, which reads the ids of the
 * output so that they compare byte for byte with those of the inputs.
 */
export function writeCanonicalScalar(sc: JsonFieldScanner, t: number, b: Uint8Array, out: Uint8Array, o: number): number {
  const s = sc.start[t], e = sc.end[t];
  switch (sc.type[t]) {
    case VT.String: {
      const f = sc.flags[t];
      if (f === 0 || (f === VF.NonAscii && isWellFormedUtf8(b, s + 1, e - 1))) return writeBytes(out, o, b, s, e);
      return writeText(out, o, JSON.stringify(JSON.parse(decoder.decode(b.subarray(s, e)))));
    }
    case VT.Number: {
      const neg = b[s] === 45 ? 1 : 0;
      if ((sc.flags[t] & (VF.Fraction | VF.Exponent)) === 0 && e - s - neg <= 21) {
        if (neg === 1 && e - s === 2 && b[s + 1] === 48) return writeBytes(out, o, b, s + 1, e); // -0
        return writeBytes(out, o, b, s, e);
      }
      const text = canonicalNumberText(b, s, e);
      return text === null ? -1 : writeText(out, o, text);
    }
    case VT.True:
    case VT.False:
      return writeBytes(out, o, b, s, e);
    default:
      return -1;
  }
}

export class JsonExtractor implements Extractor {
  ts = 0;
  error = '';
  keyLen = 0;
  idLen = 0;
  lead = 0;
  private readonly scanner: JsonFieldScanner;
  private readonly nKeys: number;
  private readonly timeTarget: number;
  private readonly idTarget: number;
  private readonly own = new Uint8Array(4096);
  /** The WebAssembly fast path for these fields (undefined until the first batch; null: none). */
  private wasm: JsonWasmBatch | null | undefined = undefined;

  constructor(private readonly keyFields: string[], private readonly timeField: string, private readonly idField: string) {
    this.nKeys = keyFields.length;
    this.timeTarget = this.nKeys;
    this.idTarget = this.nKeys + 1;
    this.scanner = new JsonFieldScanner([...keyFields, timeField, idField]);
  }

  prepare(bytes: Uint8Array, offs: Uint32Array, count: number, skip: number, lines: boolean): PreparedBatch | null {
    if (this.wasm === undefined) this.wasm = JsonWasmBatch.create(this.keyFields, this.timeField, this.idField);
    const w = this.wasm;
    return w !== null && count > 0 && w.run(bytes, offs, count, skip, lines) > 0 ? w : null;
  }

  /** Key text of the last successful extract without an `out` of the caller's (tests, tools). */
  get keyText(): string { return extractedTexts(this, this.own).keyText; }
  get idText(): string { return extractedTexts(this, this.own).idText; }

  extract(bytes: Uint8Array, start: number, end: number, out: Uint8Array = this.own): boolean {
    const sc = this.scanner;
    if (!sc.scan(bytes, start, end)) {
      if (sc.notObject) {
        this.error = 'not a JSON object';
        return false;
      }
      this.error = `not JSON: ${parseError(bytes, start, end)}`;
      return false;
    }
    // Bytes ≥ 0x80 lie only in strings; the rare record holding any is checked as UTF-8 (its payload
    // is copied into the output as it is, and a stray byte there would make the output line unreadable).
    if (sc.nonAscii) {
      const u = notUtf8(bytes, start, end);
      if (u !== null) {
        this.error = u;
        return false;
      }
    }
    this.lead = bytes[start] === 0xef && end - start >= 3 && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf ? 3 : 0;
    let o = 0;
    if (out.length > 0) out[0] = 91; // [
    o = 1;
    for (let i = 0; i < this.nKeys; i++) {
      if (i > 0) { if (o < out.length) out[o] = 44; o++; } // ,
      o = this.scalar(i, bytes, out, o);
      if (o < 0) {
        this.error = `missing or non-scalar key field "${this.keyFields[i]}"`;
        return false;
      }
    }
    if (o < out.length) out[o] = 93; // ]
    o++;
    const keyLen = o;
    if (!this.time(bytes)) return false;
    o = this.scalar(this.idTarget, bytes, out, o);
    if (o < 0) {
      this.error = `missing or non-scalar id field "${this.idField}"`;
      return false;
    }
    this.keyLen = keyLen;
    this.idLen = o - keyLen;
    return true;
  }

  private scalar(t: number, b: Uint8Array, out: Uint8Array, o: number): number {
    // the common case inline: a plain ASCII string or an integer (not −0) is its own canonical text
    const sc = this.scanner, s = sc.start[t], e = sc.end[t], type = sc.type[t];
    if (sc.flags[t] === 0 && (type === VT.String || (type === VT.Number && e - s <= 21 && b[s] !== 45)) && o + e - s <= out.length) {
      for (let j = s; j < e; j++) out[o++] = b[j];
      return o;
    }
    return writeCanonicalScalar(sc, t, b, out, o);
  }

  /** Sets ts from the time target (a number, or a string holding one), or the error. */
  private time(b: Uint8Array): boolean {
    const sc = this.scanner, t = this.timeTarget;
    const s = sc.start[t], e = sc.end[t];
    const type = sc.type[t];
    let ts = NaN;
    if (type === VT.Number) {
      if ((sc.flags[t] & (VF.Fraction | VF.Exponent)) === 0 && e - s <= EXACT_DIGITS) {
        // int32 arithmetic on two halves: digit by digit in a double is a chain of slow multiply-adds
        const neg = b[s] === 45;
        const p = neg ? s + 1 : s, mid = e - 8 > p ? e - 8 : p;
        let hi = 0, lo = 0;
        for (let i = p; i < mid; i++) hi = (hi * 10 + (b[i] - 48)) | 0;
        for (let i = mid; i < e; i++) lo = (lo * 10 + (b[i] - 48)) | 0;
        const v = hi * 1e8 + lo;
        ts = neg ? -v : v;
      } else {
        ts = Number(decoder.decode(b.subarray(s, e)));
      }
    } else if (type === VT.String) {
      const str = JSON.parse(decoder.decode(b.subarray(s, e))) as string;
      ts = str.trim() !== '' ? Number(str) : NaN;
    }
    if (!Number.isFinite(ts)) {
      this.error = type === VT.Missing ? `missing time field "${this.timeField}"`
        : `non-numeric time field "${this.timeField}": ${JSON.stringify(JSON.parse(decoder.decode(b.subarray(s, e))))}`;
      return false;
    }
    this.ts = ts;
    return true;
  }
}

/** JSON.parse's own message for a record the scanner refused (the dead-letter reason). */
function parseError(bytes: Uint8Array, start: number, end: number): string {
  try {
    JSON.parse(decoder.decode(bytes.subarray(start, end)));
  } catch (e) {
    return (e as Error).message;
  }
  return 'not accepted by the field scanner'; // never expected: the tests hold the scanner to JSON.parse
}

/**
 * The refusal of a record whose bytes are not UTF-8, or null. JSON text is UTF-8 (RFC 8259 §8.1);
 * JSON.parse after a lenient decode would take such a record with U+FFFD in place of the bad
 * bytes, but joinery copies a record's bytes into its output as they are, so the output line
 * would not be UTF-8 (nor readable JSON) either.
 */
function notUtf8(bytes: Uint8Array, start: number, end: number): string | null {
  const bad = utf8ErrorAt(bytes, start, end);
  return bad < 0 ? null : `not UTF-8: byte 0x${bytes[bad].toString(16).padStart(2, '0')} at offset ${bad - start} of the record does not begin a well-formed UTF-8 sequence`;
}

function path(field: string): string[] {
  return field.split('.');
}

function lookup(obj: unknown, p: string[]): unknown {
  let v = obj;
  for (let i = 0; i < p.length; i++) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p[i]];
  }
  return v;
}

/**
 * The former extractor: JSON.parse of the whole record, then property lookup. Numbers go through
 * doubles (a 64-bit id loses digits). Kept as the reference the scanner is tested and benchmarked
 * against; not used by the engine.
 */
export class ParsingJsonExtractor implements Extractor {
  ts = 0;
  error = '';
  keyLen = 0;
  idLen = 0;
  lead = 0;
  keyText = '';
  idText = '';
  private readonly keyPaths: string[][];
  private readonly timePath: string[];
  private readonly idPath: string[];
  constructor(private readonly keyFields: string[], private readonly timeField: string, private readonly idField: string) {
    this.keyPaths = keyFields.map(path);
    this.timePath = path(timeField);
    this.idPath = path(idField);
  }

  extract(bytes: Uint8Array, start: number, end: number, out: Uint8Array = new Uint8Array(0)): boolean {
    let rec: unknown;
    try {
      rec = JSON.parse(decoder.decode(bytes.subarray(start, end)));
    } catch (e) {
      this.error = `not JSON: ${(e as Error).message}`;
      return false;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      this.error = 'not a JSON object';
      return false;
    }
    const u = notUtf8(bytes, start, end);
    if (u !== null) {
      this.error = u;
      return false;
    }
    let key = '[';
    for (let i = 0; i < this.keyPaths.length; i++) {
      const t = scalarText(lookup(rec, this.keyPaths[i]));
      if (t === undefined) {
        this.error = `missing or non-scalar key field "${this.keyFields[i]}"`;
        return false;
      }
      key += i === 0 ? t : ',' + t;
    }
    this.keyText = key + ']';
    const tv = lookup(rec, this.timePath);
    const ts = typeof tv === 'number' ? tv : typeof tv === 'string' && tv.trim() !== '' ? Number(tv) : NaN;
    if (!Number.isFinite(ts)) {
      this.error = tv === undefined ? `missing time field "${this.timeField}"` : `non-numeric time field "${this.timeField}": ${JSON.stringify(tv)}`;
      return false;
    }
    this.ts = ts;
    const id = scalarText(lookup(rec, this.idPath));
    if (id === undefined) {
      this.error = `missing or non-scalar id field "${this.idField}"`;
      return false;
    }
    this.idText = id;
    this.keyLen = writeText(out, 0, this.keyText);
    this.idLen = writeText(out, this.keyLen, this.idText) - this.keyLen;
    return true;
  }
}
