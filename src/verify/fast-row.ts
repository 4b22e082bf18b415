/**
 * The output rows of `joinery run` as it writes them (src/sink/ndjson.ts), read without the
 * general JSON scanner: `{"leftId":ID,"rightId":ID,"key":[…],"leftTs":TS,"rightTs":TS,"left":P,"right":P}`
 * with no blanks, plain ASCII strings, integer times and payloads that are flat objects of
 * scalars (or null). Such a row is checked against the JSON grammar here, member by member, for
 * a third of the general scanner's CPU (which walks every member name against the wanted ones and
 * keeps a container stack for the payloads). A row of any other shape — blanks, escapes,
 * non-ASCII bytes, fractions, nested payloads, other member order, another tool's output — is
 * left to the general scanner (the caller falls back when this returns false), so the rows read
 * and the rows found unreadable are the same either way.
 */

const QUOTE = 34, COMMA = 44, COLON = 58, LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93, MINUS = 45, ZERO = 48, NINE = 57;
const b = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));
const P_LEFT_ID = b('{"leftId":'), P_RIGHT_ID = b(',"rightId":'), P_KEY = b(',"key":'), P_LEFT_TS = b(',"leftTs":'),
  P_RIGHT_TS = b(',"rightTs":'), P_LEFT = b(',"left":'), P_RIGHT = b(',"right":');

/** 1 for the bytes a plain string holds as they are (printable ASCII but quote and backslash). */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x7f; c++) PLAIN[c] = 1;
PLAIN[QUOTE] = 0;
PLAIN[92] = 0;

/** The row's fields, valid after a true fastRow: extents in the bytes, times, NULL for an absent side. */
export class FastRow {
  keyStart = 0; keyEnd = 0;
  /** Id extents (the canonical text: a plain string with its quotes, or integer digits); start −1 = null. */
  leftStart = 0; leftEnd = 0; rightStart = 0; rightEnd = 0;
  leftTs: number | null = null; rightTs: number | null = null;

  /** True when bytes[s, e) is a row of the plain shape above (all of it valid JSON), its fields read. */
  read(by: Uint8Array, s: number, e: number): boolean {
    let p = prefix(by, s, e, P_LEFT_ID);
    if (p < 0) return false;
    this.leftStart = p;
    p = this.leftEnd = id(by, p, e);
    if (p < 0) return false;
    if ((p = prefix(by, p, e, P_RIGHT_ID)) < 0) return false;
    this.rightStart = p;
    p = this.rightEnd = id(by, p, e);
    if (p < 0) return false;
    if ((p = prefix(by, p, e, P_KEY)) < 0) return false;
    this.keyStart = p;
    p = this.keyEnd = key(by, p, e);
    if (p < 0 || (p = prefix(by, p, e, P_LEFT_TS)) < 0) return false;
    p = time(by, p, e);
    if (p < 0) return false;
    this.leftTs = lastTime;
    if ((p = prefix(by, p, e, P_RIGHT_TS)) < 0) return false;
    p = time(by, p, e);
    if (p < 0) return false;
    this.rightTs = lastTime;
    if ((p = prefix(by, p, e, P_LEFT)) < 0 || (p = payload(by, p, e)) < 0) return false;
    if ((p = prefix(by, p, e, P_RIGHT)) < 0 || (p = payload(by, p, e)) < 0) return false;
    if (p + 1 !== e || by[p] !== RBRACE) return false;
    // null ids: marked by an extent starting at −1
    if (this.leftEnd - this.leftStart === 4 && by[this.leftStart] === 110) this.leftStart = -1;
    if (this.rightEnd - this.rightStart === 4 && by[this.rightStart] === 110) this.rightStart = -1;
    return true;
  }
}

function prefix(by: Uint8Array, p: number, e: number, lit: Uint8Array): number {
  const n = lit.length;
  if (p + n > e) return -1;
  for (let i = 0; i < n; i++) if (by[p + i] !== lit[i]) return -1;
  return p + n;
}

/** At a quote: past a plain string (no escapes, printable ASCII), or −1. */
function plainString(by: Uint8Array, p: number, e: number): number {
  p++;
  while (p < e && PLAIN[by[p]] === 1) p++;
  return p < e && by[p] === QUOTE ? p + 1 : -1;
}

