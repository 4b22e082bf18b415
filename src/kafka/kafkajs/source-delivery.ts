/**
 * The delivery side of the kafkajs source: per-partition state, the queue of fetched batches,
 * pausing (by the engine, a rebuild's hold, event-time alignment) and the positions reported to
 * checkpoints and /status. KafkaSource (source.ts) adds the consumer: group membership, fetching,
 * reconnects and commits.
 */
import type { Consumer } from 'kafkajs';
import type { SourcePosition } from '../../checkpoint/manifest.js';
import type { PartitionPosition, PartitionRef } from '../../source/source.js';
import type { Side } from '../../state/store.js';
import { kafkaSourceName } from '../options.js';
import type { KafkaRecordBatch, KafkaSourceOptions } from '../port.js';
import { BatchQueue } from './source-queue.js';
import { DEFAULTS, partKey, positionsOf, unreadOf, wakeAll, type PartState } from './source-state.js';

export abstract class PartitionDelivery {
  readonly name: string;
  protected consumer: Consumer | null = null;
  protected readonly parts = new Map<string, PartState>();
  protected readonly queue: BatchQueue;
  protected waiters: Array<() => void> = [];
  protected spaceWaiters: Array<() => void> = [];
  /** Input ended (exit-when-idle): nothing is fetched or delivered any more. */
  protected ended = false;
  /** Start positions of the partitions of the current assignment (startOffsets, then resetTo()). */
  protected startPositions: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>;

  constructor(private readonly topics: Pick<KafkaSourceOptions, 'leftTopic' | 'rightTopic' | 'queueBytes' | 'startOffsets'>) {
    this.name = kafkaSourceName(topics.leftTopic, topics.rightTopic);
    this.queue = new BatchQueue(topics.queueBytes ?? DEFAULTS.queueBytes, (b) => this.parts.get(partKey(b.kafka.topic, b.kafka.partition))!);
    this.startPositions = topics.startOffsets ?? [];
  }

  protected topicOf(side: Side): string {
    return side === 0 ? this.topics.leftTopic : this.topics.rightTopic;
  }

  /** Kafka partitions (numbers, as both topics share them) assigned to this member now. */
  assignedKafkaPartitions(): number[] {
    const out = new Set<number>();
    for (const st of this.parts.values()) if (st.assigned) out.add(st.partition);
    return [...out].sort((a, b) => a - b);
  }

  protected wake(): void {
    this.waiters = wakeAll(this.waiters);
  }

  protected wakeSpace(): void {
    this.spaceWaiters = wakeAll(this.spaceWaiters);
  }

  protected take(): KafkaRecordBatch | null {
    const b = this.queue.take();
    if (b) {
      const st = this.parts.get(partKey(b.kafka.topic, b.kafka.partition))!;
      st.deliveredNext = Number(b.kafka.nextOffset);
      this.wakeSpace();
      return b;
    }
    return null;
  }

  protected waitForBatch(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== done); r(); }, ms);
      const done = (): void => { clearTimeout(t); r(); };
      this.waiters.push(done);
    });
  }

  /** Stop delivering (and fetching) a partition: queued batches of it wait until resume(). */
  pause(side: Side, partition: number): void {
    const st = this.parts.get(partKey(this.topicOf(side), partition));
    if (!st) return;
    st.userPaused = true;
    this.applyPause(st);
  }

  resume(side: Side, partition: number): void {
    const st = this.parts.get(partKey(this.topicOf(side), partition));
    if (!st) return;
    st.userPaused = false;
    this.applyPause(st);
  }

  /** Rebuild: hold a partition (as paused, but independent of pause/resume) until released. */
  hold(p: PartitionRef, held: boolean): void {
    const st = this.parts.get(partKey(this.topicOf(p.side), p.partition));
    if (!st) return;
    st.held = held;
    this.applyPause(st);
  }

  /** Event-time alignment: pause a partition that runs ahead (as paused, independent of pause/resume and hold). */
  align(p: PartitionRef, paused: boolean): void {
    const st = this.parts.get(partKey(this.topicOf(p.side), p.partition));
    if (!st) return;
    st.aligned = paused;
    this.applyPause(st);
  }

  /** A partition is paused while paused by the engine, held by a rebuild or ahead in event time. */
  private applyPause(st: PartState): void {
    const want = st.userPaused || st.held || st.aligned;
    if (want === st.paused) return;
    st.paused = want;
    if (want) {
      this.queue.pauseChanged(st);
      try { this.consumer?.pause([{ topic: st.topic, partitions: [st.partition] }]); } catch { /* re-applied on the next group join */ }
      return;
    }
    this.queue.pauseChanged(st);
    if (!this.ended) {
      try { this.consumer?.resume([{ topic: st.topic, partitions: [st.partition] }]); } catch { /* re-applied on the next group join */ }
    }
    this.wake();
    this.wakeSpace();
  }

  isPaused(side: Side, partition: number): boolean {
    return this.parts.get(partKey(this.topicOf(side), partition))?.paused ?? false;
  }

  /** Assigned partitions with records not handed out yet: queued, or below the highest high watermark seen. */
  unreadPartitions(): PartitionRef[] {
    return this.ended ? [] : unreadOf(this.parts.values());
  }

  /** Per assigned partition: next offset to deliver, highest high watermark seen, lag between them (for /status, /metrics). */
  positions(): PartitionPosition[] {
    return positionsOf(this.parts.values());
  }

  /** Partitions assigned to this member now. */
  assignedPartitions(): PartitionRef[] {
    return [...this.parts.values()].filter((st) => st.assigned).map((st) => ({ side: st.side, partition: st.partition }));
  }

  /** Next offset handed out so far per assigned partition (what commit() may be given once applied). */
  deliveredPositions(): Array<{ topic: string; partition: number; offset: string }> {
    return [...this.parts.values()].filter((st) => st.assigned && st.deliveredNext >= 0)
      .map((st) => ({ topic: st.topic, partition: st.partition, offset: String(st.deliveredNext) }));
  }

  /**
   * Checkpoint position: next offsets of everything handed out, over the positions this run
   * started from (startOffsets), so partitions quiet since the restore keep theirs.
   */
  checkpointPosition(): SourcePosition {
    const pos = new Map<string, { topic: string; partition: number; offset: string }>();
    for (const o of this.startPositions) pos.set(`${o.topic}\0${o.partition}`, { topic: o.topic, partition: o.partition, offset: String(o.offset) });
    for (const p of this.deliveredPositions()) pos.set(`${p.topic}\0${p.partition}`, p);
    return { kind: 'log', name: this.name, log: [...pos.values()] };
  }

}
