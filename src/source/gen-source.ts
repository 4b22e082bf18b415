/**
 * The generator as a Source, and its resume from a checkpoint: from the generator state the
 * checkpoint stored beside its position (gen-snapshot.ts), or else by regenerating what it had
 * delivered.
 */
import { FlatBatchWriter } from '../codec/flat-writer.js';
import { log } from '../core/log.js';
import { JoineryError } from '../core/errors.js';
import type { SourcePosition } from '../checkpoint/manifest.js';
import type { Side } from '../state/store.js';
import { Generator, type GenOptions } from './generator.js';
import { decodeGenState, encodeGenState, LITTLE_ENDIAN, OtherGenOptions } from './gen-snapshot.js';
import type { PartitionRef, RecordBatch, Source } from './source.js';

const BATCH_RECORDS = 4096;
/** Pace in chunks of about this much wall time, so timers stay coarse. */
const PACE_CHUNK_MS = 20;
/** Longest stretch of a resume's skip between two turns of the event loop. */
const SKIP_STEP_MS = 20;
const MIN_SLEEP_MS = 5;
/**
 * Largest generator state a checkpoint stores (at most 57 bytes per live event, ~290k events): taking it
 * stops the main thread for ~0.1–0.2 µs per live event at the barrier (a few ms at the default
 * event-time rate's ~50k). Past it (a paced run at tens of thousands of events/s holds hundreds of
 * thousands of plays ahead of their time) the checkpoint holds the position alone and a resume
 * regenerates.
 */
export const MAX_GEN_STATE_BYTES = 16 * 1024 * 1024;
/** An event's fields (41 bytes) and its heap entry (16), the most one takes. */
const STATE_BYTES_PER_EVENT = 57;

/** Where a restored generator starts: events delivered per side, its event-time origin, and the state stored with them, if any. */
export interface GenStart {
  delivered: [number, number];
  baseMs: number;
  /** Reads the generator state the checkpoint stored (verified against its checksum already). */
  state?: () => Promise<Uint8Array>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The generator as a Source: two partitions (left = impressions, right = plays, partition 0 each),
 * FlatBuffers batches (no size prefix; offsets delimit records). Each round advances event time
 * by about one batch of events and then hands out the left and the right events of that round
 * alternately, so neither side runs ahead. With rate > 0 it sleeps to keep to the rate; it ends
 * at the `events` limit or after `durationMs` of wall time.
 */
export class GeneratorSource implements Source {
  readonly name = 'gen:';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  readonly generator: Generator;
  private readonly writer = new FlatBatchWriter(false, 1 << 19, BATCH_RECORDS);
  private readonly delivered: [number, number] = [0, 0];
  private readonly chunk: number;
  private turn: Side = 0;
  private startMs = -1;
  private closed = false;
  private preparing: Promise<void> | undefined;
  readonly live: boolean;

  constructor(opts: GenOptions, readonly batchRecords = BATCH_RECORDS, private readonly start?: GenStart) {
    this.generator = new Generator(opts, start?.baseMs);
    const rate = this.generator.opts.rate;
    this.live = rate > 0;
    this.chunk = rate > 0 ? Math.max(1, Math.min(batchRecords, Math.round((rate * PACE_CHUNK_MS) / 1000))) : batchRecords;
  }

  /** Events handed out per side so far. */
  deliveredCount(side: Side): number {
    return this.delivered[side];
  }

  checkpointPosition(): SourcePosition {
    // A skip cut short (the source closed while resuming) has delivered nothing new: the position stays the checkpoint's.
    const at = this.start?.delivered ?? [0, 0];
    return { kind: 'gen', name: this.name, gen: { delivered: [Math.max(this.delivered[0], at[0]), Math.max(this.delivered[1], at[1])], baseMs: this.generator.baseMs } };
  }

  /**
   * The generator's state at the position checkpointPosition gives (a batch is routed whole before
   * the next is generated, so the two agree at a cut); null while a resume has not reached the
   * checkpoint's position yet, or when the state is too large to be worth storing.
   */
  checkpointState(): Uint8Array | null {
    const g = this.generator;
    const at = this.start?.delivered;
    if (at && (this.delivered[0] < at[0] || this.delivered[1] < at[1])) return null;
    if (!LITTLE_ENDIAN || g.liveEvents * STATE_BYTES_PER_EVENT > MAX_GEN_STATE_BYTES) return null;
    return encodeGenState(g.exportState(), g.opts);
  }

