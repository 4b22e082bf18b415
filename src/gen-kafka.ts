/**
 * `joinery gen --brokers … --left-topic T --right-topic T [--partitions N] [--format …]`: the
 * built-in generator's two streams produced into two Kafka topics (impressions → left topic, plays
 * → right topic), created when missing.
 *
 * Every record is keyed by its join key in the engine's canonical text (the JSON array of the key
 * values, e.g. `[7,42]`, the same text the router hashes), and the producer partitions by murmur2
 * of the key like the Java client. So with equal partition counts a key's impressions and plays
 * land on the same partition number of both topics (co-partitioned), which scale-out by partition
 * relies on.
 *
 * format flatbuffers: each value is one Impression/Play FlatBuffer (no size prefix — a Kafka record
 * is its own frame); json: each value is the event as plain JSON text (readable by kcat).
 */
import type { Config } from './config/schema.js';
import { FlatExtractor, SIDE_TABLE } from './codec/flat.js';
import { FlatBatchWriter } from './codec/flat-writer.js';
import { scalarText } from './codec/json.js';
import { usageError } from './core/errors.js';
import { log } from './core/log.js';
import { fmtCount, fmtRate } from './metrics/report.js';
import { Generator, genOptionsFrom, impressionJson, playJson } from './source/generator.js';
import type { ImpressionEvent, PlayEvent } from './source/generator.js';
import type { Side } from './state/store.js';
import { kafkaAdapter } from './kafka/adapters.js';
import type { EnsureResult, KafkaCompression, KafkaRecordOutput } from './kafka/port.js';

export interface GenToKafkaOptions {
  brokers: string[];
  leftTopic: string;
  rightTopic: string;
  /** Partitions of topics that are created (existing topics keep theirs). */
  partitions: number;
  format: 'json' | 'flatbuffers';
  compression?: KafkaCompression;
  connectTimeoutMs?: number;
}

export interface GenToKafkaSummary {
  topics: EnsureResult[];
  /** Records produced per side (duplicates included). */
  events: [number, number];
  duplicates: [number, number];
  orphanPlays: number;
  /** Value bytes per side. */
  bytes: [number, number];
  elapsedMs: number;
  eventsPerSec: number;
}

const ROUND_EVENTS = 16_384;
const PACE_CHUNK_MS = 20;
const MIN_SLEEP_MS = 5;
const PROGRESS_TTY_MS = 250;
const PROGRESS_LOG_MS = 2000;
const JSON_SLICE_EVENTS = 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Fields = { key: string[]; time: string; id: string };

function fieldsOf(cfg: Config, side: Side): Fields {
  const key = (side === 0 ? cfg.leftKey : cfg.rightKey) ?? cfg.key ?? ['profileId', 'titleId'];
  const time = (side === 0 ? cfg.leftTime : cfg.rightTime) ?? cfg.time ?? 'ts';
  const id = (side === 0 ? cfg.leftId : cfg.rightId) ?? cfg.id ?? 'eventId';
  return { key, time, id };
}

/** One side: generator events → keyed records → its topic. */
class SideWriter {
  bytes = 0;
  records = 0;
  private readonly flat: FlatBatchWriter | null;
  private readonly extractor: FlatExtractor | null;

  constructor(readonly side: Side, readonly sink: KafkaRecordOutput, readonly format: 'json' | 'flatbuffers', private readonly fields: Fields) {
    this.flat = format === 'flatbuffers' ? new FlatBatchWriter(false, 1 << 20, 8192) : null;
    this.extractor = format === 'flatbuffers' ? new FlatExtractor(SIDE_TABLE[side], fields.key, fields.time, fields.id) : null;
  }

