import { isUtf8 } from 'node:buffer';
import { flatToJson } from '../codec/flat.js';
import { log } from '../core/log.js';
import type { Rejected } from '../router/router.js';
import type { LineSink } from '../sink/sink.js';

const FIRST_DEAD_LETTERS_SHOWN = 5;
const SIDE_NAME = ['left', 'right'] as const;

/**
 * A record in the other format says which flag reads it (Kafka inputs default to FlatBuffers, so
 * JSON produced by another tool is the usual case): the bytes alone tell JSON from FlatBuffers.
 */
export function formatHint(r: Pick<Rejected, 'format' | 'record'>): string {
  const b = r.record;
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  const looksJson = i < b.length && b[i] === 0x7b && isUtf8(b);
  if (r.format === 'flatbuffers' && looksJson) return ' — it looks like JSON: read this input with --format json';
  if (r.format === 'json' && b[i] !== 0x7b && b.length > 0 && !isUtf8(b)) return ' — it is not UTF-8 text (FlatBuffers? read this input with --format flatbuffers)';
  return '';
}

/** Where the router's rejected records go: malformed ones to --dead-letter (or a few warnings), late ones to --late-out. */
export interface RejectedRecords {
  (r: Rejected): void;
  /** Malformed records per side, and the first one's reason. */
  readonly dead: [number, number];
  readonly firstReason: [string, string];
}

export function rejectedRecords(lateSink: LineSink | null, deadSink: LineSink | null): RejectedRecords {
  let deadShown = 0;
  const dead: [number, number] = [0, 0], firstReason: [string, string] = ['', ''];
  const f = (r: Rejected) => {
    const side = SIDE_NAME[r.side];
    if (r.kind === 'dead') {
      if (dead[r.side]++ === 0) firstReason[r.side] = r.reason;
      if (deadSink) {
        // Text only when it is valid UTF-8: decoding other bytes would replace them with U+FFFD for good.
        const text = r.format === 'json' && isUtf8(r.record);
        const raw = Buffer.from(r.record).toString(text ? 'utf8' : 'base64');
        deadSink.write(Buffer.from(JSON.stringify({ side, origin: r.origin, position: r.position, error: r.reason, record: raw, encoding: text ? 'utf8' : 'base64' }) + '\n'));
      } else if (deadShown < FIRST_DEAD_LETTERS_SHOWN) {
        deadShown++;
        const where = r.format === 'json' ? `line ${r.position}` : `record ${r.position}`;
        log.say('warn', `joinery: malformed ${side} record at ${r.origin}:${r.position} (${where}): ${r.reason}${formatHint(r)}${deadShown === FIRST_DEAD_LETTERS_SHOWN ? ' (further ones counted only; use --dead-letter to keep them)' : ''}`, { code: 'E_INPUT' });
      }
    } else if (lateSink) {
      let rec: string;
      try {
        rec = r.format === 'json' ? Buffer.from(r.record).toString('utf8') : flatToJson(r.side === 0 ? 'Impression' : 'Play', r.record, 0, r.record.length);
      } catch { rec = JSON.stringify(Buffer.from(r.record).toString('base64')); }
      lateSink.write(Buffer.from(`{"side":"${side}","origin":${JSON.stringify(r.origin)},"position":${r.position},"ts":${r.ts},"watermark":${r.watermarkMs},"record":${rec}}\n`));
    }
  };
  return Object.assign(f, { dead, firstReason });
}

/**
 * At the end of a run: a side whose every record was malformed most likely has a flag wrong (a
 * misspelt --time, --key or --id, or the wrong --format), not bad data. The run still ends as
 * usual (bad input never stops it), but says so once, plainly, instead of leaving it to the count.
 */
export function warnAllRefused(read: readonly [number, number], rejected: RejectedRecords): void {
  for (const s of [0, 1] as const) {
    if (read[s] > 0 && rejected.dead[s] >= read[s]) {
      log.say('warn', `joinery: every ${SIDE_NAME[s]} record (${read[s]}) was malformed, so nothing of the ${SIDE_NAME[s]} input was joined; the first: ${rejected.firstReason[s]}. ` +
        `Check the ${SIDE_NAME[s]} input's field flags (--key, --time, --id or --${SIDE_NAME[s]}-key/-time/-id) and --format`, { code: 'E_INPUT', side: SIDE_NAME[s], records: read[s] });
    }
  }
}