  /**
   * Resumes from the state the checkpoint stored when it has one (a few milliseconds); otherwise
   * regenerates and drops what a checkpoint says was already delivered (same seed, same events),
   * in steps of ~SKIP_STEP_MS with a turn of the event loop between them, so that it runs while
   * the workers restore the checkpoint (the engine calls it before their restore ends) and the
   * HTTP endpoint keeps answering. Tens of millions of events take tens of seconds.
   */
  prepare(): Promise<void> {
    this.preparing ??= this.skipDelivered();
    return this.preparing;
  }

  private async skipDelivered(): Promise<void> {
    const target = this.start?.delivered;
    const g = this.generator;
    if (target === undefined) return;
    if (this.start?.state && await this.loadState(target)) return;
    for (;;) {
      let progressed = false;
      const stepStart = performance.now();
      while (performance.now() - stepStart < SKIP_STEP_MS) {
        progressed = false;
        for (const side of [0, 1] as Side[]) {
          const want = target[side] - this.delivered[side];
          if (want <= 0) continue;
          const n = g.skip(side, Math.min(want, this.batchRecords));
          this.delivered[side] += n;
          if (n > 0) progressed = true;
        }
        if (!progressed || this.closed) break;
      }
      if (!progressed || this.closed) break;
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Continue from the stored state if it is this stream's at the position; false (and a warning) otherwise, the generator untouched. */
  private async loadState(target: [number, number]): Promise<boolean> {
    const g = this.generator;
    let why: string;
    try {
      const st = decodeGenState(await this.start!.state!(), g.opts);
      if (st instanceof OtherGenOptions) {
        throw new JoineryError('E_CHECKPOINT', `gen: the checkpoint continues a generator started with other options (${st.changed}): ` +
          'resuming with these would join two different streams. Resume with the options it was started with, or start afresh with another --checkpoint-dir');
      }
      if (st instanceof Error) why = st.message;
      else if (st.baseMs !== g.baseMs) why = `its event time starts at ${st.baseMs}, the position's at ${g.baseMs}`;
      else if (st.emitted[0] - st.queues[0].length !== target[0] || st.emitted[1] - st.queues[1].length !== target[1]) why = 'it is not at the checkpoint\'s position';
      else {
        g.importState(st);
        this.delivered[0] = target[0]; this.delivered[1] = target[1];
        return true;
      }
    } catch (e) {
      if (e instanceof JoineryError) throw e;
      why = (e as Error).message;
    }
    log.say('warn', `joinery: gen: the checkpoint's generator state cannot be used (${why}): regenerating the ${target[0] + target[1]} events delivered before it instead`, { code: 'E_CHECKPOINT' });
    return false;
  }

  async next(): Promise<RecordBatch | null> {
    const g = this.generator;
    const o = g.opts;
    if (this.startMs < 0) {
      if (this.start) await this.prepare();
      // Pace from here on as if the skipped events had been produced at the rate (from the first
      // batch on, not from the end of the skip, which may come well before it).
      this.startMs = performance.now() - (o.rate > 0 ? (g.released * 1000) / o.rate : 0);
    }
    for (;;) {
      if (this.closed) return null;
      for (let k = 0; k < 2; k++) {
        const side = this.turn;
        this.turn = (side ^ 1) as Side;
        if (g.queued(side) > 0) return this.batch(side);
      }
      // Both queues are empty: generate the next round.
      if (g.done) return null;
      const elapsed = performance.now() - this.startMs;
      if (o.durationMs > 0 && elapsed >= o.durationMs) return null;
      if (o.rate > 0) {
        const aheadMs = (g.released * 1000) / o.rate - elapsed;
        if (aheadMs >= MIN_SLEEP_MS) {
          await sleep(o.durationMs > 0 ? Math.min(aheadMs, o.durationMs - elapsed) : aheadMs);
          continue;
        }
      }
      g.pump(this.chunk);
    }
  }

  private batch(side: Side): RecordBatch {
    const w = this.writer;
    w.reset();
    const count = this.generator.nextFlat(side, this.batchRecords, w, false);
    const firstPosition = this.delivered[side] + 1;
    this.delivered[side] += count;
    return {
      side, partition: 0, format: 'flatbuffers', data: w.data, offsets: w.offsets, count,
      firstPosition, origin: 'gen:',
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
