/**
 * `joinery gen --left-out FILE --right-out FILE [--format json|flatbuffers] [--events N] …`:
 * writes the generator's two streams in arrival order — impressions to the left file, plays to the
 * right file. json = NDJSON, one event per line; flatbuffers = records each preceded by a u32
 * little-endian length (FLAT_FRAME_PREFIX_BYTES), the framing the file source reads.
 *
 * Same options, same files (unless --rate > 0, which anchors event time to the wall clock).
 */
import * as fs from 'node:fs';
import { FlatBatchWriter } from './codec/flat-writer.js';
import type { Config } from './config/schema.js';
import { sameFile } from './config/paths.js';
import { JoineryError, usageError } from './core/errors.js';
import { log } from './core/log.js';
import { fmtCount, fmtRate } from './metrics/report.js';
import { Generator, genOptionsFrom } from './source/generator.js';
import type { Side } from './state/store.js';

/** Events generated per round when not pacing. */
const ROUND_EVENTS = 65_536;
/** Write once this much is buffered for a file … */
const FLUSH_BYTES = 1 << 20;
/** … or, when pacing (--rate), at least this often, so a reader tailing the file keeps up. */
const PACED_FLUSH_MS = 200;
const PACE_CHUNK_MS = 20;
const MIN_SLEEP_MS = 5;
const PROGRESS_TTY_MS = 250;
const PROGRESS_LOG_MS = 2000;

const SIDE_NAMES = ['left', 'right'] as const;

/** Events per nextJson call: short strings, written straight into the byte buffer (no big ropes). */
const JSON_SLICE_EVENTS = 256;

/** One output file with a write buffer. */
class Output {
  readonly fd: number;
  bytes = 0;
  /** FlatBuffers: size-prefixed records accumulate here. */
  readonly flat: FlatBatchWriter | null;
  /** NDJSON: text accumulates here. */
  private text: Buffer | null;
  private textLen = 0;

  constructor(readonly path: string, readonly side: Side, format: 'json' | 'flatbuffers') {
    try {
      this.fd = fs.openSync(path, 'w');
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `cannot open ${SIDE_NAMES[side]} output ${path}: ${(e as Error).message}`, { cause: e });
    }
    this.flat = format === 'flatbuffers' ? new FlatBatchWriter(true, 2 * FLUSH_BYTES, 16_384) : null;
    this.text = format === 'json' ? Buffer.allocUnsafe(2 * FLUSH_BYTES) : null;
  }

  get pending(): number {
    return this.flat ? this.flat.length : this.textLen;
  }

  /** Move everything queued for this side out of the generator into the buffer. Never generates: events it released for the other side, after that side took its share, were lost at the end of a run. */
  take(gen: Generator): void {
    if (this.flat) {
      gen.nextFlat(this.side, gen.queued(this.side), this.flat, false);
      if (this.flat.length >= FLUSH_BYTES) this.flush();
      return;
    }
    while (gen.queued(this.side) > 0) {
      const s = gen.nextJson(this.side, JSON_SLICE_EVENTS, false);
      const need = Buffer.byteLength(s);
      if (this.textLen + need > this.text!.length) {
        this.flush();
        if (need > this.text!.length) this.text = Buffer.allocUnsafe(need * 2);
      }
      this.textLen += this.text!.write(s, this.textLen, 'utf8');
      if (this.textLen >= FLUSH_BYTES) this.flush();
    }
  }

  flush(): void {
    try {
      if (this.flat) {
        if (this.flat.length > 0) this.writeAll(this.flat.data.subarray(0, this.flat.length));
        this.flat.reset();
      } else if (this.textLen > 0) {
        this.writeAll(this.text!.subarray(0, this.textLen));
        this.textLen = 0;
      }
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `cannot write ${SIDE_NAMES[this.side]} output ${this.path}: ${(e as Error).message}`, { cause: e });
    }
  }

  private writeAll(buf: Uint8Array): void {
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    this.bytes += buf.length;
  }

  close(): void {
    try { fs.closeSync(this.fd); } catch { /* closing twice or after a failed write */ }
  }
}

/**
 * A Parquet output file (hyparquet-writer): the events' fields as columns — strings as STRING,
 * integers as INT64, the event time `ts` as TIMESTAMP (milliseconds) — one row group per
 * PARQUET_ROW_GROUP rows. Rows come from the generator's JSON text (JSON.parse per event: the
 * generator is not the engine's hot path).
 */
const PARQUET_ROW_GROUP = 100_000;
class ParquetOutput {
  bytes = 0;
  private cols = new Map<string, unknown[]>();
  private rows = 0;
  private writer: { write(o: { columnData: unknown[]; rowGroupSize: number }): void; finish(): void } | null = null;
  private sink: { offset?: number } | null = null;

