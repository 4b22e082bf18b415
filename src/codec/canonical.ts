/**
 * Canonical texts of key and id values, shared by the NDJSON and FlatBuffers extractors: the
 * router hashes these bytes (key group, worker), the workers compare and store them, and the
 * output prints them, so two values join exactly when their canonical texts are equal.
 *
 * - strings: JSON.stringify's text of the decoded string;
 * - true / false;
 * - numbers: the *exact* decimal value of the literal, laid out the way JavaScript's String(number)
 *   lays numbers out (plain digits below 10^21, `1.5`, `0.000001`, `1e-7`, `1.25e+30`; `-0` is `0`).
 *   So every value a double represents prints as String(number) does, 64-bit integer ids keep
 *   their digits (9007199254740993 stays …993, where JSON.parse would round it to …992), and
 *   literals of equal value (`1.50`, `15e-1`, `1.5`) share one text.
 */

/** A decimal literal's exponent beyond this (either way) is refused: its value cannot be laid out as text. */
const MAX_EXPONENT = 1e9;

/**
 * Canonical text of the JSON number literal bytes[s, e) (already validated as a JSON number), or
 * null when its exponent is out of range.
 */
export function canonicalNumberText(b: Uint8Array, s: number, e: number): string | null {
  let p = s;
  const negative = b[p] === 45; // '-'
  if (negative) p++;
  // Significant digits of the integer and fraction parts; `point` = digits before the decimal point.
  let digits = '';
  let point = 0;
  let seenPoint = false;
  for (; p < e; p++) {
    const c = b[p];
    if (c === 46) { seenPoint = true; continue; }
    if (c === 101 || c === 69) break; // e / E
    if (digits === '' && c === 48) { if (seenPoint) point--; continue; } // leading zero
    digits += String.fromCharCode(c);
    if (!seenPoint) point++;
  }
  let exp = 0;
  if (p < e) {
    p++;
    let expNeg = false;
    if (b[p] === 45) { expNeg = true; p++; } else if (b[p] === 43) p++;
    for (; p < e; p++) {
      exp = exp * 10 + (b[p] - 48);
      if (exp > MAX_EXPONENT * 10) break;
    }
    if (expNeg) exp = -exp;
  }
  let n = digits.length;
  while (n > 0 && digits.charCodeAt(n - 1) === 48) n--;
  if (n === 0) return '0';
  if (Math.abs(exp) > MAX_EXPONENT) return null;
  return (negative ? '-' : '') + layOut(digits.slice(0, n), point + exp);
}

/**
 * ECMAScript Number::toString's layout (ECMA-262 §6.1.6.1.20) of the value 0.d₁d₂…d_k × 10^n,
 * for digits without leading or trailing zeros.
 */
function layOut(d: string, n: number): string {
  const k = d.length;
  if (k <= n && n <= 21) return d + '0'.repeat(n - k);
  if (0 < n && n <= 21) return d.slice(0, n) + '.' + d.slice(n);
  if (-6 < n && n <= 0) return '0.' + '0'.repeat(-n) + d;
  const e = n - 1;
  const es = e < 0 ? '-' + String(-e) : '+' + String(e);
  return k === 1 ? d + 'e' + es : d[0] + '.' + d.slice(1) + 'e' + es;
}

/** True when bytes[s, e) are well-formed UTF-8 (no overlong forms, no surrogates, ≤ U+10FFFF). */
export function isWellFormedUtf8(b: Uint8Array, s: number, e: number): boolean {
  return utf8ErrorAt(b, s, e) < 0;
}

/** Where bytes[s, e) stop being well-formed UTF-8 (the first byte of the bad sequence), or −1 when they are. */
export function utf8ErrorAt(b: Uint8Array, s: number, e: number): number {
  let p = s;
  while (p < e) {
    const c = b[p];
    if (c < 0x80) { p++; continue; }
    if (c >= 0xc2 && c <= 0xdf) {
      if (p + 1 >= e || (b[p + 1] & 0xc0) !== 0x80) return p;
      p += 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (p + 2 >= e) return p;
      const c1 = b[p + 1];
      if ((c1 & 0xc0) !== 0x80 || (b[p + 2] & 0xc0) !== 0x80) return p;
      if (c === 0xe0 && c1 < 0xa0) return p; // overlong
      if (c === 0xed && c1 >= 0xa0) return p; // surrogate
      p += 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (p + 3 >= e) return p;
      const c1 = b[p + 1];
      if ((c1 & 0xc0) !== 0x80 || (b[p + 2] & 0xc0) !== 0x80 || (b[p + 3] & 0xc0) !== 0x80) return p;
      if (c === 0xf0 && c1 < 0x90) return p; // overlong
      if (c === 0xf4 && c1 >= 0x90) return p; // > U+10FFFF
      p += 4;
    } else {
      return p;
    }
  }
  return -1;
}

const encoder = new TextEncoder();

/**
 * Writes `text` as UTF-8 at out[o…) and returns the position after it. When it does not fit,
 * writes nothing and returns the position it would have reached (the caller compares with
 * out.length).
 */
export function writeText(out: Uint8Array, o: number, text: string): number {
  const n = text.length;
  if (o + n * 3 <= out.length) {
    let ascii = true;
    for (let i = 0; i < n; i++) if (text.charCodeAt(i) > 0x7f) { ascii = false; break; }
    if (ascii) {
      for (let i = 0; i < n; i++) out[o + i] = text.charCodeAt(i);
      return o + n;
    }
    return o + encoder.encodeInto(text, out.subarray(o)).written;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (o + bytes <= out.length) encoder.encodeInto(text, out.subarray(o));
  return o + bytes;
}

/** Copies bytes[s, e) to out[o…) if they fit; returns the position after them either way. */
export function writeBytes(out: Uint8Array, o: number, b: Uint8Array, s: number, e: number): number {
  const n = e - s;
  if (o + n > out.length) return o + n;
  if (n <= 32) for (let i = 0; i < n; i++) out[o + i] = b[s + i];
  else out.set(b.subarray(s, e), o);
  return o + n;
}
