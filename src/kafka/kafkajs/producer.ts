/**
 * The kafkajs producer behind both sinks: an idempotent producer to one topic with its own
 * batching, one produce request in flight, retried through broker restarts, then a
 * JoineryError('E_OUTPUT') — never a silent drop. With a transactional id it writes in Kafka
 * transactions and commits consumer-group offsets with them (exactly-once output).
 */
import type * as KafkaJS from 'kafkajs';
import type { Admin, Message, Producer } from 'kafkajs';
import { JoineryError, usageError } from '../../core/errors.js';
import { log as logger } from '../../core/log.js';
import { formatDurationMs } from '../../core/units.js';
import type { GroupMembership, KafkaProducerOptions, TopicInfo, TransactionOffset } from '../port.js';
import { asHandle, connectedAdmin, createKafka, closeKafka, DEFAULT_CONNECT_TIMEOUT_MS, waitForBroker, type KafkaHandle } from './client.js';
import { describeFromClusterMetadata, describeWith, ensureTopics } from './admin.js';
import { errText, evictionOf, isConnectivityError, isRetriableTxnError, sleep } from './errors.js';
import { GROUP_MEMBERSHIP } from './txn-offset-commit.js';
import { kafkajs, partitionForKey } from './patches.js';

const { CompressionTypes } = kafkajs;
type CompressionTypes = KafkaJS.CompressionTypes;

/**
 * An idempotent producer to one topic with its own batching: records accumulate; a send goes out
 * once batchRecords are waiting or lingerMs has passed; exactly one send is in flight (kafkajs
 * assigns idempotence sequence numbers per request, and a later request overtaking a failed one
 * could be de-duplicated away by the broker), and whatever arrived meanwhile goes in the next one.
 * A send that still fails after kafkajs's retries makes the sink failed: every later call throws
 * that JoineryError('E_OUTPUT').
 */
export class BatchingProducer {
  private producer: Producer | null = null;
  /** Transactional mode: the transactional id (null = plain idempotent producer). */
  readonly txnId: string | null;
  /** The open kafkajs transaction; begun by the first send after a commit (or by a commit of offsets only). */
  private tx: KafkaJS.Transaction | null = null;
  /** Records ever added to / taken from `pending` (sent or dropped): position i of pending is record taken + i. */
  private added = 0;
  private taken = 0;
  /**
   * Transaction ends requested and not finished, oldest first: `at` = records added when
   * commitTransaction / abortTransaction / close was called. Records from `at` on belong to the
   * next transaction, so nothing past the first boundary is sent until its operation is done; an
   * abort's records are not sent at all (they are dropped).
   */
  private boundaries: Array<{ at: number; abort: boolean }> = [];
  /** Serialises commitTransaction / abortTransaction / flush / close in transactional mode. */
  private txnChain: Promise<unknown> = Promise.resolve();
  private pending: Message[] = [];
  /** Key+value bytes of `pending`, and of the send in flight. */
  private pendingBytes = 0;
  private inflightBytes = 0;
  private inflight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private firstPendingAt = 0;
  private error: JoineryError | null = null;
  private readonly h: KafkaHandle;
  private readonly ownsClient: boolean;
  private readonly compression: CompressionTypes;
  private readonly batchRecords: number;
  private readonly lingerMs: number;
  private readonly maxSendRecords: number;
  private readonly maxBatchBytes: number;
  private readonly highWater: number;
  private readonly highWaterBytes: number;
  /** Partitions of the topic (learned at start); records get explicit partitions. */
  private nParts = 1;
  private rr = 0;
  private partBytes = new Float64Array(1);
  private readyWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  readonly stats = { records: 0, bytes: 0, sends: 0, commits: 0, aborts: 0 };