/** An integer as JSON allows it (no leading zeros); −1 otherwise or when a fraction or exponent follows. */
function integer(by: Uint8Array, p: number, e: number): number {
  if (p < e && by[p] === MINUS) p++;
  if (p >= e) return -1;
  const c = by[p];
  if (c === ZERO) p++;
  else if (c > ZERO && c <= NINE) { p++; while (p < e && by[p] >= ZERO && by[p] <= NINE) p++; }
  else return -1;
  if (p < e && (by[p] === 46 || by[p] === 101 || by[p] === 69)) return -1; // . e E: the general scanner canonicalises
  return p;
}

function isNull(by: Uint8Array, p: number, e: number): boolean {
  return p + 4 <= e && by[p] === 110 && by[p + 1] === 117 && by[p + 2] === 108 && by[p + 3] === 108;
}

/** An id: a plain string, an integer (not −0, at most 21 digits: kept as written) or null. */
function id(by: Uint8Array, p: number, e: number): number {
  const c = by[p];
  if (c === QUOTE) return plainString(by, p, e);
  if (c === 110) return isNull(by, p, e) ? p + 4 : -1;
  const q = integer(by, p, e);
  if (q < 0 || q - p > 21 || (q - p === 2 && c === MINUS && by[p + 1] === ZERO)) return -1;
  return q;
}

/** The key: an array of plain strings and integers. */
function key(by: Uint8Array, p: number, e: number): number {
  if (p >= e || by[p] !== LBRACKET) return -1;
  p++;
  if (p < e && by[p] === RBRACKET) return p + 1;
  for (;;) {
    p = p < e && by[p] === QUOTE ? plainString(by, p, e) : integer(by, p, e);
    if (p < 0 || p >= e) return -1;
    const d = by[p++];
    if (d === RBRACKET) return p;
    if (d !== COMMA) return -1;
  }
}

let lastTime: number | null = null;

/** A time: a non-negative integer of at most 15 digits (exact as a double) or null. */
function time(by: Uint8Array, p: number, e: number): number {
  if (isNull(by, p, e)) { lastTime = null; return p + 4; }
  const q = integer(by, p, e);
  if (q < 0 || by[p] === MINUS || q - p > 15) return -1;
  let v = 0;
  for (let i = p; i < q; i++) v = v * 10 + (by[i] - ZERO);
  lastTime = v;
  return q;
}

/** A payload: null, or an object of plain-string names and scalar values (plain strings, numbers, literals). */
function payload(by: Uint8Array, p: number, e: number): number {
  if (p >= e) return -1;
  if (by[p] !== LBRACE) return isNull(by, p, e) ? p + 4 : -1;
  p++;
  if (p < e && by[p] === RBRACE) return p + 1;
  for (;;) {
    if (p >= e || by[p] !== QUOTE || (p = plainString(by, p, e)) < 0 || p >= e || by[p] !== COLON) return -1;
    p++;
    if (p >= e) return -1;
    const c = by[p];
    if (c === QUOTE) p = plainString(by, p, e);
    else if (c === MINUS || (c >= ZERO && c <= NINE)) p = number(by, p, e);
    else if (c === 116) p = p + 4 <= e && by[p + 1] === 114 && by[p + 2] === 117 && by[p + 3] === 101 ? p + 4 : -1;
    else if (c === 102) p = p + 5 <= e && by[p + 1] === 97 && by[p + 2] === 108 && by[p + 3] === 115 && by[p + 4] === 101 ? p + 5 : -1;
    else p = isNull(by, p, e) ? p + 4 : -1;
    if (p < 0 || p >= e) return -1;
    const d = by[p++];
    if (d === RBRACE) return p;
    if (d !== COMMA) return -1;
  }
}

/** A JSON number (fraction and exponent allowed: a payload's value is only validated). */
function number(by: Uint8Array, p: number, e: number): number {
  if (by[p] === MINUS) p++;
  if (p >= e) return -1;
  let c = by[p];
  if (c === ZERO) p++;
  else if (c > ZERO && c <= NINE) { p++; while (p < e && (c = by[p]) >= ZERO && c <= NINE) p++; }
  else return -1;
  if (p < e && by[p] === 46) {
    p++;
    if (p >= e || by[p] < ZERO || by[p] > NINE) return -1;
    while (p < e && (c = by[p]) >= ZERO && c <= NINE) p++;
  }
  if (p < e && (by[p] === 101 || by[p] === 69)) {
    p++;
    if (p < e && (by[p] === 43 || by[p] === MINUS)) p++;
    if (p >= e || by[p] < ZERO || by[p] > NINE) return -1;
    while (p < e && (c = by[p]) >= ZERO && c <= NINE) p++;
  }
  return p;
}