  /** Move everything queued for this side out of the generator into the producer. */
  async take(gen: Generator): Promise<void> {
    while (gen.queued(this.side) > 0) {
      if (this.flat) {
        const w = this.flat, ex = this.extractor!;
        w.reset();
        const n = gen.nextFlat(this.side, Math.min(8192, gen.queued(this.side)), w, false);
        for (let i = 0; i < n; i++) {
          const s = w.offsets[i], e = w.offsets[i + 1];
          if (!ex.extract(w.data, s, e)) throw new Error(`generator produced an unreadable record: ${ex.error}`);
          if (!this.put(ex.keyText, w.data.subarray(s, e))) await this.sink.ready();
        }
      } else {
        const evs = gen.nextEvents(this.side, Math.min(JSON_SLICE_EVENTS, gen.queued(this.side)));
        for (const e of evs) {
          const rec = e as unknown as Record<string, unknown>;
          let key = '[';
          for (let i = 0; i < this.fields.key.length; i++) key += (i ? ',' : '') + (scalarText(rec[this.fields.key[i]]) ?? 'null');
          key += ']';
          const text = this.side === 0 ? impressionJson(e as ImpressionEvent) : playJson(e as PlayEvent);
          if (!this.put(key, text)) await this.sink.ready();
        }
      }
    }
  }

  /** False when the caller should await the sink's ready(). */
  private put(key: string, value: Uint8Array | string): boolean {
    this.records++;
    this.bytes += typeof value === 'string' ? Buffer.byteLength(value) : value.length;
    return this.sink.write(key, value);
  }
}

/**
 * Produce the generator's streams (options from `cfg`: seed, rate, events, duration, gen-*) into
 * the two topics. Progress on stderr (a live line on a terminal, a line every 2 s otherwise, per
 * --progress), a summary line at the end. Resolves once every record is acknowledged.
 */
