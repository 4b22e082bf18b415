/**
 * `joinery verify`: recompute the interval join of two inputs as a batch and compare it with a
 * joined output as a multiset of rows (key, leftId, leftTs, rightId, rightTs; unmatched rows of
 * outer kinds with null for the absent side). Exit 0 when equal, 1 when not.
 *
 * Out of core, in two passes over threads (worker.ts): the scan splits each NDJSON file into one
 * byte range per thread and writes every event and output row, as a compact record, into a key-hash
 * partition (spill.ts: in memory while --max-memory allows, else spill files); then each partition
 * is joined and compared on its own (partition.ts), so memory holds one partition per thread.
 * Kafka sources are read by the main thread meanwhile.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { decodeJoined } from '../codec/flat-build.js';
import type { Config } from '../config/schema.js';
import { endpointsOf, type SinkEndpoint, type SourceEndpoint } from '../config/endpoints.js';
import { JoineryError, type ErrorCode } from '../core/errors.js';
import { fileFormatOf } from '../source/open.js';
import { log } from '../core/log.js';
import { onStopSignal } from '../core/signals.js';
import { formatBytes } from '../core/units.js';
import type { ChunkBase } from './batch.js';
import { whereOf } from './batch.js';
import { whereFields, type Example, type MissingCause } from './explain.js';
import { readWholeTopic } from '../kafka/verify.js';
import type { PartitionJob, PartitionResult, Ranked } from './partition.js';
import { Progress } from './progress.js';
import { formatReport } from './report.js';
import { maxFrameBytesFor } from '../ring/ring.js';
import { EventScanner, isJsonValue, newStats, RECORD_BYTES_PER_ROW, RowScanner, type ChunkStats, type Format, type SideFields } from './scan.js';
import { Budget, NULL_LEN, PartitionWriter, type Segment } from './spill.js';
import type { ScanDone, ScanJob, ScanTask } from './worker.js';

export const EXIT_DIFFERENT = 1;

export interface InputReport { file: string; records: number; deadLetters: number; redeliveries: number; lateCandidates: number; joinable: number }

export interface VerifyReport {
  equal: boolean;
  join: { kind: string; lowerMs: number; upperMs: number; maxDelayMs: number };
  expected: number; got: number; missing: number; extra: number; duplicated: number; unreadable: number;
  expectedPairs: number; expectedUnmatchedLeft: number; expectedUnmatchedRight: number;
  missingCauses: Record<MissingCause, number>;
  inputs: { left: InputReport; right: InputReport; output: { source: string; rows: number } };
  examples: { missing: Example[]; extra: Example[]; duplicated: Example[]; unreadable: Array<{ outputLine?: number; outputRecord?: string; reason: string }> };
  elapsedMs: number; inputEventsPerSec: number; cpuUsPerEvent: number;
  /** Wall time per phase (scan: reading and partitioning; join: joining and comparing the partitions). */
  phasesMs: Record<string, number>;
  /** How the data was held: partitions, bytes written to spill files, the memory budget, threads. */
  spill: { partitions: number; spilledBytes: number; maxMemoryBytes: number; threads: number; largestPartitionBytes: number };
}

/** Compact record bytes per byte of a source, generously (NDJSON events ≈ 0.5, output rows ≈ 0.25). */
const RECORD_BYTES_PER_SOURCE_BYTE = 0.6;
/** A partition being joined takes about this many times its record bytes (columns, key and row tables). */
const JOIN_BYTES_PER_RECORD_BYTE = 3;
const MAX_PARTITION_BITS = 12;

interface Src {
  flag: 'left' | 'right' | 'output'; kind: 'file' | 'kafka'; name: string; format: Format; sizeBytes: number;
  /** Compact record bytes it is expected to make (sizes the partitions). */
  recordBytes: number;
  /** Parquet: the first row of each row group, then the row count. */
  rowGroups?: readonly number[];
}