  constructor(readonly opts: KafkaProducerOptions) {
    this.txnId = opts.transactionalId ?? null;
    if (this.txnId !== null && this.txnId.trim() === '') throw usageError('transactionalId: must not be empty');
    this.ownsClient = !opts.kafka;
    this.h = opts.kafka ? asHandle(opts.kafka) : createKafka(opts.brokers, opts.clientId ?? 'joinery', { connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
    const comp = opts.compression ?? 'none';
    if (comp !== 'none' && comp !== 'gzip') throw usageError(`--compression: must be none or gzip (got ${JSON.stringify(comp)})`);
    this.compression = comp === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
    this.batchRecords = Math.max(1, opts.batchRecords ?? 1000);
    this.lingerMs = Math.max(0, opts.lingerMs ?? 20);
    this.maxSendRecords = Math.max(this.batchRecords, opts.maxSendRecords ?? 16_384);
    this.maxBatchBytes = Math.max(1024, opts.maxBatchBytes ?? 900 * 1024);
    this.highWater = Math.max(this.maxSendRecords, opts.highWaterRecords ?? 65_536);
    this.highWaterBytes = Math.max(1, opts.highWaterBytes ?? 32 * 1024 * 1024);
  }

  /**
   * Connect, find or create the topic, connect the producer and (transactional mode) fence earlier
   * producers with this id. A broker that restarts meanwhile fails any of these steps, and not
   * only the first probe: the whole sequence is retried with backoff (100 ms doubling to 2 s) for
   * the connect timeout, as the source does, then reported with the address and topic. Errors that
   * another attempt cannot cure (a missing topic, a fenced id) fail at once.
   */
  async start(): Promise<void> {
    const { topic } = this.opts;
    const startedAt = Date.now();
    const deadline = startedAt + this.h.connectTimeoutMs;
    let delayMs = 100;
    let last: unknown = null;
    let lastStep = 'connecting';
    try {
      for (;;) {
        const step = { what: 'connecting' };
        try {
          await this.startOnce(deadline, step);
          return;
        } catch (e) {
          await this.producer?.disconnect().catch(() => {});
          this.producer = null;
          // kafkajs answers a metadata request cut by a restarting broker with a TypeError from its
          // own code (a null response destructured); like a lost connection, another attempt cures it.
          if (!isRetriableTxnError(e) && !(e instanceof TypeError)) {
            if (e instanceof JoineryError && e.message.includes(topic)) throw e;
            const code = e instanceof JoineryError ? e.code : 'E_OUTPUT';
            throw new JoineryError(code, `Kafka output topic ${topic} on ${this.h.brokers.join(',')}: ${step.what} failed: ${errText(e)}`, { cause: e });
          }
          last = e;
          lastStep = step.what;
        }
        const leftMs = deadline - Date.now();
        if (leftMs <= 0) break;
        await sleep(Math.min(delayMs, leftMs));
        delayMs = Math.min(delayMs * 2, 2_000);
      }
    } catch (e) {
      if (this.ownsClient) closeKafka(this.h);
      throw e;
    }
    if (this.ownsClient) closeKafka(this.h);
    // waitForBroker's own error already says "cannot reach…": report what it was given up on
    const root = last instanceof JoineryError && last.cause !== undefined ? last.cause : last;
    throw new JoineryError('E_OUTPUT', `Kafka output topic ${topic}: cannot reach Kafka at ${this.h.brokers.join(',')} (${lastStep}: ${errText(root)}; ` +
      `retried for ${formatDurationMs(Date.now() - startedAt)}; is the broker running? check --brokers and --connect-timeout)`, { cause: last });
  }

  /** One attempt of start(); `step.what` says how far it got, for the error message. */
  private async startOnce(deadline: number, step: { what: string }): Promise<void> {
    const { topic } = this.opts;
    // every wait inside an attempt ends with the whole start's time
    const h: KafkaHandle = { ...this.h, connectTimeoutMs: Math.max(1, deadline - Date.now()) };
    await waitForBroker(h, 'E_OUTPUT');
    if (this.opts.createPartitions) {
      step.what = `creating the topic (${this.opts.createPartitions} partitions) if missing`;
      const [t] = await ensureTopics(h, [{ topic, partitions: this.opts.createPartitions }], { code: 'E_OUTPUT' });
      this.nParts = t.partitions;
    } else {
      step.what = 'looking the topic up';
      const admin = await connectedAdmin(h, 'E_OUTPUT');
      try {
        const [t] = await describeWith(admin, [topic]);
        if (!t.exists) throw new JoineryError('E_OUTPUT', `output Kafka topic "${topic}" does not exist on ${this.h.brokers.join(',')}; create it first`);
        this.nParts = t.partitions;
      } finally {
        await admin.disconnect().catch(() => {});
      }
    }
    this.partBytes = new Float64Array(Math.max(1, this.nParts));
    const retries = this.opts.retries ?? 10;
    step.what = 'connecting the producer';
    const producer = this.h.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner, // partitions are set explicitly (partitionForKey) anyway
      retry: { retries, initialRetryTime: 200, maxRetryTime: 5_000 },
      ...(this.txnId !== null ? { transactionalId: this.txnId, transactionTimeout: this.opts.transactionTimeoutMs ?? 60_000 } : {}),
    });
    this.producer = producer;
    await producer.connect();
    if (this.txnId !== null) {
      // InitProducerId now rather than at the first write: it bumps the id's epoch, which fences
      // every earlier producer with this id and makes the coordinator abort its open transaction
      // (kafkajs retries CONCURRENT_TRANSACTIONS while that abort completes). An empty kafkajs
      // transaction sends nothing on commit.
      step.what = 'initialising transactions (fencing earlier producers with this id)';
      try {
        await this.retryTxn(async () => { const t = await producer.transaction(); await t.commit(); }, deadline);
      } catch (e) {
        // a retriable error is start()'s to retry; anything else is final and gets the txn wording
        throw isRetriableTxnError(e) ? e : this.txnError(step.what, e);
      }
    }
  }

