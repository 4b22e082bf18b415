/**
 * The kafkajs source: two topics (left → side 0, right → side 1) read by one consumer group with
 * eachBatch and no auto-commit; the engine commits through commit() once records are applied. A
 * co-partitioned group assignment (assigner.ts) keeps partition p of both topics on one member.
 *
 * Exactly-once bookkeeping (rebalances, consumer restarts, broker restarts): kafkajs re-reads a
 * partition from its last *committed* offset after every rebalance and every consumer restart, and
 * the engine commits only after applying, so records already handed out would come again. The
 * source keeps, per partition, the next offset accepted into its queue (`enqueuedNext`) and the
 * next offset handed to the router (`deliveredNext`); fetched records below `enqueuedNext` are
 * dropped and kafkajs's fetch position is moved past them. On a group join, queued batches of
 * revoked partitions (fetched, not yet handed out) are removed — the new owner reads them from the
 * committed offset — and `enqueuedNext` falls back to `deliveredNext`, so a partition that comes
 * back to this process continues exactly after what was routed. Within one process nothing is
 * delivered twice. What kafkajs cannot give (it has no revoke callback before re-joining; the
 * `rejoin` patch adds the hook that lets the owner checkpoint first): records of a revoked
 * partition that were routed here but not yet committed are read again by the new owner, i.e.
 * across processes the duplicate window is "routed but not committed" (commit often;
 * onAssignment reports every change). commit() only commits partitions assigned to this member,
 * so a late commit never moves another member's partition backwards.
 */
import type { Admin, Consumer, EachBatchPayload } from 'kafkajs';
import { JoineryError, usageError } from '../../core/errors.js';
import { log as logger } from '../../core/log.js';
import { formatDurationMs } from '../../core/units.js';
import type { PartitionRef } from '../../source/source.js';
import type { GroupMembership, KafkaFrom, KafkaInput, KafkaRecordBatch, KafkaSourceOptions } from '../port.js';
import { asHandle, closeKafka, connectedAdmin, createKafka, DEFAULT_CONNECT_TIMEOUT_MS, type KafkaHandle, waitForBroker } from './client.js';
import { errText, evictionOf, isReconnectable, sleep } from './errors.js';
import { offsetOf, useLeanRecords } from './lean-record.js';
import type { BeforeJoinInfo } from './patches.js';
import { PartitionDelivery } from './source-delivery.js';
import { copyBatch } from './source-queue.js';
import { commitOnce, consumerConfig, DEFAULTS, partitionsAtEnd, partKey, planPartitions, TopicWatch, wakeAll, type PartState } from './source-state.js';

/** A commit retried this long gets a warning (a broker re-join usually takes a few seconds). */
const COMMIT_WARN_AFTER_MS = 5_000;

export class KafkaSource extends PartitionDelivery implements KafkaInput {
  partitions: readonly PartitionRef[] = [];
  readonly format: 'json' | 'flatbuffers';
  readonly live = true;
  /** Counters for progress and tests. */
  readonly stats = { batches: 0, records: 0, bytes: 0, droppedBelowPosition: 0, rebalances: 0, purgedBatches: 0, queueWaits: 0, reconnects: 0 };

  private readonly h: KafkaHandle;
  private readonly ownsClient: boolean;
  private admin: Admin | null = null;
  private lastDelivered: KafkaRecordBatch | null = null;
  private fatal: Error | null = null;
  private closed = false;
  private generation = 0;
  private idleSince = -1;
  /** Delivery stopped for a re-join (beforeRejoin) until resetTo(). */
  private suspended = false;
  /** The engine reading this source is stopping: next() returns null until resetTo(). */
  private interrupted = false;
  private generationWaiters: Array<() => void> = [];
  /** The kafkajs ConsumerGroup of the current consumer (handed to the before-join hook). */
  private group: BeforeJoinInfo['group'] | null = null;
  private joinedAs: GroupMembership | null = null;
  private lastActivity = Date.now();
  private readonly exitWhenIdleMs: number;
  private readonly from: KafkaFrom;

