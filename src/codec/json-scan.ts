/**
 * A validating byte-level JSON scanner that finds a few fields of a record without building it.
 *
 * It checks the whole record against the JSON grammar (RFC 8259, as JSON.parse accepts it) and
 * records, for each wanted path (`a` or `a.b.c`), the type and byte extent of the value JSON.parse
 * + property lookup would give: the last occurrence of a repeated member name wins, as in
 * JSON.parse (a repeated parent replaces everything found under the earlier one), and a numeric
 * path segment indexes into an array (`items.0`) as property lookup on the parsed array does.
 * Nothing is allocated per record on the common path: member names are compared as bytes; only
 * names holding escapes or non-ASCII bytes are decoded.
 *
 * The record's own members are read by a fast path (`flat`) that relies on the records of one
 * source sharing their layout: it keeps the member names of the last record by position and
 * compares each name against the one at its position as 32-bit words, which validates it and
 * tells whether it is wanted at once; only a name that differs is scanned and matched. Nested
 * values go through the general scanner; a record the fast path finds invalid is scanned again by
 * the general path, which decides, so what is accepted, refused and returned is the same.
 *
 * Differences from JSON.parse + lookup, both deliberate: only a record's own members count (a
 * field named `constructor` or `toString` that the record lacks is missing, not an inherited
 * function), and `length` does not read an array's length.
 */

export const enum VT { Missing = 0, String = 1, Number = 2, True = 3, False = 4, Null = 5, Object = 6, Array = 7 }
/** String value flags: holds a backslash escape / a byte ≥ 0x80. Number flags: has a fraction / an exponent. */
export const enum VF { Escape = 1, NonAscii = 2, Fraction = 4, Exponent = 8 }

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** One level of the wanted paths: member names leading on, and the targets ending here. */
class PathNode {
  readonly names: string[] = [];
  readonly nameBytes: Uint8Array[] = [];
  readonly nameLengths: number[] = [];
  /** Array index a name stands for when it is a canonical index ("0", "12"), else -1. */
  readonly indexes: number[] = [];
  readonly children: PathNode[] = [];
  readonly targets: number[] = [];
  /** Every target at or below this node (cleared when a repeated member name replaces it). */
  readonly subtree: number[] = [];
  /** Member names by length: the first name of each length (index into names, −1 for none) and the next of the same length. */
  byLength = new Int32Array(0);
  readonly nextOfLength: number[] = [];

  child(name: string): PathNode {
    let i = this.names.indexOf(name);
    if (i < 0) {
      i = this.names.length;
      this.names.push(name);
      this.nameBytes.push(Uint8Array.from(Buffer.from(name, 'utf8'))); // plain arrays: the loads below stay monomorphic
      this.nameLengths.push(this.nameBytes[i].length);
      this.indexes.push(/^(0|[1-9][0-9]{0,8})$/.test(name) ? Number(name) : -1);
      this.children.push(new PathNode());
      this.nextOfLength.push(-1);
      const len = this.nameLengths[i];
      if (len >= this.byLength.length) { const t = new Int32Array(len + 1).fill(-1); t.set(this.byLength); this.byLength = t; }
      if (this.byLength[len] < 0) this.byLength[len] = i;
      else { let j = this.byLength[len]; while (this.nextOfLength[j] >= 0) j = this.nextOfLength[j]; this.nextOfLength[j] = i; }
    }
    return this.children[i];
  }
}

const SP = 32, TAB = 9, LF = 10, CR = 13, QUOTE = 34, BACKSLASH = 92, COMMA = 44, COLON = 58;
const LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93, MINUS = 45, PLUS = 43, DOT = 46, ZERO = 48, NINE = 57;

/** Byte classes inside a string: 0 plain ASCII, 1 quote, 2 backslash, 3 control (invalid), 4 ≥ 0x80. */
const STR_CLASS = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STR_CLASS[c] = 3;
STR_CLASS[QUOTE] = 1;
STR_CLASS[BACKSLASH] = 2;
for (let c = 0x80; c < 0x100; c++) STR_CLASS[c] = 4;
/**
 * 1 for the bytes a string holds as they are (printable ASCII but quote and backslash), except the
 * closing brace: the top-level fast path's loops stop at the record's last byte, a `}`, without
 * testing for the end.
 */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = 1;
