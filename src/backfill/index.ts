/**
 * `joinery backfill --left file:… --right file:… --from TIME --to TIME --out SINK [join flags]`:
 * the join of `run` over a bounded stretch of event time, read as fast as the machine allows.
 * It is `run` with bounded sources (src/backfill/bounded.ts, bounded-log.ts): the same router, alignment
 * (--max-drift), workers, checkpoints and exactly-once file output (and, from Kafka, run's Kafka
 * wiring: exactly-once Kafka output), plus a progress line in event time and, at the end, the cut
 * where a live job continues.
 *
 * What a backfill emits (README, "Verify and backfill"): every input is read up to its cut, its
 * first record with event time ≥ --to; records before --from are not joined. Emitted: each pair
 * of two records before the cuts, and (outer kinds) each unmatched row of a record before the cut
 * whose expiry time is < W_cut, the watermark at the cuts. Everything else — pairs with a record
 * after a cut, unmatched rows expiring at or after W_cut — is what `run --rebuild-from TIME
 * --resume-at CUT` emits (TIME ≤ W_cut − (upper − lower)), so the two outputs together are one
 * run's.
 */
import type { Extractor } from '../codec/json.js';
import { JsonExtractor } from '../codec/json.js';
import { FlatExtractor } from '../codec/flat.js';
import { fileStartOf, lockCheckpoints, openCheckpoints } from '../checkpoint/index.js';
import type { Config } from '../config/schema.js';
import { endpointsOf } from '../config/endpoints.js';
import { lockDir } from '../core/dirlock.js';
import { JoineryError } from '../core/errors.js';
import { log } from '../core/log.js';
import { claimOutputPaths } from '../config/paths.js';
import { formatDurationMs } from '../core/units.js';
import { exitCodeOf, runEngine, type EngineOptions, type Summary } from '../engine.js';
import { fmtCount, fmtRate, type MetricsHub } from '../metrics/report.js';
import { parseTime } from '../core/units.js';
import { openFileInput, sideFieldsOf } from '../source/open.js';
import type { Side } from '../state/store.js';
import { BoundedSource } from './bounded.js';
import { BoundedLogSource } from './bounded-log.js';

export interface BackfillSummary {
  fromMs: number | null;
  toMs: number;
  /**
   * Where each input was cut, the --resume-at of the job that continues: byte offset (NDJSON,
   * FlatBuffers) or row index (Parquet) per file; for Kafka the next offset per partition (committed
   * for --group). The key `kafka` is the summary's documented JSON (--json, the `finished` record).
   */
  cut: { left: number; right: number; unit: ['byte' | 'row', 'byte' | 'row'] } | { kafka: Array<{ topic: string; partition: number; offset: number }> };
  /** Watermark at the cut (W_cut), and the latest --rebuild-from for the continuing job: W_cut − (max(upper, 0) − min(lower, 0)). */
  cutWatermarkMs: number | null;
  rebuildFromMs: number | null;
  /** Records not joined for lying before --from. */
  skipped: number;
  /** Event time covered (first to last event before the cuts) per second of wall time. */
  speedUp: number;
  /** Most bytes the join buffer held (all workers), sampled every second. */
  peakStateBytes: number;
  /** Not reached: the backfill stopped (a signal) before its cuts; run it again to resume (with --checkpoint-dir) or start over. */
  complete: boolean;
}

function extractorFor(cfg: Config, side: Side, format: 'json' | 'flatbuffers'): Extractor {
  const f = sideFieldsOf(cfg, side);
  if (format === 'json') return new JsonExtractor(f.key, f.time, f.id);
  try {
    return new FlatExtractor(side === 0 ? 'Impression' : 'Play', f.key, f.time, f.id);
  } catch (e) {
    throw new JoineryError('E_USAGE', `--${side === 0 ? 'left' : 'right'} (FlatBuffers): ${(e as Error).message}`);
  }
}

const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

/** The opened inputs: two bounded files, or one bounded log source over both sides' partitions (Kafka: both topics). */
type Inputs =
  | { kind: 'files'; sources: [BoundedSource, BoundedSource]; units: ['byte' | 'row', 'byte' | 'row'] }
  | { kind: 'log'; sources: [BoundedLogSource]; cutNotice: (rebuildFromMs: number | null) => { where: string; next: string } };