async function sourceOf(ep: SourceEndpoint | SinkEndpoint, flag: Src['flag'], cfg: Config): Promise<Src> {
  if (ep.kind === 'kafka') {
    return { flag, kind: 'kafka', name: ep.topic, format: flag === 'output' ? 'json' : (cfg.format as 'json' | 'flatbuffers' | undefined) ?? 'flatbuffers', sizeBytes: 0, recordBytes: 0 };
  }
  const f = ep.kind === 'file' ? ep.path : ep.spec;
  let sizeBytes: number;
  try {
    fs.accessSync(f, fs.constants.R_OK);
    const st = fs.statSync(f);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
    sizeBytes = st.size;
  } catch (e) {
    throw new JoineryError('E_INPUT', `cannot read --${flag} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const format: Format = flag === 'output' ? 'json' : fileFormatOf(f, cfg.format);
  if (format !== 'parquet') return { flag, kind: 'file', name: f, format, sizeBytes, recordBytes: sizeBytes * RECORD_BYTES_PER_SOURCE_BYTE };
  // the footer: the row groups to split the file at, and the columns checked before any thread starts
  const side = flag === 'left' ? 0 : 1;
  const { ParquetSource } = await import('../source/parquet.js');
  const pq = new ParquetSource(f, side, fieldsOf(cfg, side));
  const rowGroups = pq.rowGroupStarts();
  void pq.close();
  return { flag, kind: 'file', name: f, format, sizeBytes, recordBytes: rowGroups[rowGroups.length - 1] * RECORD_BYTES_PER_ROW, rowGroups };
}

/** Byte offsets splitting an NDJSON file into n ranges at line starts. */
function lineSplits(file: string, size: number, n: number): number[] {
  const cuts = [0];
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(64 * 1024);
  try {
    for (let k = 1; k < n; k++) {
      let at = Math.max(cuts[k - 1], Math.floor((size * k) / n));
      for (;;) {
        const got = fs.readSync(fd, buf, 0, buf.length, at);
        if (got === 0) { at = size; break; }
        const nl = buf.subarray(0, got).indexOf(10);
        if (nl >= 0) { at += nl + 1; break; }
        at += got;
      }
      cuts.push(Math.min(at, size));
    }
  } finally {
    fs.closeSync(fd);
  }
  cuts.push(size);
  return cuts;
}

function partitionBits(srcs: Src[], maxMemoryBytes: number, threads: number): number {
  const est = srcs.reduce((s, x) => s + x.recordBytes, 0);
  const perPartition = maxMemoryBytes / 2 / threads;
  let bits = Math.ceil(Math.log2(Math.max(1, (est * JOIN_BYTES_PER_RECORD_BYTE) / perPartition)));
  // many partitions per thread even when all fits: they balance the threads, and each join's tables stay in cache (−20% CPU from 4 to 32 per thread)
  bits = Math.max(bits, Math.ceil(Math.log2(32 * threads)));
  // a Kafka topic's size is not known up front: assume it is large
  if (srcs.some((x) => x.kind === 'kafka')) bits = Math.max(bits, 6);
  return Math.min(bits, MAX_PARTITION_BITS);
}

/** Workers of one verify, and their end. */
class Pool {
  readonly workers: Worker[] = [];
  constructor(n: number) {
    for (let i = 0; i < n; i++) this.workers.push(new Worker(new URL('./worker.js', import.meta.url)));
  }
  /** Sends a message and waits for its one answer; a worker error rejects. */
  ask<T>(i: number, msg: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
    const w = this.workers[i];
    return new Promise<T>((resolve, reject) => {
      const onExit = (code: number) => reject(new JoineryError('E_WORKER', `verify thread ${i} ended unexpectedly (exit code ${code})`));
      const onError = (e: Error) => { w.off('exit', onExit); reject(new JoineryError('E_WORKER', `verify thread ${i} failed: ${e.message}`)); };
      w.once('message', (m: { type: string; code?: string; message?: string }) => {
        w.off('exit', onExit); w.off('error', onError);
        if (m.type === 'error') reject(m.code ? new JoineryError(m.code as ErrorCode, m.message!) : new JoineryError('E_WORKER', `verify thread ${i} failed: ${m.message}`));
        else resolve(m as T);
      });
      w.once('exit', onExit);
      w.once('error', onError);
      w.postMessage(msg, transfer);
    });
  }
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Removes the spill directory on SIGINT/SIGTERM, then ends as the signal would (128 + its number). */
function onStopSignals(cleanup: () => Promise<void>): () => void {
  return onStopSignal((sig) => { void cleanup().finally(() => process.exit(128 + os.constants.signals[sig])); });
}

const SPILL_PREFIX = 'joinery-verify-';

/** Spill directories of verify processes that are gone (kill -9, a crash): named by their pid. */
function removeStaleSpills(root: string): void {
  let names: string[];
  try { names = fs.readdirSync(root); } catch { return; }
  for (const name of names) {
    const m = /^joinery-verify-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // alive (or another user's): not ours to remove
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    try { fs.rmSync(path.join(root, name), { recursive: true, force: true }); } catch { /* best effort */ }
  }
}

function fieldsOf(cfg: Config, side: 0 | 1): SideFields {
  return {
    key: (side === 0 ? cfg.leftKey : cfg.rightKey) ?? cfg.key,
    time: (side === 0 ? cfg.leftTime : cfg.rightTime) ?? cfg.time,
    id: (side === 0 ? cfg.leftId : cfg.rightId) ?? cfg.id,
    maxEventBytes: maxFrameBytesFor(cfg.ringSizeBytes),
  };
}

/** Reads a Kafka source in the main thread into its own partition writer (chunk = Kafka partition). */
async function scanKafka(cfg: Config, src: Src, source: 0 | 1 | 2, w: PartitionWriter, bits: number, progress: Float64Array, slot: number): Promise<ChunkStats[]> {
  const stats = new Map<number, ChunkStats>();
  const statsOf = (p: number) => { let s = stats.get(p); if (!s) { s = newStats(p); stats.set(p, s); } return s; };
  const count = (p: number, v: Buffer | null) => { const st = statsOf(p); st.positions++; progress[2 * slot] += v?.length ?? 0; progress[2 * slot + 1]++; return st; };
  if (source < 2) {
    const es = new EventScanner(source as 0 | 1, src.format, fieldsOf(cfg, source as 0 | 1), w, bits);
    await readWholeTopic(cfg.brokers!, src.name, src.flag, (p, offset, v) => {
      const st = count(p, v);
      if (v === null || v.length === 0) { st.read++; st.dead++; return; }
      es.record(new Uint8Array(v.buffer, v.byteOffset, v.length), 0, v.length, offset, st);
    });
  } else {
    const rs = new RowScanner(w, bits, cfg.examples);
    await readWholeTopic(cfg.brokers!, src.name, src.flag, (p, offset, v) => {
      const st = count(p, v);
      if (v === null || v.length === 0) { rs.bad(offset, 'an empty record value', st); return; }
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.length);
      if (isJsonValue(v)) { rs.json(v as Parameters<RowScanner['json']>[0], bytes, 0, v.length, offset, st); return; }
      let d;
      try {
        d = decodeJoined(bytes);
      } catch (e) {
        rs.bad(offset, `neither JSON nor a FlatBuffers JoinedRecord: ${(e as Error).message}`, st); return;
      }
      const kb = Buffer.from(d.key, 'utf8'), lb = Buffer.from(d.leftId ?? '', 'utf8'), ib = Buffer.concat([lb, Buffer.from(d.rightId ?? '', 'utf8')]);
      rs.row(kb, 0, kb.length, ib, 0, d.leftId === null ? NULL_LEN : lb.length, lb.length, d.rightId === null ? NULL_LEN : ib.length - lb.length,
        d.leftTs, d.rightTs, offset, st);
    });
  }
  return [...stats.values()];
}

function chunkBase(partitioned: boolean, chunks: ChunkStats[]): ChunkBase {
  const base: ChunkBase = { partitioned, lineBase: [], maxBase: [] };
  if (partitioned) return base;
  const sorted = [...chunks].sort((a, b) => a.chunk - b.chunk);
  let line = 0, max = -Infinity;
  for (const c of sorted) {
    base.lineBase[c.chunk] = line; base.maxBase[c.chunk] = max;
    line += c.positions;
    if (c.maxTs > max) max = c.maxTs;
  }
  return base;
}

function firstN(lists: Ranked[][], n: number): Example[] {
  const all = lists.flat();
  all.sort((a, b) => a.ord[0] - b.ord[0] || a.ord[1] - b.ord[1]);
  return all.slice(0, n).map((r) => r.ex);
}

export async function verify(cfg: Config, progressOn: boolean): Promise<VerifyReport> {
  const ep = endpointsOf(cfg);
  const srcs = [await sourceOf(ep.left!, 'left', cfg), await sourceOf(ep.right!, 'right', cfg), await sourceOf(ep.output!, 'output', cfg)];
  const threads = cfg.verifyThreads, budget = cfg.maxMemoryBytes;
  const bits = partitionBits(srcs, budget, threads), parts = 1 << bits;
  const cpu0 = process.cpuUsage();
  const kafkaSources = srcs.filter((s) => s.kind === 'kafka').length;
  const writers = threads + (kafkaSources > 0 ? 1 : 0);
  const scanShare = Math.floor(budget / 2 / writers);
  const progressSab = new SharedArrayBuffer(8 * 2 * writers);
  const progressArr = new Float64Array(progressSab);
  const totalBytes = srcs.reduce((s, x) => s + x.sizeBytes, 0);
  let partsDone = 0;
  const sample = (): [number, number, number] => {
    let bytes = 0, records = 0;
    for (let i = 0; i < writers; i++) { bytes += progressArr[2 * i]; records += progressArr[2 * i + 1]; }
    return progress.phase === 'join' ? [partsDone, parts, records] : [bytes, totalBytes, records];
  };
  const progress = new Progress(progressOn, sample);
  const spillRoot = cfg.spillDir ?? os.tmpdir();
  removeStaleSpills(spillRoot);
  const dir = fs.mkdtempSync(path.join(spillRoot, `${SPILL_PREFIX}${process.pid}-`));
  const removeDir = () => { try { fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); } catch { /* best effort */ } };
  const pool = new Pool(threads);
  const offSignals = onStopSignals(async () => {
    // the threads may still be writing: stop them before the directory goes (within a second)
    await Promise.race([pool.close(), new Promise((r) => setTimeout(r, 1000))]);
    removeDir();
  });
  try {
    progress.setPhase('scan');
    // each thread scans its byte range of every NDJSON file (a FlatBuffers file whole, on one thread)
    const tasks: ScanTask[][] = Array.from({ length: threads }, () => []);
    srcs.forEach((s, source) => {
      if (s.kind !== 'file') return;
      if (s.format === 'parquet') {
        // whole row groups, as evenly as they come, one chunk per thread (chunks in row order)
        const g = s.rowGroups!, rows = g[g.length - 1], bytesPerRow = rows > 0 ? s.sizeBytes / rows : 0;
        let at = 0;
        for (let t = 0; t < threads && at < g.length - 1; t++) {
          let end = at + 1;
          while (end < g.length - 1 && g[end] < (rows * (t + 1)) / threads) end++;
          if (t === threads - 1) end = g.length - 1;
          tasks[t].push({ source: source as 0 | 1 | 2, file: s.name, format: s.format, fromByte: g[at], toByte: g[end], chunk: t, bytesPerRow });
          at = end;
        }
        return;
      }
      if (s.format === 'flatbuffers') { tasks[source % threads].push({ source: source as 0 | 1 | 2, file: s.name, format: s.format, fromByte: 0, toByte: s.sizeBytes, chunk: 0 }); return; }
      const cuts = lineSplits(s.name, s.sizeBytes, threads);
      for (let t = 0; t < threads; t++) tasks[t].push({ source: source as 0 | 1 | 2, file: s.name, format: s.format, fromByte: cuts[t], toByte: cuts[t + 1], chunk: t });
    });
    const fields: [SideFields, SideFields] = [fieldsOf(cfg, 0), fieldsOf(cfg, 1)];
    const scans = tasks.map((list, t) => pool.ask<ScanDone>(t, {
      type: 'scan', dir, bits, budgetBytes: scanShare, writer: `w${t}`, fields, examples: cfg.examples, tasks: list, progress: progressSab, slot: t,
    } satisfies ScanJob));
    // awaited below; one failing ends verify, and the others then fail as their threads are stopped
    for (const p of scans) p.catch(() => {});
    const mainBudget = new Budget(scanShare);
    const kafkaWriters: Array<PartitionWriter | null> = [null, null, null];
    const kafkaStats: ChunkStats[][] = [[], [], []];
    for (let source = 0; source < 3; source++) {
      const s = srcs[source];
      if (s.kind !== 'kafka') continue;
      const w = kafkaWriters[source] = new PartitionWriter(dir, `s${source}-m`, parts, mainBudget);
      kafkaStats[source] = await scanKafka(cfg, s, source as 0 | 1 | 2, w, bits, progressArr, threads);
    }
    const done = await Promise.all(scans);
    // chunk statistics and segments per source, in chunk order (thread t read chunk t; Kafka: the main thread)
    const stats: ChunkStats[][] = [[], [], []];
    for (const d of done) for (const s of d.stats) stats[s.source].push(s.stats);
    for (let source = 0; source < 3; source++) stats[source].push(...kafkaStats[source]);
    const bases = [0, 1, 2].map((s) => chunkBase(srcs[s].kind === 'kafka', stats[s])) as [ChunkBase, ChunkBase, ChunkBase];
    const segsOf = (p: number, source: number): Segment[] => {
      const out: Segment[] = [];
      for (const d of done) out.push(...(d.segments[source]?.[p] ?? []));
      if (kafkaWriters[source]) out.push(...kafkaWriters[source]!.segments(p));
      return out;
    };
    let spilledBytes = done.reduce((s, d) => s + d.spilledBytes, 0);
    for (const w of kafkaWriters) if (w) spilledBytes += w.spilledBytes();

    progress.setPhase('join');
    const spec = { kind: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs, maxDelayMs: cfg.maxDelayMs, examples: cfg.examples };
    const results: PartitionResult[] = [];
    let next = 0;
    const loops = pool.workers.map(async (_, t) => {
      while (next < parts) {
        const p = next++;
        const segs = [segsOf(p, 0), segsOf(p, 1), segsOf(p, 2)] as PartitionJob['segs'];
        const transfer = segs.flat().flatMap((s) => (s.buf ? [s.buf] : []));
        const r = await pool.ask<{ result: PartitionResult }>(t, { type: 'join', job: { p, segs, bases, spec } satisfies PartitionJob }, transfer);
        results.push(r.result);
        partsDone++;
      }
    });
    for (const l of loops) l.catch(() => {});
    await Promise.all(loops);
    progress.done();
    const largest = results.reduce((m, r) => (r.bytes > m.bytes ? r : m), results[0]);
    const shareBytes = budget / 2 / threads;
    if (largest && largest.bytes * JOIN_BYTES_PER_RECORD_BYTE > shareBytes) {
      log.warn(`verify: partition ${largest.p} of ${parts} held ${(largest.bytes / 1048576).toFixed(1)} MiB of records, more than its share of --max-memory ${formatBytes(budget)} allows` +
        ' (about a third of --max-memory / 2 / --threads): a key hotter than the rest, or a Kafka topic larger than assumed; memory went over the budget for it', { code: 'W_VERIFY_MEMORY' });
    }

    const sum = (f: (r: PartitionResult) => number) => results.reduce((s, r) => s + f(r), 0);
    const missingCauses: Record<MissingCause, number> = { late: 0, 'duplicate-id': 0, unknown: 0 };
    for (const r of results) for (const k of Object.keys(missingCauses) as MissingCause[]) missingCauses[k] += r.missingCauses[k];
    const inputReport = (side: 0 | 1): InputReport => {
      const st = stats[side], events = sum((r) => r.events[side]), redeliveries = sum((r) => r.redeliveries[side]);
      return {
        file: srcs[side].kind === 'kafka' ? `kafka:${srcs[side].name}` : srcs[side].name,
        records: st.reduce((s, c) => s + c.read, 0), deadLetters: st.reduce((s, c) => s + c.dead, 0),
        redeliveries, lateCandidates: sum((r) => r.lateCandidates[side]), joinable: events - redeliveries,
      };
    };
    const left = inputReport(0), right = inputReport(1);
    const outStats = stats[2];
    const unreadable = outStats.reduce((s, c) => s + c.unreadable, 0);
    const unreadableRanked: Ranked[] = outStats.flatMap((c) => c.unreadableExamples).map((u) => ({
      ord: [bases[2].partitioned ? u.chunk * 2 ** 40 + u.pos : bases[2].lineBase[u.chunk] + u.pos, 0],
      ex: { ...whereFields(whereOf(bases[2], u.chunk, u.pos)), reason: u.reason } as unknown as Example,
    }));
    const rows = sum((r) => r.rows), missing = sum((r) => r.missing), extra = sum((r) => r.extra), duplicated = sum((r) => r.duplicated);
    const pairs = sum((r) => r.pairs), ul = sum((r) => r.unmatchedLeft), ur = sum((r) => r.unmatchedRight);
    const elapsedMs = progress.elapsedMs();
    const cpu = process.cpuUsage(cpu0);
    const inputEvents = left.records + right.records;
    return {
      equal: missing === 0 && extra === 0 && duplicated === 0 && unreadable === 0,
      join: { kind: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs, maxDelayMs: cfg.maxDelayMs },
      expected: pairs + ul + ur, got: rows, missing, extra, duplicated, unreadable,
      expectedPairs: pairs, expectedUnmatchedLeft: ul, expectedUnmatchedRight: ur,
      missingCauses,
      inputs: { left, right, output: { source: cfg.output!, rows } },
      examples: {
        missing: firstN(results.map((r) => r.examples.missing), cfg.examples),
        extra: firstN(results.map((r) => r.examples.extra), cfg.examples),
        duplicated: firstN(results.map((r) => r.examples.duplicated), cfg.examples),
        unreadable: firstN([unreadableRanked], cfg.examples) as unknown as VerifyReport['examples']['unreadable'],
      },
      elapsedMs: Math.round(elapsedMs),
      inputEventsPerSec: Math.round(inputEvents / (elapsedMs / 1000)),
      cpuUsPerEvent: inputEvents === 0 ? 0 : Number(((cpu.user + cpu.system) / inputEvents).toFixed(2)),
      phasesMs: progress.phasesMs,
      spill: { partitions: parts, spilledBytes, maxMemoryBytes: budget, threads, largestPartitionBytes: results.reduce((m, r) => Math.max(m, r.bytes), 0) },
    };
  } finally {
    progress.done();
    offSignals();
    await pool.close();
    removeDir();
  }
}

/** The command: report on stdout (text, or one JSON object with --json), exit 0 equal / 1 different. */
export async function runVerify(cfg: Config, progressOn: boolean): Promise<number> {
  const r = await verify(cfg, progressOn);
  process.stdout.write(cfg.json ? JSON.stringify(r) + '\n' : formatReport(r));
  return r.equal ? 0 : EXIT_DIFFERENT;
}
