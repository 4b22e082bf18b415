/**
 * Kafka inputs of a backfill, with run's Kafka wiring (io.ts openKafkaIO): the consumer, the sinks
 * and the engine's PositionsPort. src/backfill/bounded-log.ts bounds what this opens to the cuts;
 * here is what only Kafka knows: where each partition starts (offsets-for-times of --from, or the
 * checkpoint's positions), where it ends (its end now), which checkpoint the group's committed
 * offsets name, and how the cut reads for the user (offsets committed for --group).
 */
import { startOf, type CheckpointContext } from '../checkpoint/index.js';
import { endpointsOf, kafkaTopic } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import { kafkaAdapter } from './adapters.js';
import { committedCheckpointId, isTransactional, openKafkaIO, type KafkaEngineHooks } from './io.js';
import { kafkaSourceName, parseBrokers } from './options.js';
import type { KafkaInput } from './port.js';

/**
 * As run: with exactly-once Kafka output the output transaction is the commit point, so a
 * backfill resumes from the checkpoint whose id the group's committed offsets carry (undefined: the newest).
 */
export async function backfillCheckpointId(cfg: Config): Promise<number | undefined> {
  return isTransactional(cfg, true) ? committedCheckpointId(cfg) : undefined;
}

export interface KafkaBackfill {
  input: KafkaInput;
  /** Per partition: the next offset to read, and its end when the backfill started. */
  ranges: Array<{ side: 0 | 1; topic: string; partition: number; start: number; end: number }>;
  /** Sinks and PositionsPort for the engine (openKafkaIO's), without run's commits of applied offsets (the cuts are committed instead). */
  engine: KafkaEngineHooks;
  /** Close everything (before the engine took over; the engine closes its sources and sinks itself). */
  close(): Promise<void>;
}

/**
 * Open both topics for a backfill from fromMs: start at offsets-for-times of fromMs (or, resuming,
 * at the restored checkpoint's positions), end at the partitions' ends now.
 */
export async function openKafkaBackfill(cfg: Config, fromMs: number, ck: CheckpointContext | null): Promise<KafkaBackfill> {
  const kafka = await kafkaAdapter();
  const brokers = parseBrokers(cfg.brokers!);
  const ep = endpointsOf(cfg);
  const topics = [kafkaTopic(ep.left)!, kafkaTopic(ep.right)!] as const;
  const resumeAt = startOf(ck, kafkaSourceName(topics[0], topics[1]))?.log;
  const ranges: KafkaBackfill['ranges'] = [];
  for (const [side, topic] of topics.entries()) {
    for (const o of await kafka.admin.offsetsForTime(brokers, topic, Number.isFinite(fromMs) ? fromMs : 0)) {
      const at = resumeAt?.find((r) => r.topic === topic && r.partition === o.partition);
      ranges.push({ side: side as 0 | 1, topic, partition: o.partition, start: at ? Number(at.offset) : o.offset, end: Math.max(o.high, at ? Number(at.offset) : 0) });
    }
  }
  const io = await openKafkaIO({
    cfg, member: null, checkpoints: !!ck,
    startOffsets: ranges.map((e) => ({ topic: e.topic, partition: e.partition, offset: e.start })),
  });
  // the cuts are committed at the end, not the offsets on the way
  const { commitApplied: _runCommits, ...positions } = io.engine.positions;
  return { input: io.source!, ranges, engine: { ...io.engine, positions }, close: () => io.close() };
}

/** Where a complete Kafka backfill was cut, and how the live job continues from there (the closing line). */
export function kafkaCutNotice(cfg: Config, cuts: ReadonlyArray<{ topic: string; partition: number; offset: number }>, rebuildFromMs: number | null): { where: string; next: string } {
  return {
    where: `the offsets ${cuts.map((c) => `${c.topic}/${c.partition}@${c.offset}`).join(' ')} (committed for group ${cfg.group})`,
    next: `joinery run … --group ${cfg.group} --rebuild-from ${rebuildFromMs}`,
  };
}