  private txnError(what: string, e: unknown): JoineryError {
    if (e instanceof JoineryError) return e;
    let fenced = false;
    for (let x: unknown = e, d = 0; x && d < 8; d++, x = (x as { cause?: unknown }).cause) {
      const t = (x as { type?: string }).type, m = (x as Error).message ?? '';
      if (t === 'INVALID_PRODUCER_EPOCH' || /error code 90\b|fenced/i.test(m)) fenced = true;
    }
    const hint = fenced ? ' (fenced: another producer with the same transactional id started, or the broker aborted the transaction after transactionTimeoutMs)' : '';
    return new JoineryError('E_OUTPUT', `Kafka transaction ${JSON.stringify(this.txnId)} on topic ${this.opts.topic}: ${what} failed: ${errText(e)}${hint}`, { cause: e });
  }

  /** Retry a transactional call on retriable errors and lost connections for reconnectTimeoutMs (or until `deadline`). */
  private async retryTxn<T>(fn: () => Promise<T>, deadline = Date.now() + (this.opts.reconnectTimeoutMs ?? 60_000),
    beforeRetry?: (e: unknown) => Promise<void>): Promise<T> {
    let delay = 100;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!isRetriableTxnError(e) || Date.now() >= deadline || this.closed) throw e;
        await beforeRetry?.(e);
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /** Run `fn` after every earlier transactional operation (commit, abort, flush, close) ended. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.txnChain.then(fn, fn);
    this.txnChain = run.catch(() => {});
    return run;
  }

  /** Records that may be sent now: before a pending commit only that transaction's, before an abort none. */
  private sendable(): number {
    const b = this.boundaries[0];
    if (!b) return this.pending.length;
    return b.abort ? 0 : Math.max(0, Math.min(this.pending.length, b.at - this.taken));
  }

  /** Wait until everything sendable is acknowledged (or the sink failed). */
  private drain(): Promise<void> {
    return new Promise<void>((r) => { this.idleWaiters.push(r); this.pump(true); });
  }

