/**
 * Reads one input file of `joinery verify` into columns, with the extractors and the acceptance
 * rules of the engine's router, so that an event counts here exactly when `run` would join it:
 * same canonical key and id bytes, same dead letters (not JSON, missing fields, impossible times,
 * key and id too long).
 */
import { FlatExtractor } from '../codec/flat.js';
import { JsonExtractor, type Extractor } from '../codec/json.js';
import { JoineryError } from '../core/errors.js';
import { FileSource } from '../source/file.js';
import type { Side } from '../state/store.js';
import type { KeyTable } from './keys.js';
import type { Progress } from './progress.js';

/** The router's limits (src/router/router.ts): an event beyond them is a dead letter, never joined. */
const MAX_TIME_MS = 8.64e15;
const MAX_KEY_ID_BYTES = 1500;

/** One side's accepted events as columns (index = order of arrival). */
export class SideEvents {
  n = 0;
  keyIdx = new Int32Array(1 << 16);
  ts = new Float64Array(1 << 16);
  /** Record number in the file: 1-based line for NDJSON, record index for FlatBuffers. */
  line = new Float64Array(1 << 16);
  /** ms the event lay behind the newest event of its input before it, beyond --max-delay (0 = not behind). */
  behindMs = new Float64Array(1 << 16);
  ids: string[] = [];
  dead = 0;
  /** Events behind their input's newest event by more than --max-delay (see README, Verify). */
  lateCandidates = 0;
  blank = 0;
  read = 0;

  constructor(readonly side: Side, readonly path: string) {}

  push(keyIdx: number, ts: number, id: string, line: number, behindMs: number): void {
    if (this.n === this.ts.length) this.grow();
    const i = this.n++;
    this.keyIdx[i] = keyIdx; this.ts[i] = ts; this.line[i] = line; this.behindMs[i] = behindMs;
    this.ids.push(id);
  }

  private grow(): void {
    const cap = this.ts.length * 2;
    const k = new Int32Array(cap); k.set(this.keyIdx); this.keyIdx = k;
    const t = new Float64Array(cap); t.set(this.ts); this.ts = t;
    const l = new Float64Array(cap); l.set(this.line); this.line = l;
    const b = new Float64Array(cap); b.set(this.behindMs); this.behindMs = b;
  }
}

export interface SideFields { key: string[]; time: string; id: string }

function extractorFor(side: Side, format: 'json' | 'flatbuffers', f: SideFields): Extractor {
  if (format === 'json') return new JsonExtractor(f.key, f.time, f.id);
  try {
    return new FlatExtractor(side === 0 ? 'Impression' : 'Play', f.key, f.time, f.id);
  } catch (e) {
    throw new JoineryError('E_USAGE', `--${side === 0 ? 'left' : 'right'} (FlatBuffers): ${(e as Error).message}`);
  }
}

/** Reads a whole input file; `maxDelayMs` marks events that lie behind their input's newest event by more. */
export async function readInput(side: Side, file: string, format: 'json' | 'flatbuffers', fields: SideFields, keys: KeyTable,
  maxDelayMs: number, progress: Progress): Promise<SideEvents> {
  const ev = new SideEvents(side, file);
  const ex = extractorFor(side, format, fields);
  const src = new FileSource(file, side, format);
  // latin1Slice: Buffer's undocumented but stable native slice, cheaper than toString('latin1', …)
  const scratch = Buffer.alloc(64 * 1024) as Buffer & { latin1Slice(start: number, end: number): string };
  const scratchView = new Uint8Array(scratch.buffer, scratch.byteOffset, scratch.length); // one element kind for the key table's loops
  let maxTs = -Infinity;
  try {
    for (let b = await src.next(); b; b = await src.next()) {
      const data = b.data, offs = b.offsets, skip = b.recordPrefixBytes ?? 0, isLines = b.lineDelimited === true;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < b.count; i++) {
        const start = offs[i] + skip;
        let end = offs[i + 1];
        if (isLines) {
          while (end > start && (data[end - 1] === 10 || data[end - 1] === 13 || data[end - 1] === 32 || data[end - 1] === 9)) end--;
          if (end === start) { ev.blank++; continue; }
        }
        ev.read++;
        if (!ex.extract(bytes, start, end, scratch)) { ev.dead++; continue; }
        const ts = ex.ts, keyLen = ex.keyLen, idLen = ex.idLen;
        if (ts > MAX_TIME_MS || ts < -MAX_TIME_MS || keyLen + idLen > MAX_KEY_ID_BYTES) { ev.dead++; continue; }
        // latin1 keeps every byte as one char: a byte-exact, cheap string to hash and compare
        const id = scratch.latin1Slice(keyLen, keyLen + idLen);
        let behind = 0;
        if (ts < maxTs - maxDelayMs) { behind = maxTs - ts; ev.lateCandidates++; }
        if (ts > maxTs) maxTs = ts;
        ev.push(keys.intern(scratchView, 0, keyLen), ts, id, b.firstPosition + i, behind);
      }
      progress.add(b.count);
    }
  } finally {
    await src.close();
  }
  return ev;
}
