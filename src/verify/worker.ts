/**
 * A thread of `joinery verify`: scans its chunks of the files into partitioned spill records, then
 * joins the partitions it is given (scan.ts, partition.ts). The main thread hands out the work and
 * reads Kafka sources itself.
 */
import { parentPort } from 'node:worker_threads';
import type { Side } from '../state/store.js';
import { joinPartition, type PartitionJob } from './partition.js';
import { EventScanner, newStats, RECORD_BYTES_PER_ROW, RowScanner, scanFileChunk, scanParquetChunk, type ChunkStats, type Format, type SideFields } from './scan.js';
import { Budget, PartitionWriter, type Segment } from './spill.js';

/**
 * A range of a file to scan: source 0 left, 1 right, 2 output. Bytes, or for Parquet rows (whole
 * row groups; `bytesPerRow` then converts rows into file bytes for the progress bar).
 */
export interface ScanTask { source: 0 | 1 | 2; file: string; format: Format; fromByte: number; toByte: number; chunk: number; bytesPerRow?: number }

export interface ScanJob {
  type: 'scan'; dir: string; bits: number; budgetBytes: number; writer: string; fields: [SideFields, SideFields]; examples: number;
  tasks: ScanTask[]; progress: SharedArrayBuffer; slot: number;
}

export interface ScanDone {
  type: 'scanned';
  stats: Array<{ source: number; stats: ChunkStats }>;
  /** Per source, per partition: this writer's segments. */
  segments: Array<Segment[][] | null>;
  spilledBytes: number; flushes: number;
}

/** Record bytes per byte of NDJSON, about: an event line (~110 bytes) takes ~56, an output row (~340) ~64. */
const RECORD_BYTES_PER_BYTE = [0.55, 0.55, 0.25];

export type WorkerMessage = ScanJob | { type: 'join'; job: PartitionJob };

async function scan(m: ScanJob): Promise<ScanDone> {
  const budget = new Budget(m.budgetBytes);
  const writers: Array<PartitionWriter | null> = [null, null, null];
  const progress = new Float64Array(m.progress);
  const parts = 1 << m.bits;
  const stats: ScanDone['stats'] = [];
  for (const t of m.tasks) {
    const expect = m.tasks.filter((x) => x.source === t.source)
      .reduce((s, x) => s + (x.toByte - x.fromByte) * (x.format === 'parquet' ? RECORD_BYTES_PER_ROW : RECORD_BYTES_PER_BYTE[x.source]), 0);
    const w = writers[t.source] ??= new PartitionWriter(m.dir, `s${t.source}-${m.writer}`, parts, budget, expect);
    const st = newStats(t.chunk);
    const onBytes = (n: number, records: number) => { progress[2 * m.slot] += n; progress[2 * m.slot + 1] += records; };
    if (t.source === 2) {
      const rs = new RowScanner(w, m.bits, m.examples);
      st.positions = await scanFileChunk(t.file, 0, 'json', t.fromByte, t.toByte,
        (data, bytes, s, e, pos) => rs.json(data as Parameters<RowScanner['json']>[0], bytes, s, e, pos, st), onBytes);
    } else if (t.format === 'parquet') {
      const es = new EventScanner(t.source as Side, t.format, m.fields[t.source], w, m.bits);
      st.positions = await scanParquetChunk(t.file, t.source as Side, m.fields[t.source], t.fromByte, t.toByte, t.bytesPerRow ?? 0,
        (bytes, s, e, pos, ex) => es.record(bytes, s, e, pos, st, ex), onBytes);
    } else {
      const es = new EventScanner(t.source as Side, t.format, m.fields[t.source], w, m.bits);
      st.positions = await scanFileChunk(t.file, t.source as Side, t.format, t.fromByte, t.toByte,
        (_data, bytes, s, e, pos) => es.record(bytes, s, e, pos, st), onBytes);
    }
    stats.push({ source: t.source, stats: st });
  }
  const segments = writers.map((w) => (w ? Array.from({ length: parts }, (_, p) => w.segments(p)) : null));
  let spilledBytes = 0;
  for (const w of writers) if (w) spilledBytes += w.spilledBytes();
  return { type: 'scanned', stats, segments, spilledBytes, flushes: budget.flushes };
}

function transferables(d: ScanDone): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const s of d.segments) if (s) for (const list of s) for (const seg of list) if (seg.buf) out.push(seg.buf);
  return out;
}

parentPort!.on('message', (m: WorkerMessage) => {
  void (async () => {
    try {
      if (m.type === 'scan') {
        const d = await scan(m);
        parentPort!.postMessage(d, transferables(d));
      } else {
        parentPort!.postMessage({ type: 'joined', result: joinPartition(m.job) });
      }
    } catch (e) {
      const err = e as Error & { code?: string };
      parentPort!.postMessage({ type: 'error', code: err.code, name: err.name, message: err.message, stack: err.stack });
    }
  })();
});