  private constructor(private readonly opts: KafkaSourceOptions) {
    super(opts);
    if (opts.leftTopic === opts.rightTopic) throw usageError(`--left and --right name the same Kafka topic ${JSON.stringify(opts.leftTopic)}`);
    this.ownsClient = !opts.kafka;
    this.h = opts.kafka ? asHandle(opts.kafka) : createKafka(opts.brokers, opts.clientId ?? 'joinery', { connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
    this.format = opts.format;
    this.exitWhenIdleMs = opts.exitWhenIdleMs ?? 0;
    this.from = opts.from ?? 'earliest';
  }

  /** Connect, check both topics, learn their partitions and start positions, join the group. */
  static async open(opts: KafkaSourceOptions): Promise<KafkaSource> {
    useLeanRecords(true); // values are copied out of the fetch response (copyBatch), nothing else reads them
    const s = new KafkaSource(opts);
    try {
      await s.start();
    } catch (e) {
      await s.close().catch(() => {});
      throw e;
    }
    return s;
  }

  private async start(): Promise<void> {
    this.admin = await connectedAdmin(this.h, 'E_INPUT');
    const plan = await planPartitions(this.admin, this.h, this.opts, this.from);
    for (const [k, st] of plan.parts) this.parts.set(k, st);
    this.partitions = plan.refs;
    this.watch = new TopicWatch(this.h, this.opts, plan.topicParts, (e) => this.fail(e), () => this.closed || !!this.fatal);
    await this.startConsumer();
    if (this.fatal) throw this.fatal;
    this.watch.start();
  }

  /** Deleted input topics and changed partition counts fail the source. */
  private watch: TopicWatch | null = null;
  /** Create, subscribe and run a kafkajs consumer (at open, and again after it gave up on a lost broker). */
  private async startConsumer(): Promise<void> {
    const { leftTopic, rightTopic, groupId } = this.opts;
    const nParts = this.parts.size;
    const consumer = this.h.kafka.consumer(consumerConfig(this.opts, nParts, this.opts.beforeRejoin ? (info) => this.beforeJoin(info) : undefined));
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (consumer === this.consumer) this.onGroupJoin(e.payload.memberAssignment);
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (consumer !== this.consumer) return;
      this.crashed = consumer;
      this.onConsumerGaveUp(e.payload.error);
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      // batches made only of control/aborted records never reach eachBatch: move past them too
      const st = this.parts.get(partKey(e.payload.topic, e.payload.partition));
      if (consumer === this.consumer && st && e.payload.batchSize === 0) {
        const next = Number(e.payload.lastOffset) + 1;
        if (next > st.enqueuedNext && st.queuedBatches === 0) { st.enqueuedNext = next; if (st.deliveredNext < next) st.deliveredNext = next; }
      }
    });
    let started!: () => void;
    this.starting = new Promise<void>((r) => { started = r; });
    try {
      await consumer.connect();
      // Partitions without a committed offset start at the earliest offset for kafkajs; the floor
      // computed at open (earliest / latest / time) filters, and the first generation seeks there.
      await consumer.subscribe({ topics: [leftTopic, rightTopic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: nParts,
        eachBatch: (p) => this.onBatch(p),
      });
    } catch (e) {
      if (e instanceof JoineryError) throw e;
      throw new JoineryError('E_INPUT', `starting the Kafka consumer (group ${groupId}) failed: ${errText(e)}`, { cause: e });
    } finally {
      started();
      this.starting = null;
    }
    // run() resolves even when joining failed (kafkajs then crashed the consumer)
    if (this.crashed === consumer) throw new Error('the Kafka consumer crashed while joining the group');
  }

  private restarting = false;
  /** The consumer start in progress (disconnecting during it would orphan kafkajs's Runner). */
  private starting: Promise<void> | null = null;
  /** The last consumer that crashed. */
  private crashed: Consumer | null = null;

  /**
   * kafkajs gave up (a non-retriable crash; a broker that stays away longer than its retries ends
   * that way). Connectivity problems are retried here with a fresh consumer for reconnectTimeoutMs
   * (the queue, positions and pauses carry over, so nothing is delivered twice); anything else, or
   * running out of time, fails the source.
   */
  private onConsumerGaveUp(error: Error): void {
    const groupId = this.opts.groupId;
    if (this.closed || this.restarting) return;
    if (!isReconnectable(error)) {
      this.fail(new JoineryError('E_INPUT', `Kafka consumer of group ${groupId} failed: ${errText(error)}`, { cause: error }));
      return;
    }
    this.restarting = true;
    const budget = this.opts.reconnectTimeoutMs ?? Math.max(60_000, this.h.connectTimeoutMs);
    const deadline = Date.now() + budget;
    void (async () => {
      // a deleted input topic also ends kafkajs's consumer: that is no lost broker
      await this.watch?.check();
      if (this.fatal || this.closed) { this.restarting = false; return; }
      logger.say('warn', `joinery: lost the Kafka broker (${errText(error)}); reconnecting for up to ${formatDurationMs(budget)}`, { code: 'E_INPUT' });
      let delay = 250;
      let last: unknown = error;
      while (!this.closed) {
        const old = this.consumer;
        this.consumer = null;
        await old?.disconnect().catch(() => {});
        try {
          await waitForBroker({ ...this.h, connectTimeoutMs: Math.max(1, deadline - Date.now()) });
          if (this.closed) break; // closed while waiting: a consumer started now would never be stopped
          await this.startConsumer();
          this.stats.reconnects++;
          logger.say('info', 'joinery: reconnected to Kafka');
          this.restarting = false;
          return;
        } catch (e) {
          last = e;
        }
        if (Date.now() >= deadline) break;
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
      this.restarting = false;
      if (!this.closed) this.fail(new JoineryError('E_INPUT', `lost Kafka at ${this.h.brokers.join(',')} and could not reconnect within ${formatDurationMs(budget)}: ${errText(last)}`, { cause: last }));
    })();
  }

  private fail(e: Error): void {
    if (!this.fatal) this.fatal = e;
    this.wake();
    this.wakeSpace();
    this.wakeGeneration();
  }

  private wakeGeneration(): void {
    this.generationWaiters = wakeAll(this.generationWaiters);
  }

  /** Group generations joined so far by this source (0 before the first assignment). */
  get generationSeen(): number {
    return this.generation;
  }

  /** Resolves once a group join after generation `after` has happened (or the source failed or closed). */
  async awaitGeneration(after: number): Promise<number> {
    while (this.generation <= after) {
      if (this.fatal) throw this.fatal;
      if (this.closed) throw new JoineryError('E_INPUT', 'the Kafka source was closed while waiting for its group assignment');
      await new Promise<void>((r) => this.generationWaiters.push(r));
    }
    return this.generation;
  }

  /** The consumer's generation id and member id as of the last join (for fenced offset commits). */
  get membership(): GroupMembership | null {
    return this.joinedAs;
  }

  /**
   * Before a (re-)join: stop delivering, pause fetching, and let the owner commit what it applied
   * — unless this member was evicted (info.evicted): then the owner discards it instead.
   */
  private async beforeJoin(info: BeforeJoinInfo): Promise<void> {
    this.group = info.group;
    if (this.generation === 0 || this.closed) return; // the first join: nothing owned yet
    // The hook's synchronous part runs first: it stops the engine's router, which must know it is
    // stopping before next() starts returning null (else that would read as the end of input).
    const committing = this.opts.beforeRejoin?.({ evicted: info.evicted });
    this.suspend();
    try {
      await committing;
    } catch (e) {
      logger.say('warn', `joinery: committing before re-joining the Kafka group failed: ${errText(e)}`, { code: 'E_INPUT' });
    }
  }

  /**
   * Stop delivering (next() returns null) and fetching until resetTo(): the owner is about to
   * re-plan its state for a new assignment. What is queued stays until resetTo() drops it.
   */
  suspend(): void {
    if (this.suspended) return;
    this.suspended = true;
    const c = this.consumer;
    if (c) {
      try { c.pause([this.opts.leftTopic, this.opts.rightTopic].map((topic) => ({ topic }))); } catch { /* re-applied on the next group join */ }
    }
    this.wake();
    this.wakeSpace();
  }

  interrupt(): void {
    this.interrupted = true;
    this.wake();
  }

  discardPositions(): void {
    this.suspend();
    this.stats.purgedBatches += this.queue.drop(() => true);
    // -1: nothing accepted yet, so whatever kafkajs fetches after the re-join (from the group's
    // committed offsets, or where resetTo seeks) is taken, not dropped as already delivered
    for (const st of this.parts.values()) { st.enqueuedNext = -1; st.deliveredNext = -1; }
    this.wakeSpace();
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  /**
   * Start the current assignment afresh at these positions (next offsets; the group's committed
   * offsets of the checkpoints the state was taken from): drop everything fetched, seek, and
   * deliver again. Partitions of the assignment left out start where the group's committed offset
   * or `from` says (their state is empty).
   */
  resetTo(startOffsets: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>): void {
    const starts = new Map(startOffsets.map((o) => [partKey(o.topic, o.partition), Number(o.offset)]));
    this.startPositions = startOffsets.filter((o) => this.parts.get(partKey(o.topic, o.partition))?.assigned);
    // Partitions given a start: what was fetched of them goes, and they are read again from there.
    // The others keep their queue and positions (fetched in this generation, or past what this
    // member applied), as kafkajs has moved its fetch position past what is queued.
    this.queue.drop((b) => starts.has(partKey(b.kafka.topic, b.kafka.partition)));
    const c = this.consumer;
    for (const [k, st] of this.parts) {
      const start = starts.get(k);
      if (start === undefined) continue;
      st.enqueuedNext = -1;
      st.deliveredNext = -1;
      st.floor = start; st.explicitStart = true; st.committedAtOpen = -1;
      if (!st.assigned || !c) continue;
      try { c.seek({ topic: st.topic, partition: st.partition, offset: String(start) }); } catch (e) {
        this.fail(new JoineryError('E_INPUT', `cannot start ${st.topic}/${st.partition} at offset ${start}: ${errText(e)}`, { cause: e }));
      }
    }
    this.suspended = false;
    this.interrupted = false;
    if (c && !this.ended) {
      const resume = [...this.parts.values()].filter((st) => st.assigned && !st.paused);
      for (const st of resume) { try { c.resume([{ topic: st.topic, partitions: [st.partition] }]); } catch { /* re-applied on the next group join */ } }
    }
    this.idleSince = -1;
    this.lastActivity = Date.now();
    this.wake();
  }

  private onGroupJoin(memberAssignment: Record<string, number[]>): void {
    this.generation++;
    const g = this.group;
    this.joinedAs = g && typeof g.generationId === 'number' && g.generationId >= 0 && g.memberId
      ? { generationId: g.generationId, memberId: g.memberId, groupInstanceId: g.groupInstanceId ?? null } : null;
    if (this.generation > 1) this.stats.rebalances++;
    const now = new Set<string>();
    for (const [topic, ps] of Object.entries(memberAssignment)) for (const p of ps) now.add(partKey(topic, p));
    const assigned: PartitionRef[] = [], revoked: PartitionRef[] = [];
    for (const [k, st] of this.parts) {
      const isNow = now.has(k);
      if (isNow && !st.assigned) assigned.push({ side: st.side, partition: st.partition });
      if (!isNow && st.assigned) revoked.push({ side: st.side, partition: st.partition });
      st.assigned = isNow;
    }
    // Revoked partitions: forget what was fetched but not handed out (the new owner reads it).
    if (revoked.length > 0) {
      this.stats.purgedBatches += this.queue.drop((_b, st) => !st.assigned);
      for (const st of this.parts.values()) if (!st.assigned) st.enqueuedNext = st.deliveredNext;
      this.wakeSpace();
    }
    const c = this.consumer;
    if (c) {
      // A crash-restart of the kafkajs consumer forgets pauses: re-apply ours.
      const pausedTp = [...this.parts.values()].filter((st) => st.assigned && (st.paused || this.ended || this.suspended));
      for (const st of pausedTp) c.pause([{ topic: st.topic, partitions: [st.partition] }]);
      for (const st of this.parts.values()) {
        if (!st.assigned || st.enqueuedNext >= 0) continue;
        // startOffsets: on the first assignment in this process, in any generation (kafkajs would
        // start at the committed offset, which may lie after the requested start)
        if (st.explicitStart) {
          try {
            c.seek({ topic: st.topic, partition: st.partition, offset: String(st.floor) });
          } catch (e) {
            this.fail(new JoineryError('E_INPUT', `cannot start ${st.topic}/${st.partition} at offset ${st.floor}: ${errText(e)}`, { cause: e }));
          }
        } else if (this.generation === 1 && st.committedAtOpen < 0 && st.floor > 0) {
          try { c.seek({ topic: st.topic, partition: st.partition, offset: String(st.floor) }); } catch { /* the floor filter still applies */ }
        }
      }
    }
    this.idleSince = -1;
    this.opts.onAssignment?.({ assigned, revoked, generation: this.generation });
    this.wake();
    this.wakeGeneration();
  }

  private async waitForSpace(p: EachBatchPayload, st: PartState): Promise<boolean> {
    const tooFull = (): boolean => this.queue.tooFull();
    if (!tooFull()) return true;
    this.stats.queueWaits++;
    const beat = Math.max(100, Math.min(1_000, (this.opts.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs) / 3));
    while (tooFull()) {
      if (this.closed || this.fatal || this.ended || this.suspended || !p.isRunning() || p.isStale() || !st.assigned) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, beat);
        this.spaceWaiters.push(() => { clearTimeout(t); r(); });
      });
      // heartbeats keep the group from rebalancing while next() is not called; a rebalance
      // error propagates to kafkajs, which re-joins (this batch is then fetched again)
      await p.heartbeat();
    }
    return !(this.closed || this.fatal || this.ended || this.suspended || !p.isRunning() || p.isStale() || !st.assigned);
  }