  /** Queue a transaction end (synchronously, so later writes fall after it) and run `fn` in turn. */
  private endTransaction<T>(abort: boolean, fn: () => Promise<T>): Promise<T> {
    const b = { at: this.added, abort };
    this.boundaries.push(b);
    return this.serial(async () => {
      try {
        return await fn();
      } finally {
        const i = this.boundaries.indexOf(b);
        if (i >= 0) this.boundaries.splice(i, 1);
        this.pump(false);
      }
    });
  }

  /**
   * Transactional mode: send every record written before this call, add the group's offsets
   * (each partition with `metadata`) to the same transaction, commit it. Records written while
   * this runs go to the next transaction. Nothing to do without records and offsets. Any failure
   * fails the sink (a JoineryError naming the topic and the transactional id; retriable errors are
   * retried first): the transaction's outcome is then settled by the next producer opened with the
   * same id — committed if EndTxn reached the coordinator, else aborted — and
   * fetchCommittedOffsets' metadata tells which checkpoint committed last.
   *
   * `membership` (a group member's generation and member id) goes with the offsets (TxnOffsetCommit
   * v3, patch txn-offset-fence): the group coordinator refuses them once this member was evicted
   * from the group (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID). That is no failure
   * of the sink: the transaction is aborted (its records never become visible; another member
   * redoes that work) and JoineryError('E_GROUP_EVICTED') is thrown; the sink stays usable.
   * An eviction after the offsets were accepted and before EndTxn (a stall right there) is left to
   * the new owner's stable read (fetchCommittedOffsets requireStable, patch offset-fetch-stable): it
   * waits until this transaction commits or is aborted. Not covered: a transaction without offsets
   * (nothing for the group to check).
   */
  commitTransaction(groupId: string, offsets: readonly TransactionOffset[], metadata: string, membership?: GroupMembership | null): Promise<void> {
    if (this.txnId === null) return Promise.reject(usageError(`Kafka sink ${this.opts.topic}: commitTransaction needs transactionalId`));
    if (this.closed) return Promise.reject(new JoineryError('E_OUTPUT', `Kafka sink ${this.opts.topic} is closed`));
    return this.endTransaction(false, async () => {
      if (this.error) throw this.error;
      if (this.closed || !this.producer) throw new JoineryError('E_OUTPUT', `Kafka sink ${this.opts.topic} is closed`);
      const producer = this.producer;
      let step = `sending the transaction's records`;
      try {
        await this.drain();
        if (this.error) throw this.error;
        if (!this.tx && offsets.length === 0) return;
        step = 'beginning a transaction';
        if (!this.tx) this.tx = await this.retryTxn(() => producer.transaction());
        const tx = this.tx;
        if (offsets.length > 0) {
          step = `adding the offsets of consumer group ${groupId} to the transaction`;
          const byTopic = new Map<string, Array<{ partition: number; offset: string; metadata: string }>>();
          for (const o of offsets) {
            let list = byTopic.get(o.topic);
            if (!list) byTopic.set(o.topic, list = []);
            list.push({ partition: o.partition, offset: String(o.offset), metadata });
          }
          const topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string; metadata: string }> }> & { [GROUP_MEMBERSHIP]?: GroupMembership } =
            [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
          // kafkajs passes the array and each partition's metadata through to TxnOffsetCommit as they are
          if (membership) topics[GROUP_MEMBERSHIP] = membership;
          try {
            await this.retryTxn(() => tx.sendOffsets({ consumerGroupId: groupId, topics }), undefined, (e) => this.offsetTopicsExist(e, topics.map((t) => t.topic)));
          } catch (e) {
            const evicted = membership ? evictionOf(e) : null;
            if (!evicted) throw e;
            await this.abortEvicted(tx, groupId, membership!, evicted);
          }
        }
        step = 'committing';
        await this.checkTopic();
        await tx.commit(); // EndTxn is retried by the txn-retry patch (patches.ts)
        this.tx = null;
        this.stats.commits++;
      } catch (e) {
        if (e instanceof JoineryError && e.code === 'E_GROUP_EVICTED') throw e; // aborted; the sink goes on
        const err = this.txnError(step, e);
        if (!this.error) this.error = err;
        this.notifyReady();
        this.notifyIdle();
        throw err;
      }
    });
  }

  /** The group refused this member's offsets (evicted): abort the transaction, throw E_GROUP_EVICTED; the sink stays usable. */
  private async abortEvicted(tx: KafkaJS.Transaction, groupId: string, m: GroupMembership, type: string): Promise<never> {
    this.tx = null;
    try {
      if (tx.isActive()) { await tx.abort(); this.stats.aborts++; }
    } catch (e) {
      // the coordinator aborts it on the transaction timeout, or the next producer with this id does
      logger.say('warn', `joinery: aborting transaction ${JSON.stringify(this.txnId)} after the group refused its offsets failed: ${errText(e)}`, { code: 'E_OUTPUT' });
    }
    throw new JoineryError('E_GROUP_EVICTED', `consumer group ${groupId} refused the offsets of member ${m.memberId} (generation ${m.generationId}): ${type}; ` +
      `this member was evicted from the group (it stalled longer than the session timeout), so transaction ${JSON.stringify(this.txnId)} was aborted`);
  }

  /**
   * Transactional mode: drop the records written since the last commit (queued ones are never
   * sent) and abort the open transaction, so none of them becomes visible to read_committed
   * consumers. The sink stays usable unless it had failed (then its error is thrown).
   */
  abortTransaction(): Promise<void> {
    if (this.txnId === null) return Promise.reject(usageError(`Kafka sink ${this.opts.topic}: abortTransaction needs transactionalId`));
    return this.endTransaction(true, async () => {
      await this.abortOpen();
      if (this.error) throw this.error;
    });
  }

  /** Run as the operation of an abort boundary: drop that transaction's unsent records, abort it. */
  private async abortOpen(): Promise<void> {
    const b = this.boundaries[0];
    const drop = Math.min(this.pending.length, b ? Math.max(0, b.at - this.taken) : this.pending.length);
    if (drop > 0) {
      for (let i = 0; i < drop; i++) this.pendingBytes -= messageBytes(this.pending[i]);
      this.pending = drop === this.pending.length ? [] : this.pending.slice(drop);
      this.taken += drop;
    }
    this.notifyReady();
    await this.drain(); // the send in flight, if any
    const tx = this.tx;
    this.tx = null;
    if (!tx || !tx.isActive()) return;
    try {
      await tx.abort(); // EndTxn is retried by the txn-retry patch (patches.ts)
      this.stats.aborts++;
    } catch (e) {
      const err = this.txnError('aborting', e);
      if (!this.error) this.error = err;
      throw err;
    }
  }

  get failed(): JoineryError | null {
    return this.error;
  }

  get buffered(): number {
    return this.pending.length;
  }

  /** Key+value bytes held: buffered records and the send in flight. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.inflightBytes;
  }

  private full(): boolean {
    return this.pending.length >= this.highWater || this.pendingBytes + this.inflightBytes >= this.highWaterBytes;
  }

  /** Queue one record; false when the caller should await ready() before adding more. */
  add(key: Buffer | null, value: Buffer): boolean {
    if (this.error) throw this.error;
    if (this.closed) throw new JoineryError('E_OUTPUT', `Kafka sink ${this.opts.topic} is closed`);
    if (this.pending.length === 0) this.firstPendingAt = Date.now();
    // the partition kafkajs's default partitioner would choose (murmur2 of the key; round-robin without one)
    const partition = key !== null ? partitionForKey(key, this.nParts) : (this.rr++ % this.nParts);
    this.pending.push({ key, value, partition });
    this.added++;
    this.pendingBytes += value.length + (key ? key.length : 0);
    this.stats.records++;
    this.stats.bytes += value.length;
    this.pump(false);
    return !this.full();
  }

  /** Resolves when buffered records and bytes drop below their high-water marks; rejects once the sink failed. */
  ready(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (!this.full()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.readyWaiters.push(() => (this.error ? reject(this.error) : resolve())));
  }

  private pump(force: boolean): void {
    if (this.error || !this.producer) { this.notifyIdle(); return; }
    if (this.inflight) return;
    const n = this.sendable();
    if (n === 0) { this.notifyIdle(); return; }
    if (this.boundaries.length > 0) force = true; // a commit waits for these
    const lingered = Date.now() - this.firstPendingAt >= this.lingerMs;
    if (!force && n < this.batchRecords && !lingered) {
      if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this.pump(false); }, Math.max(1, this.lingerMs - (Date.now() - this.firstPendingAt)));
      return;
    }
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    // up to maxSendRecords, and up to maxBatchBytes for any one partition
    const limit = Math.min(n, this.maxSendRecords);
    const pb = this.partBytes;
    pb.fill(0);
    let take = 0;
    for (; take < limit; take++) {
      const m = this.pending[take];
      const sz = (m.value as Buffer).length + (m.key ? (m.key as Buffer).length : 0) + 24;
      const p = m.partition!;
      if (take > 0 && pb[p] + sz > this.maxBatchBytes) break;
      pb[p] += sz;
    }
    const all = take === this.pending.length;
    const messages = all ? this.pending : this.pending.slice(0, take);
    this.pending = all ? [] : this.pending.slice(take);
    this.taken += take;
    if (this.pending.length > 0) this.firstPendingAt = Date.now();
    let bytes = 0;
    for (const m of messages) bytes += messageBytes(m);
    this.pendingBytes -= bytes;
    this.inflightBytes = bytes;
    this.inflight = this.send(messages);
  }

  /**
   * One produce request, resent as it is while the broker is unreachable (up to reconnectTimeoutMs
   * from the first failure): the identical request again first keeps the idempotent producer's
   * sequence numbers, so a batch the broker had already written is de-duplicated, not doubled.
   * Any other error, or running out of time, fails the sink.
   */
  private async send(messages: Message[]): Promise<void> {
    const budget = this.opts.reconnectTimeoutMs ?? 60_000;
    let firstFailure = 0;
    let delay = 250;
    let warned = false;
    for (;;) {
      const producer = this.producer;
      try {
        if (!producer) throw new Error('producer closed');
        // transactional mode: the first send after a commit begins the next transaction
        if (this.txnId !== null && !this.tx) this.tx = await producer.transaction();
        this.stats.sends++;
        await (this.tx ?? producer).send({ topic: this.opts.topic, messages, acks: -1, compression: this.compression });
        if (warned) logger.say('info', `joinery: Kafka reachable again; writing to ${this.opts.topic} resumed`);
        this.inflight = null;
        this.inflightBytes = 0;
        this.notifyReady();
        this.pump(this.flushing > 0);
        return;
      } catch (e) {
        const now = Date.now();
        if (firstFailure === 0) firstFailure = now;
        if (producer && isConnectivityError(e) && now - firstFailure < budget && !this.closed) {
          if (!warned) {
            warned = true;
            logger.say('warn', `joinery: cannot reach Kafka to write ${this.opts.topic} (${errText(e)}); retrying for up to ${formatDurationMs(budget)}`, { code: 'E_OUTPUT' });
          }
          await sleep(delay);
          delay = Math.min(delay * 2, 2_000);
          continue;
        }
        this.inflight = null;
        this.inflightBytes = 0;
        this.error = this.txnId !== null ? this.txnError(`writing ${messages.length} records`, e)
          : new JoineryError('E_OUTPUT', `writing ${messages.length} records to Kafka topic ${this.opts.topic} failed after retries: ${errText(e)}`, { cause: e });
        this.notifyReady();
        this.notifyIdle();
        return;
      }
    }
  }

  private flushing = 0;

  private notifyReady(): void {
    if (this.full() && !this.error) return;
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const f of w) f();
  }

  private notifyIdle(): void {
    if (!this.error && (this.inflight || this.sendable() > 0)) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /**
   * Send everything buffered and wait for the broker's acknowledgement (transactional mode: into
   * the open transaction, not committed).
   */
  async flush(): Promise<void> {
    if (this.txnId !== null) return this.serial(() => this.flushNow());
    return this.flushNow();
  }

  private async flushNow(): Promise<void> {
    if (this.error) throw this.error;
    if (!this.inflight && this.pending.length === 0) { if (this.stats.records > 0) await this.checkTopic(); return; }
    this.flushing++;
    try {
      await new Promise<void>((r) => { this.idleWaiters.push(r); this.pump(true); });
    } finally {
      this.flushing--;
    }
    if (this.error) throw this.error;
    await this.checkTopic();
  }

  private admin: Admin | null = null;

  /** A deleted input topic makes committing its offsets fail as "retriable" for good: say so at once. */
  private async offsetTopicsExist(e: unknown, topics: string[]): Promise<void> {
    if (!/does not host this topic-partition|UNKNOWN_TOPIC/i.test(`${errText(e)} ${(e as { type?: string }).type ?? ''}`)) return;
    let info: TopicInfo[];
    try {
      if (!this.admin) { const a = this.h.kafka.admin({ retry: { retries: 1 } }); await a.connect(); this.admin = a; }
      info = await describeFromClusterMetadata(this.admin, topics);
    } catch {
      return;
    }
    const gone = info.find((t) => !t.exists);
    if (gone) throw new JoineryError('E_INPUT', `Kafka input topic "${gone.topic}" no longer exists on ${this.h.brokers.join(',')}: its consumer offsets cannot be committed (it was deleted while the run was reading it)`);
  }

  /**
   * The output topic still exists (admin metadata), else the sink fails with E_OUTPUT naming it:
   * records acknowledged before a topic is deleted raise no error anywhere, so a run would end
   * with a success summary for output that is gone. Checked at every commit and flush; an
   * unreachable broker is left to the writes and commits themselves.
   */
  private async checkTopic(): Promise<void> {
    const { topic } = this.opts;
    let exists = true;
    try {
      if (!this.admin) { const a = this.h.kafka.admin({ retry: { retries: 1 } }); await a.connect(); this.admin = a; }
      exists = (await describeFromClusterMetadata(this.admin, [topic]))[0].exists;
    } catch {
      const a = this.admin;
      this.admin = null;
      void a?.disconnect().catch(() => {});
    }
    if (exists) return;
    const err = new JoineryError('E_OUTPUT', `Kafka output topic "${topic}" no longer exists on ${this.h.brokers.join(',')}: it was deleted while the run wrote to it, so output written to it is lost`);
    if (!this.error) this.error = err;
    this.notifyReady();
    this.notifyIdle();
    throw this.error;
  }

  /**
   * Plain mode: flush, then disconnect (throws if records could not be written). Transactional
   * mode: abort the open transaction (records not committed are discarded; if the abort fails,
   * the next producer with this id or the transaction timeout aborts it), then disconnect.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    let err: unknown = null;
    if (this.txnId !== null) await this.endTransaction(true, () => this.abortOpen()).catch(() => {});
    else try { await this.flush(); } catch (e) { err = e; }
    this.closed = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    await this.admin?.disconnect().catch(() => {});
    this.admin = null;
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
    if (this.ownsClient) closeKafka(this.h);
    if (err) throw err;
  }
}

function messageBytes(m: Message): number {
  return (m.value as Buffer).length + (m.key ? (m.key as Buffer).length : 0);
}

