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
  /** Array index a name stands for when it is a canonical index ("0", "12"), else -1. */
  readonly indexes: number[] = [];
  readonly children: PathNode[] = [];
  readonly targets: number[] = [];
  /** Every target at or below this node (cleared when a repeated member name replaces it). */
  readonly subtree: number[] = [];

  child(name: string): PathNode {
    let i = this.names.indexOf(name);
    if (i < 0) {
      i = this.names.length;
      this.names.push(name);
      this.nameBytes.push(Buffer.from(name, 'utf8'));
      this.indexes.push(/^(0|[1-9][0-9]{0,8})$/.test(name) ? Number(name) : -1);
      this.children.push(new PathNode());
    }
    return this.children[i];
  }
}

const SP = 32, TAB = 9, LF = 10, CR = 13, QUOTE = 34, BACKSLASH = 92, COMMA = 44, COLON = 58;
const LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93, MINUS = 45, PLUS = 43, DOT = 46, ZERO = 48, NINE = 57;

/** Byte → 1 when it may follow a backslash in a JSON string (other than `u`). */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

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
  private p = 0;
  private e = 0;
  private vflags = 0;
  private stack = new Uint8Array(64);

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
  }

  /**
   * Scans the record bytes[start, end). False when it is not valid JSON or not an object
   * (`notObject` tells which); otherwise the targets hold what was found.
   */
  scan(bytes: Uint8Array, start: number, end: number): boolean {
    this.type.fill(VT.Missing);
    this.notObject = false;
    this.b = bytes;
    this.e = end;
    let p = start;
    // TextDecoder drops a leading byte order mark before JSON.parse sees the text
    if (end - p >= 3 && bytes[p] === 0xef && bytes[p + 1] === 0xbb && bytes[p + 2] === 0xbf) p += 3;
    this.p = p;
    this.ws();
    if (this.p < end && bytes[this.p] === LBRACE) {
      if (!this.object(this.root)) return false;
    } else {
      if (!this.skipValue()) return false;
      this.ws();
      this.notObject = this.p === end;
      return false;
    }
    this.ws();
    return this.p === end;
  }

  private ws(): void {
    const b = this.b, e = this.e;
    let p = this.p;
    while (p < e) {
      const c = b[p];
      if (c !== SP && c !== LF && c !== CR && c !== TAB) break;
      p++;
    }
    this.p = p;
  }

  /** At an opening brace: members, matching names against `node`'s children. */
  private object(node: PathNode): boolean {
    const b = this.b, e = this.e;
    this.p++;
    this.ws();
    if (this.p < e && b[this.p] === RBRACE) { this.p++; return true; }
    for (;;) {
      if (this.p >= e || b[this.p] !== QUOTE) return false;
      const ks = this.p + 1;
      if (!this.string()) return false;
      const ke = this.p - 1;
      const kflags = this.vflags;
      this.ws();
      if (this.p >= e || b[this.p] !== COLON) return false;
      this.p++;
      this.ws();
      const c = this.match(node, ks, ke, kflags);
      if (c < 0) {
        if (!this.skipValue()) return false;
      } else if (!this.wanted(node.children[c])) {
        return false;
      }
      this.ws();
      if (this.p >= e) return false;
      const d = b[this.p++];
      if (d === COMMA) { this.ws(); continue; }
      if (d === RBRACE) return true;
      return false;
    }
  }

  /** At an opening bracket: elements, matching indexes against `node`'s children. */
  private array(node: PathNode): boolean {
    const b = this.b, e = this.e;
    this.p++;
    this.ws();
    if (this.p < e && b[this.p] === RBRACKET) { this.p++; return true; }
    for (let i = 0; ; i++) {
      const c = node.indexes.indexOf(i);
      if (c < 0) {
        if (!this.skipValue()) return false;
      } else if (!this.wanted(node.children[c])) {
        return false;
      }
      this.ws();
      if (this.p >= e) return false;
      const d = b[this.p++];
      if (d === COMMA) { this.ws(); continue; }
      if (d === RBRACKET) return true;
      return false;
    }
  }

  /** Index of the child of `node` named by the member name bytes[ks, ke), or -1. */
  private match(node: PathNode, ks: number, ke: number, kflags: number): number {
    const names = node.nameBytes;
    if (names.length === 0) return -1;
    if (kflags !== 0) {
      const name = JSON.parse(utf8.decode(this.b.subarray(ks - 1, ke + 1))) as string;
      return node.names.indexOf(name);
    }
    const b = this.b, len = ke - ks;
    outer: for (let i = 0; i < names.length; i++) {
      const nb = names[i];
      if (nb.length !== len) continue;
      for (let j = 0; j < len; j++) if (nb[j] !== b[ks + j]) continue outer;
      return i;
    }
    return -1;
  }

  /** A value on a wanted path: record it for the targets ending here, descend for the others. */
  private wanted(node: PathNode): boolean {
    const b = this.b;
    const sub = node.subtree;
    for (let i = 0; i < sub.length; i++) this.type[sub[i]] = VT.Missing; // a repeated name replaces
    const s = this.p;
    const c = b[s];
    let t: VT;
    this.vflags = 0;
    if (c === LBRACE) {
      t = VT.Object;
      if (!(node.children.length > 0 ? this.object(node) : this.skipValue())) return false;
    } else if (c === LBRACKET) {
      t = VT.Array;
      if (!(node.children.length > 0 ? this.array(node) : this.skipValue())) return false;
    } else if (c === QUOTE) {
      t = VT.String;
      if (!this.string()) return false;
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      t = VT.Number;
      if (!this.number()) return false;
    } else {
      if (!this.literal()) return false;
      t = c === 116 ? VT.True : c === 102 ? VT.False : VT.Null;
    }
    const tg = node.targets;
    for (let i = 0; i < tg.length; i++) {
      const k = tg[i];
      this.type[k] = t;
      this.start[k] = s;
      this.end[k] = this.p;
      this.flags[k] = this.vflags;
    }
    return true;
  }

  /** At a quote: past the closing quote; vflags = escape / non-ASCII flags. */
  private string(): boolean {
    const b = this.b, e = this.e;
    let p = this.p + 1;
    let f = 0;
    for (;;) {
      if (p >= e) return false;
      const c = b[p++];
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        f |= VF.Escape;
        if (p >= e) return false;
        const x = b[p++];
        if (x === 117) { // \uXXXX
          if (p + 4 > e || !HEX[b[p]] || !HEX[b[p + 1]] || !HEX[b[p + 2]] || !HEX[b[p + 3]]) return false;
          p += 4;
        } else if (!SIMPLE_ESCAPE[x]) {
          return false;
        }
      } else if (c < 0x20) {
        return false;
      } else if (c >= 0x80) {
        f |= VF.NonAscii;
      }
    }
    this.p = p;
    this.vflags = f;
    return true;
  }

  /** At a minus or digit: past the number; vflags = fraction / exponent flags. */
  private number(): boolean {
    const b = this.b, e = this.e;
    let p = this.p;
    let f = 0;
    if (b[p] === MINUS) p++;
    if (p >= e) return false;
    if (b[p] === ZERO) p++;
    else if (b[p] > ZERO && b[p] <= NINE) { p++; while (p < e && b[p] >= ZERO && b[p] <= NINE) p++; }
    else return false;
    if (p < e && b[p] === DOT) {
      f |= VF.Fraction;
      p++;
      if (p >= e || b[p] < ZERO || b[p] > NINE) return false;
      while (p < e && b[p] >= ZERO && b[p] <= NINE) p++;
    }
    if (p < e && (b[p] === 101 || b[p] === 69)) {
      f |= VF.Exponent;
      p++;
      if (p < e && (b[p] === PLUS || b[p] === MINUS)) p++;
      if (p >= e || b[p] < ZERO || b[p] > NINE) return false;
      while (p < e && b[p] >= ZERO && b[p] <= NINE) p++;
    }
    this.p = p;
    this.vflags = f;
    return true;
  }

  /** At t, f or n: past true, false or null. */
  private literal(): boolean {
    const b = this.b, p = this.p, e = this.e;
    const c = b[p];
    if (c === 116 && p + 4 <= e && b[p + 1] === 114 && b[p + 2] === 117 && b[p + 3] === 101) { this.p = p + 4; return true; }
    if (c === 102 && p + 5 <= e && b[p + 1] === 97 && b[p + 2] === 108 && b[p + 3] === 115 && b[p + 4] === 101) { this.p = p + 5; return true; }
    if (c === 110 && p + 4 <= e && b[p + 1] === 117 && b[p + 2] === 108 && b[p + 3] === 108) { this.p = p + 4; return true; }
    return false;
  }

  /**
   * Validates and skips one value of any depth, iteratively (a deeply nested record must not
   * overflow the stack). The container stack holds 1 for an object, 2 for an array.
   */
  private skipValue(): boolean {
    const b = this.b, e = this.e;
    let depth = 0;
    for (;;) {
      // a value
      if (this.p >= e) return false;
      const c = b[this.p];
      let open = 0;
      if (c === QUOTE) { if (!this.string()) return false; }
      else if (c === MINUS || (c >= ZERO && c <= NINE)) { if (!this.number()) return false; }
      else if (c === LBRACE) open = 1;
      else if (c === LBRACKET) open = 2;
      else if (!this.literal()) return false;
      if (open !== 0) {
        this.p++;
        this.ws();
        if (this.p >= e) return false;
        if (b[this.p] === (open === 1 ? RBRACE : RBRACKET)) { this.p++; }
        else {
          if (depth === this.stack.length) { const s = new Uint8Array(depth * 2); s.set(this.stack); this.stack = s; }
          this.stack[depth++] = open;
          if (open === 1 && !this.memberName()) return false;
          continue;
        }
      }
      // after a value: close containers, or go on to the next element / member
      for (;;) {
        if (depth === 0) return true;
        this.ws();
        if (this.p >= e) return false;
        const d = b[this.p++];
        const top = this.stack[depth - 1];
        if (d === COMMA) {
          this.ws();
          if (top === 1 && !this.memberName()) return false;
          break;
        }
        if (d === (top === 1 ? RBRACE : RBRACKET)) { depth--; continue; }
        return false;
      }
    }
  }

  /** A member name and its colon (inside skipValue), leaving the position at the value. */
  private memberName(): boolean {
    const b = this.b, e = this.e;
    if (this.p >= e || b[this.p] !== QUOTE || !this.string()) return false;
    this.ws();
    if (this.p >= e || b[this.p] !== COLON) return false;
    this.p++;
    this.ws();
    return true;
  }
}