  private async onBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    // suspended: not resolved, so fetched again from the reset position
    if (this.closed || this.ended || this.suspended || p.isStale()) return;
    const st = this.parts.get(partKey(batch.topic, batch.partition));
    if (!st || !st.assigned) return;
    const msgs = batch.messages;
    // startOffsets: the first fetch must begin at the requested offset (a later start would skip
    // records); an earlier one is cut by the floor filter below
    const fetchedAt = (batch as unknown as { fetchedOffset?: string | number }).fetchedOffset;
    if (st.explicitStart && st.enqueuedNext < 0 && fetchedAt !== undefined && Number(fetchedAt) > st.floor) {
      this.fail(new JoineryError('E_INPUT', `${st.topic}/${st.partition} was read from offset ${String(fetchedAt)}, not from its start offset ${st.floor}`));
      return;
    }
    if (!(await this.waitForSpace(p, st))) return;
    // Skip what this process already accepted (re-reads after a rebalance or consumer restart) and
    // what lies below the --from start.
    const threshold = Math.max(st.enqueuedNext, st.floor);
    let first = 0;
    if (threshold >= 0 && msgs.length > 0 && offsetOf(msgs[0]) < threshold) {
      while (first < msgs.length && offsetOf(msgs[first]) < threshold) first++;
      this.stats.droppedBelowPosition += first;
    }
    const lastOffset = batch.lastOffset();
    const next = Number(lastOffset) + 1;
    const hw = Number(batch.highWatermark);
    if (hw > st.highSeen) st.highSeen = hw;
    if (first === msgs.length) {
      // Everything is below what this process already has (or below the --from start): move
      // kafkajs's fetch position straight to that point, or it would fetch this range forever.
      p.resolveOffset(String(Math.max(next, threshold) - 1));
      return;
    }
    const kb = copyBatch(this.queue.buffers, st, this.format, msgs, first, lastOffset, batch.highWatermark);
    this.queue.push(st, kb);
    st.enqueuedNext = next;
    this.idleSince = -1;
    this.lastActivity = Date.now();
    p.resolveOffset(lastOffset);
    this.wake();
  }

  /** The next batch of a partition that is not paused; null at the end (exit-when-idle, close). */
  async next(): Promise<KafkaRecordBatch | null> {
    if (this.lastDelivered) { this.queue.buffers.recycle(this.lastDelivered); this.lastDelivered = null; }
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.closed || this.ended || this.suspended || this.interrupted) return null;
      const b = this.take();
      if (b) {
        this.lastDelivered = b;
        this.stats.batches++;
        this.stats.records += b.count;
        this.stats.bytes += b.data.byteLength;
        return b;
      }
      if (this.exitWhenIdleMs > 0) {
        if (await this.idleLongEnough()) {
          this.endInput();
          return null;
        }
        await this.waitForBatch(Math.max(20, Math.min(500, this.exitWhenIdleMs / 5)));
      } else {
        await this.waitForBatch(1_000);
      }
    }
  }

  /** True once every assigned partition has been at its end (position ≥ high watermark) for exitWhenIdleMs. */
  private async idleLongEnough(): Promise<boolean> {
    if (this.generation === 0 || this.closed) return false;
    if (Date.now() - this.lastActivity < Math.min(this.exitWhenIdleMs, 50)) return false;
    const atEnd = await this.allAtEnd();
    if (!atEnd) { this.idleSince = -1; return false; }
    const now = Date.now();
    if (this.idleSince < 0) { this.idleSince = now; return false; }
    return now - this.idleSince >= this.exitWhenIdleMs;
  }

  private async allAtEnd(): Promise<boolean> {
    let admin: Admin;
    try {
      if (!this.admin) { const a = this.h.kafka.admin(); await a.connect(); this.admin = a; }
      admin = this.admin;
    } catch {
      return false;
    }
    const mine = [...this.parts.values()].filter((st) => st.assigned);
    if (mine.some((st) => st.queuedBatches > 0)) return false;
    try {
      return await partitionsAtEnd(admin, this.opts.groupId, mine);
    } catch {
      // broker unavailable: not idle; use a fresh admin client next time
      const a = this.admin;
      this.admin = null;
      void a?.disconnect().catch(() => {});
      return false;
    }
  }

  /** Stop fetching for good (exit-when-idle): pause every partition; commits still work. */
  private endInput(): void {
    this.ended = true;
    const c = this.consumer;
    if (c) {
      try { c.pause([this.opts.leftTopic, this.opts.rightTopic].map((topic) => ({ topic }))); } catch { /* not running */ }
    }
    this.wakeSpace();
  }

  /**
   * Commit next-offsets (offset of the last applied record + 1) for the group. Positions of
   * partitions not assigned to this member any more are skipped (returned), so a late commit
   * never moves another member's partition backwards. Retries through rebalances and reconnects
   * for up to 30 s, then a JoineryError. `metadata` (e.g. a checkpoint id) is stored with every
   * partition's offset; fetchCommittedOffsets returns it.
   */
  async commit(positions: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>, metadata?: string): Promise<{ skipped: number }> {
    const deadline = Date.now() + Math.max(30_000, this.opts.reconnectTimeoutMs ?? Math.max(60_000, this.h.connectTimeoutMs));
    let delay = 100, attempt = 0, warned = false;
    const started = Date.now();
    for (;;) {
      if (this.fatal) throw this.fatal;
      const mine = positions.filter((p) => this.parts.get(partKey(p.topic, p.partition))?.assigned);
      if (mine.length === 0) return { skipped: positions.length };
      try {
        await commitOnce(this.consumer, mine, metadata);
        if (warned) logger.info(`joinery: Kafka offsets for group ${this.opts.groupId} committed after ${attempt + 1} attempts in ${formatDurationMs(Date.now() - started)}`, { attempts: attempt + 1 });
        return { skipped: positions.length - mine.length };
      } catch (e) {
        attempt++;
        // Retried quietly through a short re-join; one warning once it lasts (it holds the checkpoint).
        if (!warned && Date.now() - started >= COMMIT_WARN_AFTER_MS) {
          warned = true;
          logger.warn(`joinery: committing Kafka offsets for group ${this.opts.groupId} still fails after ${formatDurationMs(Date.now() - started)} (retrying until ${formatDurationMs(deadline - started)}): ${errText(e)}`, { code: 'E_INPUT', attempts: attempt });
        } else logger.debug('Kafka offset commit failed, retrying', { group: this.opts.groupId, attempt, error: errText(e) });
        // evicted: no retry makes the coordinator take them (the re-join hook discards the run)
        const evicted = evictionOf(e);
        if (evicted) throw new JoineryError('E_GROUP_EVICTED', `consumer group ${this.opts.groupId} refused this member's offsets (${evicted}): it was evicted from the group`, { cause: e });
        if (Date.now() >= deadline) {
          throw new JoineryError('E_INPUT', `committing Kafka offsets for group ${this.opts.groupId} failed: ${errText(e)}`, { cause: e });
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /**
   * Stop the consumer and leave the group. Returns within about 2 s (CLOSE_WAIT_MS): with the broker
   * gone, kafkajs's disconnect() (and a consumer start in progress) only return once kafkajs's
   * own connection retries run out, 5 to 25 s later; the rest of the stop then goes on in the
   * background, where nothing is delivered or committed any more (closed is set).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watch?.stop();
    this.wake();
    this.wakeSpace();
    this.wakeGeneration();
    const CLOSE_WAIT_MS = 2_000;
    const stopped = (async () => {
      // a consumer that is still joining cannot be stopped (disconnect() would skip kafkajs's
      // Runner, which then fetches on): let it finish joining first
      for (let i = 0; this.starting && i < 10; i++) await this.starting;
      const c = this.consumer, a = this.admin, m = this.watch?.releaseAdmin();
      this.consumer = null;
      this.admin = null;
      await Promise.allSettled([c?.disconnect(), a?.disconnect(), m?.disconnect()]);
    })();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      stopped.then(() => true),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(false), CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(timer);
    if (this.ownsClient) {
      // Destroying the sockets also ends requests stuck on a half-dead broker (30 s request
      // timeout); whatever the background stop opens afterwards is closed when it ends.
      closeKafka(this.h);
      if (!inTime) void stopped.then(() => closeKafka(this.h));
    }
    this.queue.clear();
  }
}