export async function runGenToKafka(cfg: Config, opts: GenToKafkaOptions): Promise<GenToKafkaSummary> {
  if (opts.leftTopic === opts.rightTopic) throw usageError('--left-topic and --right-topic must be different topics');
  if (!Number.isInteger(opts.partitions) || opts.partitions < 1) throw usageError(`--partitions must be a whole number ≥ 1 (got ${opts.partitions})`);
  const genOpts = genOptionsFrom(cfg);
  const adapter = await kafkaAdapter();
  const kafka = adapter.openClient(opts.brokers, 'joinery-gen', { connectTimeoutMs: opts.connectTimeoutMs ?? 30_000 });
  const topics = await adapter.admin.ensureTopics(kafka, [
    { topic: opts.leftTopic, partitions: opts.partitions },
    { topic: opts.rightTopic, partitions: opts.partitions },
  ]);
  for (const t of topics) {
    if (!t.created && t.partitions !== opts.partitions) {
      log.say('warn', `joinery gen: topic ${t.topic} already exists with ${t.partitions} partitions (not ${opts.partitions}); producing into it as it is`);
    }
  }
  if (topics[0].partitions !== topics[1].partitions) {
    log.say('warn', `joinery gen: warning: ${topics[0].topic} has ${topics[0].partitions} partitions and ${topics[1].topic} has ${topics[1].partitions}: ` +
      `a key's impressions and plays land on different partition numbers, so the topics cannot be split by partition across joinery nodes (one node reading both whole topics still joins correctly)`);
  }

  const sinkOpts = { brokers: opts.brokers, kafka, compression: opts.compression ?? 'none', clientId: 'joinery-gen' } as const;
  let left: KafkaRecordOutput, right: KafkaRecordOutput;
  try {
    left = await adapter.openRecordSink({ ...sinkOpts, topic: opts.leftTopic });
  } catch (e) {
    adapter.closeClient(kafka);
    throw e;
  }
  try {
    right = await adapter.openRecordSink({ ...sinkOpts, topic: opts.rightTopic });
  } catch (e) {
    await left.close().catch(() => {});
    adapter.closeClient(kafka);
    throw e;
  }
  const writers: [SideWriter, SideWriter] = [
    new SideWriter(0, left, opts.format, fieldsOf(cfg, 0)),
    new SideWriter(1, right, opts.format, fieldsOf(cfg, 1)),
  ];

  const gen = new Generator(genOpts);
  const progressTty = !!process.stderr.isTTY;
  const progress = cfg.progress === 'on' || (cfg.progress === 'auto' && progressTty);
  const paced = genOpts.rate > 0;
  const round = paced ? Math.max(1, Math.min(ROUND_EVENTS, Math.round((genOpts.rate * PACE_CHUNK_MS) / 1000))) : ROUND_EVENTS;
  const t0 = performance.now();
  let lastProgress = t0, progressShown = false;

  const showProgress = (now: number, final: boolean): void => {
    const n = writers[0].records + writers[1].records;
    const secs = (now - t0) / 1000;
    const line = `joinery gen: ${fmtCount(n)} events → ${opts.leftTopic} ${fmtCount(writers[0].records)}, ${opts.rightTopic} ${fmtCount(writers[1].records)}; ` +
      `${fmtRate(secs > 0 ? n / secs : 0)} events/s`;
    if (progressTty) log.progress(line, final);
    else if (!final) log.say('info', line);
    progressShown = true;
  };

  let failed = false;
  try {
    for (;;) {
      const now = performance.now();
      const elapsed = now - t0;
      if (gen.done || (genOpts.durationMs > 0 && elapsed >= genOpts.durationMs)) break;
      if (paced) {
        const aheadMs = (gen.released * 1000) / genOpts.rate - elapsed;
        if (aheadMs >= MIN_SLEEP_MS) {
          await sleep(genOpts.durationMs > 0 ? Math.max(1, Math.min(aheadMs, genOpts.durationMs - elapsed)) : aheadMs);
          continue;
        }
      }
      gen.pump(round);
      await writers[0].take(gen);
      await writers[1].take(gen);
      const after = performance.now();
      if (progress && after - lastProgress >= (progressTty ? PROGRESS_TTY_MS : PROGRESS_LOG_MS)) {
        showProgress(after, false);
        lastProgress = after;
      }
    }
    // events released by the last round
    await writers[0].take(gen);
    await writers[1].take(gen);
    await Promise.all([left.flush(), right.flush()]);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    const closing = await Promise.allSettled([left.close(), right.close()]);
    adapter.closeClient(kafka);
    const bad = closing.find((c) => c.status === 'rejected');
    if (bad && !failed) throw (bad as PromiseRejectedResult).reason;
  }

  const end = performance.now();
  if (progress && progressShown && progressTty) showProgress(end, true);
  const s = gen.stats();
  const n = writers[0].records + writers[1].records;
  const secs = (end - t0) / 1000;
  const rate = secs > 0 ? n / secs : 0;
  log.say('info',
    `joinery gen: ${fmtCount(n)} events in ${secs.toFixed(2)}s (${fmtRate(rate)} events/s, ${opts.format}, seed ${genOpts.seed}) to Kafka ${opts.brokers.join(',')}: ` +
    `${opts.leftTopic} (${topics[0].partitions} partitions${topics[0].created ? ', created' : ''}) ${fmtCount(writers[0].records)} impressions (${fmtCount(s.duplicates[0])} duplicates) ${fmtCount(writers[0].bytes)} bytes; ` +
    `${opts.rightTopic} (${topics[1].partitions} partitions${topics[1].created ? ', created' : ''}) ${fmtCount(writers[1].records)} plays (${fmtCount(s.duplicates[1])} duplicates, ${fmtCount(s.orphanPlays)} orphans) ${fmtCount(writers[1].bytes)} bytes`,
  );
  return {
    topics,
    events: [writers[0].records, writers[1].records],
    duplicates: [s.duplicates[0], s.duplicates[1]],
    orphanPlays: s.orphanPlays,
    bytes: [writers[0].bytes, writers[1].bytes],
    elapsedMs: end - t0,
    eventsPerSec: rate,
  };
}