PLAIN[QUOTE] = 0;
PLAIN[BACKSLASH] = 0;
PLAIN[RBRACE] = 0;
/** Byte → 1 when it may follow a backslash in a JSON string (other than `u`). */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

/*
 * The scanning primitives are plain functions over (bytes, position, end) returning the position
 * after what they read, or -1 when the bytes are not valid JSON there: kept small and free of
 * object state so that V8 inlines them into the loops below. A string's or number's flags are
 * left in `lastFlags`.
 */
let lastFlags = 0;
/** The flags of every string of the record being scanned, together (reset by scan). */
let recordFlags = 0;

function skipWs(b: Uint8Array, p: number, e: number): number {
  while (p < e) {
    const c = b[p];
    if (c !== SP && c !== LF && c !== CR && c !== TAB) break;
    p++;
  }
  return p;
}

/** At a quote: past the closing quote. */
function scanString(b: Uint8Array, p: number, e: number): number {
  p++;
  let f = 0;
  for (;;) {
    while (p < e && STR_CLASS[b[p]] === 0) p++;
    if (p >= e) return -1;
    const k = STR_CLASS[b[p++]];
    if (k === 1) break;
    if (k === 4) { f |= VF.NonAscii; continue; }
    if (k === 3) return -1;
    f |= VF.Escape; // backslash
    if (p >= e) return -1;
    const x = b[p++];
    if (x === 117) { // \uXXXX
      if (p + 4 > e || !HEX[b[p]] || !HEX[b[p + 1]] || !HEX[b[p + 2]] || !HEX[b[p + 3]]) return -1;
      p += 4;
    } else if (!SIMPLE_ESCAPE[x]) {
      return -1;
    }
  }
  lastFlags = f;
  recordFlags |= f;
  return p;
}

/** At a minus or digit: past the number. */
function scanNumber(b: Uint8Array, p: number, e: number): number {
  let f = 0;
  if (b[p] === MINUS) p++;
  if (p >= e) return -1;
  let c = b[p];
  if (c === ZERO) p++;
  else if (c > ZERO && c <= NINE) { p++; while (p < e && (c = b[p]) >= ZERO && c <= NINE) p++; }
  else return -1;
  if (p < e && b[p] === DOT) {
    f |= VF.Fraction;
    p++;
    if (p >= e || b[p] < ZERO || b[p] > NINE) return -1;
    while (p < e && (c = b[p]) >= ZERO && c <= NINE) p++;
  }
  if (p < e && (b[p] === 101 || b[p] === 69)) {
    f |= VF.Exponent;
    p++;
    if (p < e && (b[p] === PLUS || b[p] === MINUS)) p++;
    if (p >= e || b[p] < ZERO || b[p] > NINE) return -1;
    while (p < e && (c = b[p]) >= ZERO && c <= NINE) p++;
  }
  lastFlags = f;
  return p;
}

/** At t, f or n: past true, false or null. */
function scanLiteral(b: Uint8Array, p: number, e: number): number {
  const c = b[p];
  if (c === 116 && p + 4 <= e && b[p + 1] === 114 && b[p + 2] === 117 && b[p + 3] === 101) return p + 4;
  if (c === 102 && p + 5 <= e && b[p + 1] === 97 && b[p + 2] === 108 && b[p + 3] === 115 && b[p + 4] === 101) return p + 5;
  if (c === 110 && p + 4 <= e && b[p + 1] === 117 && b[p + 2] === 108 && b[p + 3] === 108) return p + 4;
  return -1;
}

/** A string, number or literal at p (not a container): past it. */
function scanScalar(b: Uint8Array, p: number, e: number): number {
  const c = b[p];
  if (c === QUOTE) return scanString(b, p, e);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return scanNumber(b, p, e);
  return scanLiteral(b, p, e);
}

