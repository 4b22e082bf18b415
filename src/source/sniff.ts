/**
 * A file read in the wrong format does not fail by itself: every record becomes a dead letter (or
 * the whole file one) and the run "succeeds" with nothing joined. So a file input's first bytes
 * are looked at before any work: NDJSON starts with `{` and holds no NUL byte; size-prefixed
 * FlatBuffers start with a little-endian u32 length that fits the file (and so does the next one).
 * Only a confident mismatch is refused; text that is merely malformed is left to the dead letters.
 */
import * as fs from 'node:fs';
import { startsLikeJsonObject } from '../codec/json.js';
import { JoineryError } from '../core/errors.js';

const SNIFF_BYTES = 4096;
/** The smallest size-prefixed table flatc writes (root offset, vtable, one field) is larger. */
const MIN_FLAT_RECORD_BYTES = 8;

function looksNdjson(b: Buffer): boolean {
  return !b.includes(0) && startsLikeJsonObject(b);
}

function looksFlat(b: Buffer, sizeBytes: number): boolean {
  let p = 0;
  for (let records = 0; records < 2 && p + 4 <= b.length; records++) {
    const len = b.readUInt32LE(p);
    if (len < MIN_FLAT_RECORD_BYTES || p + 4 + len > sizeBytes) return false;
    p += 4 + len;
  }
  return p > 0;
}

/** Throw E_INPUT when the file at fd clearly is not in `format`, naming the format it looks like. */
export function sniffFormat(fd: number, path: string, side: 0 | 1, format: 'json' | 'flatbuffers'): void {
  const sizeBytes = fs.fstatSync(fd).size;
  if (sizeBytes === 0) return;
  const b = Buffer.allocUnsafe(Math.min(SNIFF_BYTES, sizeBytes));
  const n = fs.readSync(fd, b, 0, b.length, 0);
  const head = b.subarray(0, n);
  const input = `${side === 0 ? 'left' : 'right'} input ${path}`;
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31) {
    throw new JoineryError('E_INPUT', `${input} does not look like ${format === 'json' ? 'NDJSON (--format json)' : 'size-prefixed FlatBuffers (--format flatbuffers)'}: it is a Parquet file; name it *.parquet or use --format parquet`);
  }
  if (format === 'json') {
    if (looksNdjson(head)) return;
    if (looksFlat(head, sizeBytes)) throw new JoineryError('E_INPUT', `${input} does not look like NDJSON (--format json): it looks like size-prefixed FlatBuffers; use --format flatbuffers`);
    if (head.includes(0)) throw new JoineryError('E_INPUT', `${input} does not look like NDJSON (--format json): it holds binary data (NUL bytes) in its first ${n} bytes`);
  } else {
    if (looksFlat(head, sizeBytes)) return;
    if (looksNdjson(head)) throw new JoineryError('E_INPUT', `${input} does not look like size-prefixed FlatBuffers (--format flatbuffers): it looks like NDJSON; use --format json`);
  }
}