  constructor(readonly path: string, readonly side: Side, private readonly lib: typeof import('hyparquet-writer')) {
    try {
      fs.writeFileSync(path, '');
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `cannot open ${SIDE_NAMES[side]} output ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  get pending(): number { return this.rows; }

  take(gen: Generator): void {
    while (gen.queued(this.side) > 0) {
      const text = gen.nextJson(this.side, JSON_SLICE_EVENTS, false);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const o = JSON.parse(line) as Record<string, unknown>;
        for (const [k, v] of Object.entries(o)) {
          let c = this.cols.get(k);
          if (!c) { c = new Array(this.rows).fill(null); this.cols.set(k, c); }
          c.push(typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v);
        }
        this.rows++;
      }
      if (this.rows >= PARQUET_ROW_GROUP) this.flush();
    }
  }

  flush(): void {
    if (this.rows === 0) return;
    const columnData = [...this.cols.entries()].map(([name, data]) => ({
      name, data, type: name === 'ts' ? 'TIMESTAMP' as const : typeof data[0] === 'bigint' ? 'INT64' as const : 'STRING' as const, nullable: false,
    }));
    try {
      if (!this.writer) {
        const fileWriter = (this.lib as unknown as { fileWriter(p: string): { offset?: number } }).fileWriter;
        this.sink = fileWriter(this.path);
        const schema = this.lib.schemaFromColumnData({ columnData });
        this.writer = new this.lib.ParquetWriter({ writer: this.sink as never, schema }) as never;
      }
      this.writer!.write({ columnData, rowGroupSize: this.rows });
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `cannot write ${SIDE_NAMES[this.side]} output ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    this.cols = new Map();
    this.rows = 0;
  }

  close(): void {
    if (!this.writer) return;
    try {
      this.writer.finish();
      this.writer = null;
      this.bytes = fs.statSync(this.path).size;
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `cannot write ${SIDE_NAMES[this.side]} output ${this.path}: ${(e as Error).message}`, { cause: e });
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runGenCommand(cfg: Config): Promise<number> {
  if (!cfg.leftOut || !cfg.rightOut) throw usageError('gen needs both --left-out FILE and --right-out FILE');
  if (sameFile(cfg.leftOut, cfg.rightOut)) throw usageError(`--left-out ${cfg.leftOut} and --right-out ${cfg.rightOut} are the same file: give each stream its own`);
  const opts = genOptionsFrom(cfg);
  const gen = new Generator(opts);
  const parquet = (cfg.format as string) === 'parquet' || (cfg.format === undefined && /\.parquet$/i.test(cfg.leftOut) && /\.parquet$/i.test(cfg.rightOut));
  const format = parquet ? 'parquet' : cfg.format ?? 'json';
  if (parquet && opts.rate > 0) throw usageError('gen --format parquet writes whole row groups: it cannot be paced (--rate)');
  const lib = parquet ? await import('hyparquet-writer') : null;
  const open = (file: string, side: Side) => (lib ? new ParquetOutput(file, side, lib) : new Output(file, side, format as 'json' | 'flatbuffers'));
  const left = open(cfg.leftOut, 0);
  let right: Output | ParquetOutput;
  try {
    right = open(cfg.rightOut, 1);
  } catch (e) {
    left.close();
    throw e;
  }
  const outs: [Output | ParquetOutput, Output | ParquetOutput] = [left, right];

  const progressTty = !!process.stderr.isTTY;
  const progress = cfg.progress === 'on' || (cfg.progress === 'auto' && progressTty);
  const paced = opts.rate > 0;
  const round = paced ? Math.max(1, Math.min(ROUND_EVENTS, Math.round((opts.rate * PACE_CHUNK_MS) / 1000))) : ROUND_EVENTS;
  const t0 = performance.now();
  let lastProgress = t0, lastFlush = t0, progressShown = false;

  const showProgress = (now: number, final: boolean): void => {
    const s = gen.stats();
    const n = s.emitted[0] + s.emitted[1];
    const secs = (now - t0) / 1000;
    const line = `joinery gen: ${fmtCount(n)} events (left ${fmtCount(s.emitted[0])}, right ${fmtCount(s.emitted[1])}), ` +
      `${fmtRate(secs > 0 ? n / secs : 0)} events/s`;
    if (progressTty) log.progress(line, final);
    else if (!final) log.say('info', line);
    progressShown = true;
  };

  try {
    for (;;) {
      const now = performance.now();
      const elapsed = now - t0;
      if (gen.done || (opts.durationMs > 0 && elapsed >= opts.durationMs)) break;
      if (paced) {
        const aheadMs = (gen.released * 1000) / opts.rate - elapsed;
        if (aheadMs >= MIN_SLEEP_MS) {
          for (const o of outs) if (o.pending > 0) o.flush(); // a tailing reader sees everything due
          lastFlush = performance.now();
          await sleep(opts.durationMs > 0 ? Math.max(1, Math.min(aheadMs, opts.durationMs - elapsed)) : aheadMs);
          continue;
        }
      }
      gen.pump(round);
      for (const o of outs) o.take(gen);
      const after = performance.now();
      if (paced && after - lastFlush >= PACED_FLUSH_MS) {
        for (const o of outs) o.flush();
        lastFlush = after;
      }
      if (progress && after - lastProgress >= (progressTty ? PROGRESS_TTY_MS : PROGRESS_LOG_MS)) {
        showProgress(after, false);
        lastProgress = after;
      }
    }
    for (const o of outs) o.flush();
  } finally {
    for (const o of outs) o.close();
  }

  const end = performance.now();
  if (progress && progressShown && progressTty) showProgress(end, true);
  const s = gen.stats();
  const n = s.emitted[0] + s.emitted[1];
  const secs = (end - t0) / 1000;
  log.say('info',
    `joinery gen: ${fmtCount(n)} events in ${secs.toFixed(2)}s (${fmtRate(secs > 0 ? n / secs : 0)} events/s, ${format}, seed ${opts.seed}): ` +
    `left ${left.path} ${fmtCount(s.emitted[0])} impressions (${fmtCount(s.duplicates[0])} duplicates) ${fmtCount(left.bytes)} bytes; ` +
    `right ${right.path} ${fmtCount(s.emitted[1])} plays (${fmtCount(s.duplicates[1])} duplicates, ${fmtCount(s.orphanPlays)} orphans) ${fmtCount(right.bytes)} bytes`,
  );
  return 0;
}