/** The container stack of skipValue: 1 for an object, 2 for an array. */
let stack = new Uint8Array(64);

/** A member name and its colon (inside skipValue): the position of the value, or -1. */
function memberName(b: Uint8Array, p: number, e: number): number {
  if (p >= e || b[p] !== QUOTE) return -1;
  p = scanString(b, p, e);
  if (p < 0) return -1;
  p = skipWs(b, p, e);
  if (p >= e || b[p] !== COLON) return -1;
  return skipWs(b, p + 1, e);
}

/**
 * Validates and skips one value of any depth, iteratively (a deeply nested record must not
 * overflow the stack).
 */
function skipValue(b: Uint8Array, p: number, e: number): number {
  let depth = 0;
  for (;;) {
    // a value
    if (p >= e) return -1;
    const c = b[p];
    if (c === LBRACE || c === LBRACKET) {
      const open = c === LBRACE ? 1 : 2;
      p = skipWs(b, p + 1, e);
      if (p >= e) return -1;
      if (b[p] === (open === 1 ? RBRACE : RBRACKET)) {
        p++;
      } else {
        if (depth === stack.length) { const s = new Uint8Array(depth * 2); s.set(stack); stack = s; }
        stack[depth++] = open;
        if (open === 1 && (p = memberName(b, p, e)) < 0) return -1;
        continue;
      }
    } else {
      p = scanScalar(b, p, e);
      if (p < 0) return -1;
    }
    // after a value: close containers, or go on to the next element / member
    for (;;) {
      if (depth === 0) return p;
      p = skipWs(b, p, e);
      if (p >= e) return -1;
      const d = b[p++];
      const top = stack[depth - 1];
      if (d === COMMA) {
        p = skipWs(b, p, e);
        if (top === 1 && (p = memberName(b, p, e)) < 0) return -1;
        break;
      }
      if (d === (top === 1 ? RBRACE : RBRACKET)) { depth--; continue; }
      return -1;
    }
  }
}

/** Longest member name the fast path remembers (bytes, plus one), and how many member positions. */
const NAME_SLOT = 64, SEEN_MEMBERS = 32, SLOT_WORDS = NAME_SLOT / 4, RELEARN_AFTER_MISSES = 8;

export class JsonFieldScanner {
  /** Per target (in the order the paths were given): type, extent [start, end) of the value text, flags. */
  readonly type: Uint8Array;
  readonly start: Int32Array;
  readonly end: Int32Array;
  readonly flags: Uint8Array;
  /** After a failed scan: true when the record is valid JSON but not an object. */
  notObject = false;
  private readonly root = new PathNode();
  private b: Uint8Array = new Uint8Array(0);
  /** Per top-level wanted name: its one target when it ends a single path there, else −1 (`wanted` reads it). */
  private readonly leafTarget: Int32Array;
  /**
   * The member names of the last record the fast path read, by position (records of one source
   * mostly share their layout): the name bytes at NAME_SLOT × position, their length (−1: none),
   * and which wanted name each is (−1: none). A name that matches is known valid and known wanted
   * or not without scanning it first.
   */
  private readonly seenNames = new Uint8Array(NAME_SLOT * SEEN_MEMBERS);
  private readonly seenLength = new Int32Array(SEEN_MEMBERS).fill(-1);
  private readonly seenMatch = new Int32Array(SEEN_MEMBERS);
  private readonly seenMisses = new Int32Array(SEEN_MEMBERS);
  private readonly seenWords = new Int32Array(SLOT_WORDS * SEEN_MEMBERS);
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  /** `paths`: dotted field paths; a path may repeat (each gets its own target slot). */
  constructor(paths: readonly string[]) {
    const n = paths.length;
    this.type = new Uint8Array(n);
    this.start = new Int32Array(n);
    this.end = new Int32Array(n);
    this.flags = new Uint8Array(n);
    for (let t = 0; t < n; t++) {
      let node = this.root;
      for (const seg of paths[t].split('.')) {
        node.subtree.push(t);
        node = node.child(seg);
      }
      node.subtree.push(t);
      node.targets.push(t);
    }
    const top = this.root.children;
    this.leafTarget = Int32Array.from(top, (c) => (c.children.length === 0 && c.targets.length === 1 ? c.targets[0] : -1));
  }

