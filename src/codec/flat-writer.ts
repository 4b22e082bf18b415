/**
 * Builder-free FlatBuffers writing, and the size-prefixed framing of FlatBuffers files. Writes the
 * bytes by hand (no 'flatbuffers' import: the library enters through flat.ts): the generator's
 * encoder, several times faster than a flatbuffers.Builder and without garbage. The layout is an
 * ordinary FlatBuffer; tests read it back with the generated code.
 */
// ---------------------------------------------------------------------------------------------
// Size-prefixed framing (files of FlatBuffers): u32 little-endian length, then the record

export const FLAT_FRAME_PREFIX_BYTES = 4;

/** A copy of `record` preceded by its u32 LE length. */
export function frameFlat(record: Uint8Array): Uint8Array {
  const out = new Uint8Array(FLAT_FRAME_PREFIX_BYTES + record.length);
  writeU32(out, 0, record.length);
  out.set(record, FLAT_FRAME_PREFIX_BYTES);
  return out;
}

/**
 * Splits size-prefixed records: views into `bytes` (no copies). Throws when the last frame is
 * truncated. For tests and tools; the file source parses frames itself.
 */
export function splitFrames(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 0;
  while (p < bytes.length) {
    if (p + FLAT_FRAME_PREFIX_BYTES > bytes.length) throw new Error(`truncated frame prefix at byte ${p}`);
    const len = u32(bytes, p);
    const s = p + FLAT_FRAME_PREFIX_BYTES;
    if (s + len > bytes.length) throw new Error(`truncated frame at byte ${p}: ${len} bytes announced, ${bytes.length - s} left`);
    out.push(bytes.subarray(s, s + len));
    p = s + len;
  }
  return out;
}

function u32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v; b[p + 1] = v >>> 8; b[p + 2] = v >>> 16; b[p + 3] = v >>> 24;
}

// ---------------------------------------------------------------------------------------------
// Builder-free batch writer (the generator's encoder)

/*
 * Fixed layouts (offsets relative to the record start; records are padded to a multiple of 8
 * bytes, so without size prefixes every record, and its f64, is 8-aligned in `data`). T = table
 * start = 24; the vtable sits before it at 4.
 *
 * Impression                                   Play
 *   0  u32 root offset = 24                      0  u32 root offset = 24
 *   4  u16 vtable size 18, u16 table size 32     4  u16 vtable size 16, u16 table size 32
 *   8  slot offsets: eventId 20, profileId 4,    8  slot offsets: eventId 24, profileId 4,
 *      titleId 16, ts 8, row 28, position 30,       titleId 16, ts 8, durationMs 20, device 28
 *      device 24; 2 bytes padding                20 4 bytes padding
 *  24  i32 soffset to vtable = 20               24  i32 soffset to vtable = 20
 *  28  profileId  32 ts  40 titleId             28  profileId  32 ts  40 titleId  44 durationMs
 *  44  eventId uoffset  48 device uoffset       48  eventId uoffset  52 device uoffset
 *  52  row u16  54 position u16
 *  56  eventId string (u32 len, bytes, NUL, pad to 4), device string (same), pad to 8
 */
const HEADER_BYTES = 56;
function header(words: number[]): Uint32Array {
  // words are [u32, …] in record order; vtable entries packed as pairs of u16 (little-endian)
  return Uint32Array.from(words);
}
const pack = (lo: number, hi: number): number => (lo | (hi << 16)) >>> 0;
const IMPRESSION_HEADER = header([24, pack(18, 32), pack(20, 4), pack(16, 8), pack(28, 30), pack(24, 0), 20]);
const PLAY_HEADER = header([24, pack(16, 32), pack(24, 4), pack(16, 8), pack(20, 28), 0, 20]);

/**
 * Appends Impression/Play FlatBuffers records to one growable buffer, records end to end:
 * record i is data[offsets[i], offsets[i+1]) — with `sizePrefixed`, each record's extent starts
 * with its u32 length prefix (the file framing), so data[0, length) can be written to a file as is.
 * Strings are passed as UTF-8 bytes (ids as a scratch array plus a length, so no per-record views).
 */
export class FlatBatchWriter {
  data: Uint8Array;
  offsets: Uint32Array;
  count = 0;
  length = 0;
  private dv: DataView;

