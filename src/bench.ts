import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOCK_FILE, lockDir } from './core/dirlock.js';
import { JoineryError } from './core/errors.js';
import { log } from './core/log.js';
import { claimOutputPaths } from './config/paths.js';
import { lockCheckpoints, openCheckpoints } from './checkpoint/index.js';
import type { Config } from './config/schema.js';
import { nowMs } from './core/units.js';
import { exitCodeOf, formatSummary, runEngine, type Summary } from './engine.js';
import { fmtCount, fmtRate } from './metrics/report.js';
import { genOptionsFrom } from './source/generator.js';
import { GeneratorSource } from './source/gen-source.js';
import type { PartitionRef, RecordBatch, Source } from './source/source.js';

const BATCH_RECORDS = 4096;

/**
 * Replays pre-generated, pre-encoded FlatBuffers batches from memory, so the benchmark measures
 * the engine rather than the generator. Batches alternate sides as the generator source does.
 */
class ReplaySource implements Source {
  readonly name = 'replay';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  private i = 0;
  constructor(private readonly batches: RecordBatch[]) {}
  async next(): Promise<RecordBatch | null> {
    return this.i < this.batches.length ? this.batches[this.i++] : null;
  }
  async close(): Promise<void> {}
}

/**
 * The replay's batches, taken from the generator source itself (unpaced), so they come in its
 * rounds: event time advances by one batch of events, then that round's left and right events
 * go out, and neither side runs ahead in event time. (Filling 4096-event batches of each side in
 * turn let the plays, a fifth of the events, run ahead by four times the impressions' event time:
 * up to 70 minutes at 12M events, every play buffered until the impressions caught up, and the
 * state 2.4 times the window. No real source does that: files and Kafka partitions are read in
 * event-time alignment, --max-drift.)
 */
export async function pregenerate(cfg: Config): Promise<{ batches: RecordBatch[]; bytes: number }> {
  const source = new GeneratorSource({ ...genOptionsFrom(cfg), rate: 0, durationMs: 0 }, BATCH_RECORDS);
  const batches: RecordBatch[] = [];
  let bytes = 0, position = 0;
  // The source reuses its buffers from one batch to the next: each batch is copied out.
  for (let b = await source.next(); b !== null; b = await source.next()) {
    const data = b.data.slice(0, b.offsets[b.count]);
    bytes += data.length;
    batches.push({ ...b, data, offsets: b.offsets.slice(0, b.count + 1), firstPosition: position, origin: 'replay' });
    position += b.count;
  }
  await source.close();
  return { batches, bytes };
}

export async function runBench(cfg: Config): Promise<number> {
  // The replay is generated into memory before it starts: without an event limit that never ends.
  if (cfg.benchSource === 'replay' && !(cfg.events > 0)) {
    throw new JoineryError('E_USAGE', '--source replay needs --events N > 0 (it generates the whole data set into memory first); for a run without an event limit use --source gen');
  }
  const tmp = cfg.stateDir === './joinery-state' ? fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-bench-')) : null;
  const c: Config = { ...cfg, stateDir: tmp ?? cfg.stateDir };
  const say = (s: string) => log.say('info', s);
  let source: Source;
  if (c.benchSource === 'replay') {
    const t0 = nowMs();
    const { batches, bytes } = await pregenerate(c);
    const n = batches.reduce((a, b) => a + b.count, 0);
    say(`joinery bench: pre-generated ${fmtCount(n)} events (${(bytes / 1048576).toFixed(0)} MiB FlatBuffers) in ${((nowMs() - t0) / 1000).toFixed(1)}s`);
    source = new ReplaySource(batches);
  } else {
    source = new GeneratorSource(genOptionsFrom(c));
  }
  claimOutputPaths(c);
  if (c.state !== 'memory') lockDir(c.stateDir, '--state-dir');
  if (c.checkpointDir) {
    lockCheckpoints(c.checkpointDir);
    // A benchmark measures a fresh run, so it needs an empty checkpoint directory. It never empties
    // one itself: the directory given may hold a production job's checkpoints (or anything else).
    const held = fs.readdirSync(c.checkpointDir).filter((n) => n !== LOCK_FILE);
    if (held.length) {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
      throw new JoineryError('E_USAGE', `bench: --checkpoint-dir ${c.checkpointDir} is not empty (${held.length} entr${held.length === 1 ? 'y' : 'ies'}, e.g. ${held[0]}); a benchmark starts from an empty checkpoint directory and does not delete anything: give a new or empty directory`);
    }
  }
  const ck = await openCheckpoints(c);
  say(`joinery bench: ${c.workers} worker(s), ${c.state} state, ${c.join} join [${c.lowerMs}ms, ${c.upperMs}ms], source ${c.benchSource}${ck ? `, checkpoints every ${c.checkpointIntervalMs / 1000}s to ${c.checkpointDir}` : ''}`);
  let maxHeap = 0;
  let s: Summary;
  try {
    s = await runEngine(c, {
      sources: [source], formats: ['flatbuffers', 'flatbuffers'], progress: c.progress === 'on' || (c.progress === 'auto' && !!process.stderr.isTTY),
      // a benchmark stopped with ^C or SIGTERM still reports what it measured (and takes its stop checkpoint)
      printSummary: false, checkpoints: ck, handleSignals: true, resumable: false, onTick: () => { maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed); },
    });
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  maxHeap = Math.max(maxHeap, s.mainHeapUsedBytes);
  const result = { ...s, mainHeapMaxBytes: maxHeap, source: c.benchSource };
  // In JSON the summary is one `finished` record; on a terminal the text.
  if (log.isJson) log.info('finished', { command: 'bench', ...result });
  else log.say('info', formatSummary(s) + `  main-thread heap max ${(maxHeap / 1048576).toFixed(0)} MiB; ring back-pressure waits ${fmtCount(s.backpressureWaits)}; ${fmtRate(s.eventsPerSec)} events/s${s.cpu ? `, ${s.cpu.usPerEvent.toFixed(1)} µs CPU/event` : ''}`);
  if (c.json) process.stdout.write(JSON.stringify(result) + '\n');
  return exitCodeOf(s);
}