  /**
   * Scans the record bytes[start, end). False when it is not valid JSON or not an object
   * (`notObject` tells which); otherwise the targets hold what was found.
   */
  /** After scan(): a string of the record held a byte ≥ 0x80 (the only place valid JSON can hold one). */
  get nonAscii(): boolean {
    return (recordFlags & VF.NonAscii) !== 0;
  }

  scan(bytes: Uint8Array, start: number, end: number): boolean {
    const type = this.type;
    for (let i = 0; i < type.length; i++) type[i] = VT.Missing;
    this.notObject = false;
    recordFlags = 0;
    if (bytes !== this.b || this.dv.byteLength !== bytes.byteLength) { // (a view of a resizable buffer may grow)
      this.b = bytes;
      this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    let p = start;
    // TextDecoder drops a leading byte order mark before JSON.parse sees the text
    if (end - p >= 3 && bytes[p] === 0xef && bytes[p + 1] === 0xbb && bytes[p + 2] === 0xbf) p += 3;
    p = skipWs(bytes, p, end);
    if (p < end && bytes[p] === LBRACE) {
      let last = end - 1;
      while (last > p && (bytes[last] === SP || bytes[last] === LF || bytes[last] === CR || bytes[last] === TAB)) last--;
      if (last > p && bytes[last] === RBRACE && this.flat(p, last)) return true;
      // anything the fast path does not take (including every invalid record) is scanned again here
      for (let i = 0; i < type.length; i++) type[i] = VT.Missing;
      p = this.object(this.root, p, end);
      if (p < 0) return false;
    } else {
      p = skipValue(bytes, p, end);
      if (p < 0) return false;
      this.notObject = skipWs(bytes, p, end) === end;
      return false;
    }
    return skipWs(bytes, p, end) === end;
  }

  /**
   * The record's object from its opening brace at s to its closing brace at `last` (the record's
   * last byte but blanks): true when it is valid JSON and the targets are set, as `object` would
   * set them. False when it is not valid JSON: `object` then reads it again and decides (a record
   * refused here must be refused there, which the tests hold it to). The record ending in `}`
   * bounds the loops over names, numbers and plain strings without an end test.
   */
  private flat(s: number, last: number): boolean {
    const b = this.b, e = last + 1, root = this.root, byLength = root.byLength, names = root.nameBytes;
    const seen = this.seenNames, seenLength = this.seenLength, seenMatch = this.seenMatch, leafTarget = this.leafTarget;
    const words = this.seenWords, seenMisses = this.seenMisses, dv = this.dv;
    let member = 0;
    let p = skipWs(b, s + 1, e);
    if (p === last) return true; // {}
    for (;;) {
      if (b[p] !== QUOTE) return false;
      const ks = ++p;
      // the name at this position in the last record, compared in place; else scanned and matched
      let m: number;
      // template: the name and its closing quote, as 32-bit words (the last one overlapping when the length is not a multiple of 4)
      const tl = member < SEEN_MEMBERS ? seenLength[member] + 1 : 0;
      let hit = false;
      if (tl >= 4 && ks + tl <= last) {
        const o = member * SLOT_WORDS, n = (tl - 1) >> 2;
        let i = 0;
        while (i < n && dv.getInt32(ks + 4 * i, true) === words[o + i]) i++;
        hit = i === n && dv.getInt32(ks + tl - 4, true) === words[o + n];
      } else if (tl > 0 && ks + tl <= last) {
        const o = member * NAME_SLOT;
        let i = 0;
        while (i < tl && b[ks + i] === seen[o + i]) i++;
        hit = i === tl;
      }
      if (hit) {
        seenMisses[member] = 0;
        m = seenMatch[member];
        p = ks + tl - 1;
      } else {
        while (PLAIN[b[p]] === 1) p++;
        const plain = b[p] === QUOTE;
        let decode = false;
        if (!plain) { // an escape, a non-ASCII byte or a `}`: the name read as `object` reads it, and not remembered
          p = scanString(b, ks - 1, e);
          if (p < 0) return false;
          p--;
          decode = lastFlags !== 0;
        }
        const len = p - ks;
        if (decode) {
          m = names.length > 0 ? root.names.indexOf(JSON.parse(utf8.decode(b.subarray(ks - 1, p + 1))) as string) : -1;
        } else {
          m = len < byLength.length ? byLength[len] : -1;
          while (m >= 0) {
            const nb = names[m];
            let k = 0;
            while (k < len && nb[k] === b[ks + k]) k++;
            if (k === len) break;
            m = root.nextOfLength[m];
          }
        }
        // learning costs more than a miss: a position keeps its name until it missed several records in a row
        if (plain && member < SEEN_MEMBERS && len + 1 < NAME_SLOT && (seenLength[member] < 0 || ++seenMisses[member] >= RELEARN_AFTER_MISSES)) {
          this.learn(member, ks, len + 1, m);
        }
      }
      member++;
      p++;
      if (b[p] !== COLON) { p = skipWs(b, p, e); if (p >= e || b[p] !== COLON) return false; }
      p++;
      let c = b[p];
      if (c === SP || c === LF || c === CR || c === TAB) { p = skipWs(b, p, e); if (p >= e) return false; c = b[p]; }
      let q: number;
      let t: VT = VT.Missing;
      let flags = 0;
      const k = m >= 0 ? leafTarget[m] : -1;
      if (m >= 0 && k < 0) {
        q = this.wanted(root.children[m], p, e);
      } else {
        if (c === QUOTE) {
          t = VT.String;
          q = p + 1;
          while (PLAIN[b[q]] === 1) q++;
          if (b[q] === QUOTE) q++;
          else { q = scanString(b, p, e); flags = lastFlags; }
        } else if (c >= ZERO && c <= NINE || c === MINUS) {
          t = VT.Number;
          q = c === MINUS ? p + 1 : p;
          c = b[q];
          if (c === ZERO) q++;
          else if (c > ZERO && c <= NINE) { q++; while ((c = b[q]) >= ZERO && c <= NINE) q++; }
          else return false;
          c = b[q];
          if (c === DOT || c === 101 || c === 69) { q = scanNumber(b, p, e); flags = lastFlags; }
        } else if (c === LBRACE) {
          t = VT.Object;
          q = skipValue(b, p, e);
        } else if (c === LBRACKET) {
          t = VT.Array;
          q = skipValue(b, p, e);
        } else {
          q = scanLiteral(b, p, e);
          t = c === 116 ? VT.True : c === 102 ? VT.False : VT.Null;
        }
        if (k >= 0) {
          this.type[k] = t;
          this.start[k] = p;
          this.end[k] = q;
          this.flags[k] = flags;
        }
      }
      if (q < 0 || q >= e) return false;
      c = b[q];
      if (c === SP || c === LF || c === CR || c === TAB) { q = skipWs(b, q, e); if (q >= e) return false; c = b[q]; }
      if (c === COMMA) {
        p = q + 1;
        c = b[p];
        if (c === SP || c === LF || c === CR || c === TAB) p = skipWs(b, p, e);
        continue;
      }
      return q === last; // the closing brace, or bytes after it
    }
  }

  /** Remembers the name and closing quote at b[ks, ks + tl) as member `member`'s template, which is wanted name m (or none, −1). */
  private learn(member: number, ks: number, tl: number, m: number): void {
    const b = this.b, o = member * NAME_SLOT, ow = member * SLOT_WORDS;
    for (let k = 0; k < tl; k++) this.seenNames[o + k] = b[ks + k];
    const n = (tl - 1) >> 2;
    if (tl >= 4) {
      for (let i = 0; i < n; i++) this.seenWords[ow + i] = this.dv.getInt32(ks + 4 * i, true);
      this.seenWords[ow + n] = this.dv.getInt32(ks + tl - 4, true);
    }
    this.seenLength[member] = tl - 1;
    this.seenMatch[member] = m;
    this.seenMisses[member] = 0;
  }

  /** At an opening brace: members, matching names against `node`'s children. Past the closing brace, or -1. */
  private object(node: PathNode, p: number, e: number): number {
    const b = this.b;
    p = skipWs(b, p + 1, e);
    if (p < e && b[p] === RBRACE) return p + 1;
    const names = node.nameBytes;
    for (;;) {
      if (p >= e || b[p] !== QUOTE) return -1;
      const ks = p + 1;
      p = scanString(b, p, e);
      if (p < 0) return -1;
      const ke = p - 1;
      const kflags = lastFlags;
      p = skipWs(b, p, e);
      if (p >= e || b[p] !== COLON) return -1;
      p = skipWs(b, p + 1, e);
      // which wanted name, if any (member names compared as bytes unless escaped or non-ASCII)
      let c = -1;
      if (kflags !== 0) {
        if (names.length > 0) c = node.names.indexOf(JSON.parse(utf8.decode(b.subarray(ks - 1, ke + 1))) as string);
      } else {
        const len = ke - ks;
        const lengths = node.nameLengths;
        outer: for (let i = 0; i < lengths.length; i++) {
          if (lengths[i] !== len) continue;
          const nb = names[i];
          for (let j = 0; j < len; j++) if (nb[j] !== b[ks + j]) continue outer;
          c = i;
          break;
        }
      }
      if (c >= 0) p = this.wanted(node.children[c], p, e);
      else if (p < e && (b[p] === LBRACE || b[p] === LBRACKET)) p = skipValue(b, p, e);
      else if (p < e) p = scanScalar(b, p, e);
      else return -1;
      if (p < 0) return -1;
      p = skipWs(b, p, e);
      if (p >= e) return -1;
      const d = b[p++];
      if (d === COMMA) { p = skipWs(b, p, e); continue; }
      if (d === RBRACE) return p;
      return -1;
    }
  }

  /** At an opening bracket: elements, matching indexes against `node`'s children. Past the closing bracket, or -1. */
  private array(node: PathNode, p: number, e: number): number {
    const b = this.b;
    p = skipWs(b, p + 1, e);
    if (p < e && b[p] === RBRACKET) return p + 1;
    for (let i = 0; ; i++) {
      const c = node.indexes.indexOf(i);
      p = c < 0 ? skipValue(b, p, e) : this.wanted(node.children[c], p, e);
      if (p < 0) return -1;
      p = skipWs(b, p, e);
      if (p >= e) return -1;
      const d = b[p++];
      if (d === COMMA) { p = skipWs(b, p, e); continue; }
      if (d === RBRACKET) return p;
      return -1;
    }
  }

  /** A value on a wanted path: record it for the targets ending here, descend for the others. */
  private wanted(node: PathNode, s: number, e: number): number {
    const b = this.b;
    const sub = node.subtree;
    if (sub.length > 1 || node.children.length > 0) for (let i = 0; i < sub.length; i++) this.type[sub[i]] = VT.Missing; // a repeated name replaces
    if (s >= e) return -1;
    const c = b[s];
    let t: VT;
    let p: number;
    lastFlags = 0;
    if (c === LBRACE) {
      t = VT.Object;
      p = node.children.length > 0 ? this.object(node, s, e) : skipValue(b, s, e);
    } else if (c === LBRACKET) {
      t = VT.Array;
      p = node.children.length > 0 ? this.array(node, s, e) : skipValue(b, s, e);
    } else if (c === QUOTE) {
      t = VT.String;
      p = scanString(b, s, e);
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      t = VT.Number;
      p = scanNumber(b, s, e);
    } else {
      p = scanLiteral(b, s, e);
      t = c === 116 ? VT.True : c === 102 ? VT.False : VT.Null;
    }
    if (p < 0) return -1;
    const tg = node.targets;
    for (let i = 0; i < tg.length; i++) {
      const k = tg[i];
      this.type[k] = t;
      this.start[k] = s;
      this.end[k] = p;
      this.flags[k] = lastFlags;
    }
    return p;
  }
}