  constructor(readonly sizePrefixed = false, initialBytes = 1 << 16, initialRecords = 1024) {
    this.data = new Uint8Array(initialBytes);
    this.dv = new DataView(this.data.buffer);
    this.offsets = new Uint32Array(initialRecords + 1);
  }

  reset(): void {
    this.count = 0;
    this.length = 0;
    this.offsets[0] = 0;
  }

  private ensure(bytes: number): void {
    if (this.count + 2 > this.offsets.length) {
      const o = new Uint32Array(this.offsets.length * 2);
      o.set(this.offsets.subarray(0, this.count + 1));
      this.offsets = o;
    }
    const need = this.length + bytes;
    if (need > this.data.length) {
      let n = this.data.length * 2;
      while (n < need) n *= 2;
      const d = new Uint8Array(n);
      d.set(this.data.subarray(0, this.length));
      this.data = d;
      this.dv = new DataView(d.buffer);
    }
  }

  private static recordBytes(idLen: number, devLen: number): number {
    return (HEADER_BYTES + ((4 + idLen + 1 + 3) & ~3) + ((4 + devLen + 1 + 3) & ~3) + 7) & ~7;
  }

  /** Writes the prefix, the constant header and zero padding; returns the record start. */
  private begin(hdr: Uint32Array, recLen: number): number {
    const pre = this.sizePrefixed ? FLAT_FRAME_PREFIX_BYTES : 0;
    this.ensure(pre + recLen);
    const dv = this.dv;
    let rec = this.length;
    if (pre) {
      dv.setUint32(rec, recLen, true);
      rec += pre;
    }
    for (let i = 0; i < 7; i++) dv.setUint32(rec + 4 * i, hdr[i], true);
    // NULs and padding: recLen and HEADER_BYTES are multiples of 8, so whole words (a `fill` call cost more).
    for (let p = rec + HEADER_BYTES; p < rec + recLen; p += 8) { dv.setUint32(p, 0, true); dv.setUint32(p + 4, 0, true); }
    return rec;
  }

  private finish(rec: number, recLen: number): void {
    this.length = rec + recLen;
    this.offsets[++this.count] = this.length;
  }

  private strings(rec: number, idField: number, devField: number, id: Uint8Array, idLen: number, dev: Uint8Array): void {
    const d = this.data, dv = this.dv;
    const idPos = rec + HEADER_BYTES;
    dv.setUint32(rec + idField, idPos - (rec + idField), true);
    dv.setUint32(idPos, idLen, true);
    for (let i = 0; i < idLen; i++) d[idPos + 4 + i] = id[i];
    const devPos = idPos + ((4 + idLen + 1 + 3) & ~3);
    const devLen = dev.length;
    dv.setUint32(rec + devField, devPos - (rec + devField), true);
    dv.setUint32(devPos, devLen, true);
    for (let i = 0; i < devLen; i++) d[devPos + 4 + i] = dev[i];
  }

  appendImpression(id: Uint8Array, idLen: number, profileId: number, titleId: number, ts: number,
    row: number, position: number, device: Uint8Array): void {
    const recLen = FlatBatchWriter.recordBytes(idLen, device.length);
    const rec = this.begin(IMPRESSION_HEADER, recLen);
    const dv = this.dv;
    dv.setUint32(rec + 28, profileId, true);
    dv.setFloat64(rec + 32, ts, true);
    dv.setUint32(rec + 40, titleId, true);
    dv.setUint16(rec + 52, row, true);
    dv.setUint16(rec + 54, position, true);
    this.strings(rec, 44, 48, id, idLen, device);
    this.finish(rec, recLen);
  }

  appendPlay(id: Uint8Array, idLen: number, profileId: number, titleId: number, ts: number,
    durationMs: number, device: Uint8Array): void {
    const recLen = FlatBatchWriter.recordBytes(idLen, device.length);
    const rec = this.begin(PLAY_HEADER, recLen);
    const dv = this.dv;
    dv.setUint32(rec + 28, profileId, true);
    dv.setFloat64(rec + 32, ts, true);
    dv.setUint32(rec + 40, titleId, true);
    dv.setUint32(rec + 44, durationMs, true);
    this.strings(rec, 48, 52, id, idLen, device);
    this.finish(rec, recLen);
  }
}