export async function runBackfill(cfg: Config, progress: boolean): Promise<number> {
  claimOutputPaths(cfg);
  if (cfg.state !== 'memory') lockDir(cfg.stateDir, '--state-dir');
  const fromMs = cfg.from === 'earliest' ? -Infinity : parseTime(cfg.from, 'from');
  const toMs = parseTime(cfg.to!, 'to');
  log.info('joinery backfill starting', {
    left: cfg.left, right: cfg.right, from: Number.isFinite(fromMs) ? iso(fromMs) : 'earliest', to: iso(toMs), join: cfg.join,
    lowerMs: cfg.lowerMs, upperMs: cfg.upperMs, key: cfg.key, workers: cfg.workers, state: cfg.state, out: cfg.out,
  });
  // A partitioned log (the only one: Kafka) is opened through src/kafka/backfill.ts, loaded only then.
  const logInputs = endpointsOf(cfg).left?.kind === 'kafka' ? await import('../kafka/backfill.js') : null;
  // As run: a log input may name the checkpoint to resume from (Kafka: the output transaction's).
  const committedId = logInputs && cfg.checkpointDir ? await logInputs.backfillCheckpointId(cfg) : undefined;
  if (cfg.checkpointDir) lockCheckpoints(cfg.checkpointDir);
  const ck = await openCheckpoints(cfg, committedId);
  const closers: Array<() => Promise<void>> = [];
  if (ck) closers.push(() => ck.pool.close());
  let inputs: Inputs;
  let formats: ['json' | 'flatbuffers', 'json' | 'flatbuffers'];
  const extra: Partial<EngineOptions> = {};
  try {
    if (logInputs) {
      const format = cfg.format ?? 'flatbuffers';
      formats = [format, format];
      const k = await logInputs.openKafkaBackfill(cfg, fromMs, ck);
      closers.push(() => k.close());
      // without checkpoints the cuts are committed on close; with them the last checkpoint commits them
      const source = new BoundedLogSource(k.input, [extractorFor(cfg, 0, format), extractorFor(cfg, 1, format)], fromMs, toMs, k.ranges, !ck);
      source.start();
      inputs = { kind: 'log', sources: [source], cutNotice: (rebuildFromMs) => logInputs.kafkaCutNotice(cfg, source.cuts(), rebuildFromMs) };
      Object.assign(extra, k.engine); // sinks, and the PositionsPort: commits, a full ring pausing the partitions
    } else {
      const { left, right } = endpointsOf(cfg);
      if (left?.kind !== 'file' || right?.kind !== 'file') throw new JoineryError('E_INTERNAL', 'backfill: --left and --right must be files or Kafka topics');
      const l = openFileInput(cfg, left, 0, fileStartOf(ck, left.spec, 0));
      closers.push(() => l.source.close());
      const r = openFileInput(cfg, right, 1, fileStartOf(ck, right.spec, 1));
      closers.push(() => r.source.close());
      formats = [l.format, r.format];
      inputs = {
        kind: 'files', units: [l.fileFormat === 'parquet' ? 'row' : 'byte', r.fileFormat === 'parquet' ? 'row' : 'byte'],
        sources: [
          new BoundedSource(l.source, extractorFor(cfg, 0, l.format), fromMs, toMs),
          new BoundedSource(r.source, extractorFor(cfg, 1, r.format), fromMs, toMs),
        ],
      };
    }
  } catch (e) {
    for (const c of closers) await c().catch(() => {});
    throw e;
  }
  const restoredParts = ck?.restored?.manifest.router.partitions;
  if (restoredParts) {
    if (inputs.kind === 'log') inputs.sources[0].restoreMaxTs(restoredParts);
    else for (const [side, b] of inputs.sources.entries()) for (const p of restoredParts) if (p.side === side) b.restoreMaxTs(p.maxTsMs);
  }
  const all: Array<BoundedSource | BoundedLogSource> = inputs.sources;
  log.info('sources opened', { sources: all.map((x) => x.name), formats });

  const t0 = performance.now();
  const tty = !!process.stderr.isTTY;
  let shown = false;
  /** Event time reached: the slowest input's (a log: the slowest partition's) largest so far. */
  const eventTimeAt = () => inputs.kind === 'log' ? inputs.sources[0].minMaxTsMs()
    : Math.min(...inputs.sources.map((b) => (b.reached ? Infinity : b.maxTsMs)));
  const startTs = () => Number.isFinite(fromMs) ? fromMs : Math.min(...all.map((b) => (Number.isNaN(b.firstTsMs) ? Infinity : b.firstTsMs)));
  let peakStateBytes = 0;
  const onTick = (hub: MetricsHub) => {
    peakStateBytes = Math.max(peakStateBytes, hub.sum('stateBytes'));
    if (!progress) return;
    const secs = (performance.now() - t0) / 1000;
    const at = eventTimeAt(), from = startTs();
    const events = all.reduce((n, b) => n + b.routed + b.skipped, 0);
    const done = Number.isFinite(at) && Number.isFinite(from) ? Math.max(0, Math.min(1, (at - from) / (toMs - from))) : 0;
    const etaMs = done > 0 ? (secs * 1000 * (1 - done)) / done : NaN;
    const line = `backfill: event time ${Number.isFinite(at) ? iso(at) : '-'} (${(done * 100).toFixed(1)}% to ${iso(toMs)}), ` +
      `${fmtRate(secs > 0 ? events / secs : 0)} events/s, ${fmtCount(hub.sum('stateEntries'))} buffered, ETA ${Number.isFinite(etaMs) ? formatDurationMs(Math.round(etaMs / 1000) * 1000) : '-'}`;
    if (log.isJson || !tty) log.info(line, { progress: true, eventTimeMs: Number.isFinite(at) ? at : null, done, etaMs: Number.isFinite(etaMs) ? Math.round(etaMs) : null });
    else { log.progress(line); shown = true; }
  };

  let s: Summary;
  try {
    s = await runEngine(cfg, { sources: all, formats, progress: false, printSummary: true, checkpoints: ck, handleSignals: true, bounded: true, onTick, ...extra });
  } finally {
    if (shown) log.progress('');
  }
  const complete = all.every((b) => b.reached) && !s.stopped;
  const span = Math.max(...all.map((b) => b.maxTsMs)) - startTs();
  const lastBeforeCut = inputs.kind === 'log' ? inputs.sources[0].minMaxTsMs() : Math.min(...inputs.sources.map((b) => b.maxTsMs));
  const wCut = complete && Number.isFinite(lastBeforeCut) ? lastBeforeCut - cfg.maxDelayMs : null;
  const windowMs = Math.max(cfg.upperMs, 0) - Math.min(cfg.lowerMs, 0);
  const summary: BackfillSummary = {
    fromMs: Number.isFinite(fromMs) ? fromMs : null, toMs,
    cut: inputs.kind === 'log' ? { kafka: inputs.sources[0].cuts() } : { left: inputs.sources[0].cutPosition, right: inputs.sources[1].cutPosition, unit: inputs.units },
    cutWatermarkMs: wCut, rebuildFromMs: wCut === null ? null : wCut - windowMs,
    skipped: all.reduce((n, b) => n + b.skipped, 0),
    speedUp: Number.isFinite(span) && s.elapsedMs > 0 ? span / s.elapsedMs : 0,
    peakStateBytes,
    complete,
  };
  const result = { ...s, backfill: summary };
  if (complete) {
    const { where, next } = inputs.kind === 'log' ? inputs.cutNotice(summary.rebuildFromMs) : {
      where: `${inputs.units[0]} ${inputs.sources[0].cutPosition} of ${cfg.left} and ${inputs.units[1]} ${inputs.sources[1].cutPosition} of ${cfg.right}`,
      next: `joinery run … --rebuild-from ${summary.rebuildFromMs} --resume-at ${inputs.sources[0].cutPosition},${inputs.sources[1].cutPosition}`,
    };
    log.say('info', `joinery backfill: cut at ${where}` +
      (wCut !== null ? ` (watermark there ${iso(wCut)}); a live job continues with: ${next}` : '') +
      `; ${formatDurationMs(Math.max(0, Math.round(span)))} of event time ${summary.speedUp.toFixed(1)}× faster than real time`);
  } else {
    log.say('warn', 'joinery backfill: stopped before the cut of every input: its output ends at the last checkpoint; run the same command again to go on (with --checkpoint-dir), or start over');
  }
  if (log.isJson) log.info('finished', { command: cfg.command, ...result });
  if (cfg.json) process.stdout.write(JSON.stringify(result) + '\n');
  return exitCodeOf(s);
}
