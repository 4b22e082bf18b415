/**
 * The Kafka layer: the only file that imports kafkajs (2.2.4, unmaintained since 2023, so it stays
 * behind joinery's own Source / sink interfaces and can be swapped).
 *
 * - createKafka / waitForBroker / closeKafka: one client per process; kafkajs logs become compact
 *   one-line stderr messages at WARN and above (retriable protocol errors, rebalances and the like
 *   are demoted to INFO; identical lines at most every 10 s); an unreachable broker is retried with
 *   backoff for the connect timeout, then reported with the address tried.
 * - KafkaSource: two topics (left → side 0, right → side 1) read by one consumer group with
 *   eachBatch and no auto-commit; the engine commits through commit() once records are applied.
 *   A co-partitioned group assignment keeps partition p of both topics on one member.
 * - KafkaRecordSink (joined output, keyed) and KafkaLineSink (kafka:TOPIC for --late-out and
 *   --dead-letter): an idempotent producer, batched, one produce request in flight, retried
 *   through broker restarts, then a JoineryError('E_OUTPUT') — never a silent drop.
 * - Exactly-once output: KafkaRecordSink with `transactionalId` writes in Kafka transactions;
 *   commitTransaction(groupId, offsets, metadata) commits the records written so far together
 *   with the input's consumer-group offsets, each carrying `metadata` (a checkpoint id), so a
 *   restart finds output, input positions and checkpoint id from one atomic commit
 *   (fetchCommittedOffsets). KafkaSource `startOffsets` resumes partitions exactly there.
 * - ensureTopics / describeTopics / deleteTopics / topicOffsets / groupOffsets /
 *   fetchCommittedOffsets: admin (the tests' readTopic / produceRaw live in test/kafka/topic-io.ts).
 *
 * Exactly-once bookkeeping of the source (rebalances, consumer restarts, broker restarts): kafkajs
 * re-reads a partition from its last *committed* offset after every rebalance and every consumer
 * restart, and the engine commits only after applying, so records already handed out would come
 * again. The source keeps, per partition, the next offset accepted into its queue (`enqueuedNext`)
 * and the next offset handed to the router (`deliveredNext`); fetched records below `enqueuedNext`
 * are dropped and kafkajs's fetch position is moved past them. On a group join, queued batches of
 * revoked partitions (fetched, not yet handed out) are removed — the new owner reads them from the
 * committed offset — and `enqueuedNext` falls back to `deliveredNext`, so a partition that comes
 * back to this process continues exactly after what was routed. Within one process nothing is
 * delivered twice. What kafkajs cannot give (it has no revoke callback before re-joining): records
 * of a revoked partition that were routed here but not yet committed are read again by the new
 * owner, i.e. across processes the duplicate window is "routed but not committed" (commit often;
 * onAssignment reports every change). commit() only commits partitions assigned to this member,
 * so a late commit never moves another member's partition backwards.
 *
 * Three kafkajs 2.2.4 defects are worked around here (see loadKafkajs and closeKafka): quadratic
 * grouping of a send's messages by partition, transaction-coordinator requests (EndTxn,
 * AddOffsetsToTxn) sent once without retry, and a connection orphaned by a broker restart that
 * keeps the process alive after disconnect().
 */
import { createRequire } from 'node:module';
import * as net from 'node:net';
import type * as KafkaJS from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, LogEntry, Message, PartitionAssigner, Producer } from 'kafkajs';
import { JoineryError, usageError, type ErrorCode } from '../core/errors.js';
import { log as logger, type LogLevel } from '../core/log.js';
import { formatDurationMs } from '../core/units.js';
import type { LineSink } from '../sink/sink.js';
import type { SourcePosition } from '../checkpoint/manifest.js';
import type { PartitionPosition, PartitionRef, RecordBatch, Source } from '../source/source.js';
import type { Side } from '../state/store.js';
import { fastCodecEnabled, fastCodecReplaced, installFastCodec } from './fast-codec.js';
import { log } from '../core/log.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

// ---------------------------------------------------------------------------------------------
// Loading kafkajs, with its patches (each one checked at start: checkKafkajsPatches)

const requireCjs = createRequire(import.meta.url);

/**
 * The patches below, by name. Each is checked at start (checkKafkajsPatches): a patch that did not
 * install is reported, never silently dropped, and group-member mode refuses to run without
 * 'rejoin' (its exactly-once across a rebalance depends on it).
 * JOINERY_KAFKAJS_SKIP_PATCH=NAME[,NAME] leaves patches out on purpose (to bisect, and for the test
 * of that refusal); JOINERY_KAFKAJS_FAST=0 / JOINERY_FAST_SKIP govern 'fast-codec' (fast-codec.ts).
 */
export type KafkajsPatchName = 'group-messages' | 'txn-retry' | 'fast-codec' | 'rejoin';
const PATCH_NAMES: readonly KafkajsPatchName[] = ['group-messages', 'txn-retry', 'fast-codec', 'rejoin'];
const skippedPatches = new Set((process.env.JOINERY_KAFKAJS_SKIP_PATCH ?? '').split(',').map((x) => x.trim()).filter(Boolean));
/** Why a patch is not installed ('skipped …' when left out on purpose); absent once installed. */
const patchFailures = new Map<KafkajsPatchName, string>();
/** What each installed patch put in place, to verify at start that it is still there. */
let groupMessagesReplacement: unknown;
let eosManagerReplacement: unknown;

function installPatch(name: KafkajsPatchName, install: () => string | undefined): void {
  if (skippedPatches.has(name)) { patchFailures.set(name, 'skipped (JOINERY_KAFKAJS_SKIP_PATCH)'); return; }
  try {
    const failure = install();
    if (failure) patchFailures.set(name, failure);
  } catch (e) {
    patchFailures.set(name, errText(e));
  }
}

/**
 * kafkajs 2.2.4 groups a send's messages by partition with `[...current, message]` per message,
 * which is quadratic in the records per partition: a 16k-record send spent most of its CPU copying
 * arrays (57k rec/s; 101k rec/s with the linear version below, same result). The module is a pure
 * function required by sendMessages.js at load time, so it is replaced in the require cache before
 * kafkajs itself loads (kafkajs is therefore loaded with require, not a static import). If the
 * file is missing or does not look as expected, kafkajs runs unpatched (reported at start).
 */
function loadKafkajs(): typeof KafkaJS {
  installPatch('group-messages', () => {
    const path = requireCjs.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
    if (path in requireCjs.cache) return 'kafkajs/src/producer/groupMessagesPerPartition.js was loaded before the patch';
    const original = requireCjs(path) as unknown;
    const mod = requireCjs.cache[path];
    if (typeof original !== 'function' || original.length !== 1 || !mod) return 'kafkajs/src/producer/groupMessagesPerPartition.js does not export the expected function';
    mod.exports = groupMessagesReplacement = ({ topic, partitionMetadata, messages, partitioner }: {
      topic: string; partitionMetadata: unknown[]; messages: unknown[];
      partitioner: (a: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
    }): Record<number, unknown[]> => {
      const result: Record<number, unknown[]> = {};
      if (partitionMetadata.length === 0) return result;
      for (const message of messages) {
        const partition = partitioner({ topic, partitionMetadata, message });
        (result[partition] ??= []).push(message);
      }
      return result;
    };
    return undefined;
  });
  installPatch('txn-retry', patchTransactionCoordinatorRetries);
  if (!fastCodecEnabled) patchFailures.set('fast-codec', 'turned off (JOINERY_KAFKAJS_FAST=0)');
  else installPatch('fast-codec', () => {
    if (!installFastCodec(requireCjs)) return 'kafkajs protocol modules were loaded before the patch or do not look as expected';
    return fastCodecReplaced(requireCjs).length > 0 ? undefined : 'skipped (JOINERY_FAST_SKIP leaves out every part)';
  });
  installPatch('rejoin', patchRejoinHook);
  return requireCjs('kafkajs') as typeof KafkaJS;
}

/** Property of a partition assigner instance holding its source's before-re-join hook. */
const BEFORE_JOIN = Symbol('joinery.beforeJoin');
/** The joinAndSync this patch installed (checked at start: still on the prototype). */
let rejoinJoinAndSync: unknown;

/**
 * kafkajs has no "partitions revoked" callback: on a rebalance its runner calls
 * ConsumerGroup.joinAndSync at once, and the partitions may go to another member. A member whose
 * join buffer and output are not yet committed for them must commit first (what the Java client's
 * onPartitionsRevoked is for; the coordinator accepts commits of the current generation until the
 * member re-joins, within the rebalance timeout). This patch awaits a hook before every
 * joinAndSync of a consumer whose assigner carries one (KafkaSource's, per consumer): the source
 * stops delivering and the engine takes its checkpoint there. A failing hook does not stop the
 * join (the source then fails on its own).
 */
function patchRejoinHook(): string | undefined {
  if (rejoinJoinAndSync) return undefined;
  const ConsumerGroup = requireCjs(requireCjs.resolve('kafkajs/src/consumer/consumerGroup.js')) as { prototype: Record<string, unknown> };
  const original = ConsumerGroup.prototype.joinAndSync as ((this: unknown) => Promise<void>) | undefined;
  if (typeof original !== 'function') return 'kafkajs/src/consumer/consumerGroup.js has no ConsumerGroup.prototype.joinAndSync';
  type Group = { assigners?: Array<Record<symbol, unknown>>; heartbeat?: (o: { interval: number }) => Promise<void> };
  ConsumerGroup.prototype.joinAndSync = async function joinAndSync(this: Group): Promise<void> {
    const hook = this.assigners?.map((a) => a[BEFORE_JOIN]).find((h) => typeof h === 'function') as (() => Promise<void>) | undefined;
    if (hook) {
      // Heartbeats go on meanwhile: answered REBALANCE_IN_PROGRESS, they still keep the session
      // alive, so a checkpoint longer than the session timeout does not cost the membership.
      const beat = setInterval(() => { void this.heartbeat?.({ interval: 0 }).catch(() => {}); }, 1_000);
      try { await hook(); } catch { /* reported by the hook's owner */ } finally { clearInterval(beat); }
    }
    return original.call(this);
  };
  rejoinJoinAndSync = ConsumerGroup.prototype.joinAndSync;
  return undefined;
}

/** How long one request to the transaction coordinator is retried (retriable errors, lost connections). */
const TXN_REQUEST_RETRY_MS = 60_000;

/**
 * Errors after which a transaction cannot go on: this producer was fenced (another one with the
 * same transactional id started, or the broker aborted the transaction on its timeout), or it is
 * not allowed. Everything else that kafkajs marks retriable, or a lost connection, is retried.
 */
const FATAL_TXN_TYPES = new Set([
  'INVALID_PRODUCER_EPOCH', 'INVALID_TXN_STATE', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'TRANSACTION_COORDINATOR_FENCED', 'INVALID_TRANSACTION_TIMEOUT', 'GROUP_AUTHORIZATION_FAILED', 'TOPIC_AUTHORIZATION_FAILED',
  'KAFKAJS_UNKNOWN_ERROR_CODE', // 90 PRODUCER_FENCED and other codes kafkajs 2.2.4 does not know
]);

function isRetriableTxnError(e: unknown): boolean {
  let retriable = false;
  for (let x: unknown = e, d = 0; x && d < 8; d++) {
    const t = (x as { type?: string }).type;
    if (t && FATAL_TXN_TYPES.has(t)) return false;
    if ((x as { retriable?: boolean }).retriable === true || (x as Error).name === 'KafkaJSNumberOfRetriesExceeded') retriable = true;
    const next = (x as { cause?: unknown; originalError?: unknown }).cause ?? (x as { originalError?: unknown }).originalError;
    if (!next || next === x) break;
    x = next;
  }
  return retriable || isConnectivityError(e);
}

/**
 * kafkajs 2.2.4 sends EndTxn (commit/abort) and AddOffsetsToTxn exactly once: a retriable answer
 * (CONCURRENT_TRANSACTIONS while the previous transaction's markers are still being written,
 * COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR) or a lost connection fails the call, and a failed
 * EndTxn leaves its transaction state machine in COMMITTING, from which no later call is legal.
 * The Java client retries these requests, and so does this patch: the transactional eosManager
 * gets a cluster whose transaction coordinator retries endTxn / addOffsetsToTxn /
 * addPartitionsToTxn on retriable errors (10 ms doubling to 1 s, for TXN_REQUEST_RETRY_MS),
 * looking the coordinator up again after a coordinator or connection error. Resending EndTxn is
 * safe: the coordinator answers CONCURRENT_TRANSACTIONS while it completes the same result, then
 * success. AddPartitionsToTxn's retries also shorten the stall of the first send after a commit
 * (kafkajs's own retry would wait ~300 ms). Loaded like groupMessagesPerPartition (require cache);
 * if the module does not look as expected, kafkajs runs unpatched.
 */
function patchTransactionCoordinatorRetries(): string | undefined {
  const path = requireCjs.resolve('kafkajs/src/producer/eosManager/index.js');
  const cache = requireCjs.cache;
  if (path in cache) return 'kafkajs/src/producer/eosManager/index.js was loaded before the patch';
  const original = requireCjs(path) as unknown;
  const mod = cache[path];
  const { TRANSACTION } = requireCjs('kafkajs/src/protocol/coordinatorTypes.js') as { TRANSACTION: number };
  if (typeof original !== 'function' || !mod || typeof TRANSACTION !== 'number') return 'kafkajs/src/producer/eosManager/index.js or coordinatorTypes.js does not look as expected';
  type Broker = Record<string, (req: unknown) => Promise<unknown>>;
  type Cluster = { findGroupCoordinator(a: { groupId: string; coordinatorType?: number }): Promise<Broker> };
  const RETRIED = new Set(['endTxn', 'addOffsetsToTxn', 'addPartitionsToTxn']);
  const retryingCoordinator = (cluster: Cluster, findArgs: { groupId: string; coordinatorType?: number }, first: Broker): Broker => {
    let broker = first;
    const call = (method: string) => async (req: unknown): Promise<unknown> => {
      const deadline = Date.now() + TXN_REQUEST_RETRY_MS;
      let delay = 10;
      for (;;) {
        try {
          return await broker[method](req);
        } catch (e) {
          if (!isRetriableTxnError(e) || Date.now() >= deadline) throw e;
          await sleep(delay);
          delay = Math.min(delay * 2, 1_000);
          const type = (e as { type?: string }).type;
          if (type !== 'CONCURRENT_TRANSACTIONS' && type !== 'COORDINATOR_LOAD_IN_PROGRESS') {
            try { broker = await cluster.findGroupCoordinator(findArgs); } catch { /* next attempt tries again */ }
          }
        }
      }
    };
    return new Proxy(first, {
      get(target, prop) {
        if (typeof prop === 'string' && RETRIED.has(prop)) return call(prop);
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  mod.exports = eosManagerReplacement = (args: { transactional?: boolean; cluster?: Cluster }) => {
    const create = original as (a: unknown) => unknown;
    if (!args?.transactional || !args.cluster) return create(args);
    const cluster = args.cluster;
    const wrapped = new Proxy(cluster, {
      get(target, prop) {
        if (prop === 'findGroupCoordinator') {
          return async (a: { groupId: string; coordinatorType?: number }) => {
            const broker = await target.findGroupCoordinator(a);
            return a.coordinatorType === TRANSACTION ? retryingCoordinator(target, a, broker) : broker;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return create({ ...args, cluster: wrapped });
  };
  return undefined;
}

/** The kafkajs release the patches are written for (package.json pins it exactly). */
const KAFKAJS_VERSION = '2.2.4';

/** What kafkajs does without each patch, for the warning when one is missing. */
const WITHOUT_PATCH: Record<KafkajsPatchName, string> = {
  'group-messages': 'large sends are slower',
  'txn-retry': 'a transaction commit fails on a transient coordinator error instead of being retried',
  'fast-codec': 'producing and fetching are slower',
  rejoin: 'a group member cannot checkpoint before a rebalance',
};

export interface KafkajsPatchStatus { name: KafkajsPatchName; active: boolean; detail: string }

/** Each patch's state now: installed and still in place (checked, not remembered), or why not. */
export function kafkajsPatchStatus(): KafkajsPatchStatus[] {
  const inPlace = (module: string, ours: unknown): boolean => ours !== undefined && requireCjs.cache[requireCjs.resolve(module)]?.exports === ours;
  return PATCH_NAMES.map((name): KafkajsPatchStatus => {
    const failure = patchFailures.get(name);
    if (failure) return { name, active: false, detail: failure };
    let parts = '';
    let active: boolean;
    switch (name) {
      case 'group-messages': active = inPlace('kafkajs/src/producer/groupMessagesPerPartition.js', groupMessagesReplacement); break;
      case 'txn-retry': active = inPlace('kafkajs/src/producer/eosManager/index.js', eosManagerReplacement); break;
      case 'fast-codec': parts = fastCodecReplaced(requireCjs).join('+'); active = parts !== ''; break;
      case 'rejoin': {
        const ConsumerGroup = requireCjs('kafkajs/src/consumer/consumerGroup.js') as { prototype: Record<string, unknown> };
        active = rejoinJoinAndSync !== undefined && ConsumerGroup.prototype.joinAndSync === rejoinJoinAndSync;
        break;
      }
    }
    return { name, active, detail: active ? parts || 'installed' : 'installed at load, then replaced by other code' };
  });
}

let patchesReported = false;

/**
 * The start-up check: which patches are active (debug), a warning for each one that failed to
 * install (not for those left out on purpose), and a refusal of group-member mode with
 * checkpoints without the re-join hook: such a member would hand partitions over without
 * checkpointing them first, so their output would no longer be exactly-once.
 */
export function checkKafkajsPatches(opts: { groupMemberCheckpoints: boolean }): void {
  const status = kafkajsPatchStatus();
  if (!patchesReported) {
    patchesReported = true;
    let version = 'unknown';
    try { version = String((requireCjs('kafkajs/package.json') as { version?: unknown }).version); } catch { /* reported as unknown */ }
    log.debug('kafkajs patches', {
      kafkajs: version,
      active: status.filter((s) => s.active).map((s) => (s.detail === 'installed' ? s.name : `${s.name}(${s.detail})`)),
      inactive: Object.fromEntries(status.filter((s) => !s.active).map((s) => [s.name, s.detail])),
    });
    if (version !== KAFKAJS_VERSION) log.warn(`kafkajs ${version} is installed, but joinery's kafkajs patches are written for ${KAFKAJS_VERSION} (run npm ci)`);
    for (const s of status) {
      if (!s.active && !/^(skipped|turned off)/.test(s.detail)) log.warn(`kafkajs patch ${s.name} is not installed (${s.detail}): ${WITHOUT_PATCH[s.name]}`);
    }
    const unknown = [...skippedPatches].filter((n) => !(PATCH_NAMES as readonly string[]).includes(n));
    if (unknown.length > 0) log.warn(`JOINERY_KAFKAJS_SKIP_PATCH: no patch named ${unknown.join(', ')} (the patches: ${PATCH_NAMES.join(', ')})`);
  }
  const rejoin = status.find((s) => s.name === 'rejoin')!;
  if (opts.groupMemberCheckpoints && !rejoin.active) {
    throw new JoineryError('E_KAFKA_PATCH', `the kafkajs re-join hook (patch rejoin, ConsumerGroup.joinAndSync) is not installed: ${rejoin.detail}; ` +
      'a group member (Kafka input with --checkpoint-dir) would hand partitions over without checkpointing them and lose exactly-once, so it does not start; ' +
      `install kafkajs ${KAFKAJS_VERSION} exactly (npm ci) and unset JOINERY_KAFKAJS_SKIP_PATCH`);
  }
}

const kafkajs = loadKafkajs();
const { AssignerProtocol, CompressionTypes, Kafka, logLevel } = kafkajs;
type Kafka = KafkaJS.Kafka;
type CompressionTypes = KafkaJS.CompressionTypes;

/**
 * kafkajs's murmur2 (as Java's DefaultPartitioner), so explicit partitions equal what kafkajs would
 * pick. kafkajs computes it with BigInt-backed Longs (~6 % of the main thread when producing the
 * joined output); javaMurmur2 is the same function in 32-bit integer arithmetic (equal results:
 * test/unit/fast-codec.test.ts), used unless JOINERY_KAFKAJS_FAST=0.
 */
const murmur2: (key: Buffer | string) => number = (() => {
  if (fastCodecEnabled) return javaMurmur2;
  try {
    return requireCjs('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number;
  } catch {
    return javaMurmur2;
  }
})();

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2). */
function javaMurmur2(key: Buffer | string): number {
  const data = typeof key === 'string' ? Buffer.from(key) : key;
  const length = data.length, seed = 0x9747b28c, m = 0x5bd1e995, r = 24;
  let h = seed ^ length;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = (data[i4] & 0xff) + ((data[i4 + 1] & 0xff) << 8) + ((data[i4 + 2] & 0xff) << 16) + ((data[i4 + 3] & 0xff) << 24);
    k = Math.imul(k, m); k ^= k >>> r; k = Math.imul(k, m);
    h = Math.imul(h, m); h ^= k;
  }
  const idx = length4 << 2;
  switch (length % 4) {
    case 3: h ^= (data[idx + 2] & 0xff) << 16; // falls through
    case 2: h ^= (data[idx + 1] & 0xff) << 8; // falls through
    case 1: h ^= data[idx] & 0xff; h = Math.imul(h, m);
  }
  h ^= h >>> 13; h = Math.imul(h, m); h ^= h >>> 15;
  return h;
}

/** Partition of a keyed record, as kafkajs's DefaultPartitioner and the Java client compute it. */
export function partitionForKey(key: Buffer | string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

// ---------------------------------------------------------------------------------------------
// Logging

const LEVEL_NAMES: Record<number, string> = { 1: 'ERROR', 2: 'WARN', 4: 'INFO', 5: 'DEBUG' };

/** Messages of kafkajs's retriable protocol errors ("The coordinator is loading…"): INFO, not WARN. */
const RETRIABLE_MESSAGES: string[] = (() => {
  try {
    const req = createRequire(import.meta.url);
    const { errorCodes } = req('kafkajs/src/protocol/error.js') as { errorCodes: Array<{ retriable: boolean; message: string }> };
    return errorCodes.filter((e) => e.retriable).map((e) => e.message);
  } catch {
    return ['The coordinator is loading', 'The group coordinator is not available', 'This is not the correct coordinator'];
  }
})();

/** Transient conditions kafkajs handles itself; shown at INFO only. */
const QUIET_PATTERNS: RegExp[] = [
  /The group is rebalancing/,                      // heartbeat/commit answers during a rebalance; kafkajs re-joins
  /rejoin is needed/,
  /Limiting retries for the idempotent producer/, // the sinks bound retries on purpose: they then fail loudly
  /concurrent operation on the same transaction/,
  /CONCURRENT_TRANSACTIONS/,
  /Consumer is not aware of all assigned partitions/,
  /Restarting the consumer in/,                     // follows a retriable crash, which is shown itself unless transient
  /socket closed by closeKafka/,                    // closeKafka ending what kafkajs left open
];

const SHOWN_FIELDS = ['error', 'broker', 'topic', 'partition', 'groupId', 'retryCount', 'retryTime'];
const RATE_LIMIT_MS = 10_000;

function isQuiet(message: string, error: unknown): boolean {
  const texts = [message, typeof error === 'string' ? error : ''];
  for (const t of texts) {
    if (!t) continue;
    if (QUIET_PATTERNS.some((p) => p.test(t))) return true;
    if (RETRIABLE_MESSAGES.some((m) => t.includes(m))) return true;
  }
  return false;
}

function envLogLevel(): number {
  const v = (process.env.JOINERY_KAFKA_LOG ?? '').toLowerCase();
  return v === 'debug' ? logLevel.DEBUG : v === 'info' ? logLevel.INFO : v === 'error' ? logLevel.ERROR
    : v === 'nothing' || v === 'off' ? logLevel.NOTHING : logLevel.WARN;
}

/** kafkajs levels as log levels (its DEBUG lines show with --log-level debug only). */
const LOG_LEVEL_OF: Record<number, LogLevel> = { [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug' };

/** kafkajs logCreator: one compact line per entry on stderr, identical lines at most every 10 s. */
function compactLogCreator(threshold: number) {
  const lastShown = new Map<string, { at: number; suppressed: number }>();
  return () => (entry: LogEntry): void => {
    let level = entry.level as number;
    const log = entry.log;
    if (level <= logLevel.WARN && isQuiet(String(log.message), log.error)) level = logLevel.INFO;
    if (level > threshold || level === logLevel.NOTHING) return;
    const extras: string[] = [];
    for (const f of SHOWN_FIELDS) {
      const v = log[f];
      if (v === undefined || v === null || v === '') continue;
      extras.push(`${f}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
    const line = `kafkajs ${LEVEL_NAMES[level] ?? level} [${entry.namespace}] ${String(log.message)}${extras.length ? ` (${extras.join(', ')})` : ''}`;
    const key = `${entry.namespace}|${String(log.message)}|${String(log.error ?? '')}`;
    const now = Date.now();
    const seen = lastShown.get(key);
    if (seen && now - seen.at < RATE_LIMIT_MS) { seen.suppressed++; return; }
    const more = seen && seen.suppressed > 0 ? ` [+${seen.suppressed} like it]` : '';
    lastShown.set(key, { at: now, suppressed: 0 });
    if (lastShown.size > 500) lastShown.clear();
    logger.say(LOG_LEVEL_OF[level] ?? 'debug', line + more, { kafkajs: entry.namespace });
  };
}

// ---------------------------------------------------------------------------------------------
// Client

export interface KafkaHandle {
  readonly brokers: string[];
  readonly clientId: string;
  readonly connectTimeoutMs: number;
  /** The kafkajs client (its type stays inside this module's users; only this file imports kafkajs). */
  readonly kafka: Kafka;
  /** Sockets this client opened that are still open (see closeKafka). */
  readonly sockets: Set<net.Socket>;
}

export interface KafkaClientOptions {
  /** How long to keep retrying an unreachable broker at start (ms). */
  connectTimeoutMs: number;
  /** kafkajs log threshold; default WARN, or JOINERY_KAFKA_LOG=debug|info|warn|error|off. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'off';
}

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** "h1:9092,h2:9092" or a list → validated host:port strings. */
export function parseBrokers(spec: string | readonly string[], flag = 'brokers'): string[] {
  const list = (typeof spec === 'string' ? spec.split(',') : [...spec]).map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw usageError(`--${flag}: needs at least one HOST:PORT`);
  for (const b of list) {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw usageError(`--${flag}: expected HOST:PORT[,HOST:PORT…], got ${JSON.stringify(b)}`);
  }
  return list;
}

export function createKafka(brokers: string[], clientId: string, opts: KafkaClientOptions): KafkaHandle {
  const list = parseBrokers(brokers);
  const threshold = opts.logLevel === undefined ? envLogLevel()
    : { debug: logLevel.DEBUG, info: logLevel.INFO, warn: logLevel.WARN, error: logLevel.ERROR, off: logLevel.NOTHING }[opts.logLevel];
  const connectTimeoutMs = Math.max(1, opts.connectTimeoutMs);
  const sockets = new Set<net.Socket>();
  const kafka = new Kafka({
    // kafkajs's own factory, plus tracking: see closeKafka
    socketFactory: ({ host, port, onConnect }) => {
      const socket = net.connect({ host, port }, onConnect);
      socket.setKeepAlive(true, 60_000);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      return socket;
    },
    clientId,
    brokers: list,
    // per TCP attempt; waitForBroker retries attempts until connectTimeoutMs
    connectionTimeout: Math.max(100, Math.min(connectTimeoutMs, 3_000)),
    requestTimeout: 30_000,
    logLevel: threshold,
    logCreator: compactLogCreator(threshold),
  });
  return { brokers: list, clientId, connectTimeoutMs, kafka, sockets };
}

/**
 * Destroy what is left of a client's connections once all its consumers, producers and admins are
 * disconnected. kafkajs 2.2.4 can orphan a connection: after a broker restart the consumer group's
 * coordinator Broker object is no longer in the cluster's pool, so disconnect() never closes it,
 * and the open socket keeps the process alive at exit. Sources and sinks that created their own
 * client call this on close; call it for a client you passed in, after closing its users.
 */
const CLIENT_CLOSED_MESSAGE = 'socket closed by closeKafka';
const CLIENT_CLOSED = Object.assign(new Error(CLIENT_CLOSED_MESSAGE), { code: 'EJOINERYCLOSED' });

export function closeKafka(h: KafkaHandle): number {
  let n = 0;
  // With an error, so kafkajs's Connection sees it ('error' → rejectRequests + disconnect, which
  // stops its RequestQueue timers); a plain destroy() only emits 'close', which kafkajs ignores,
  // and the orphaned connection's request-timeout interval would keep the process alive.
  for (const s of h.sockets) { s.destroy(CLIENT_CLOSED); n++; }
  h.sockets.clear();
  return n;
}

function handleFrom(h: KafkaHandle | readonly string[], clientId: string, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): { h: KafkaHandle; own: boolean } {
  if (!Array.isArray(h) && typeof (h as KafkaHandle).kafka === 'object') return { h: h as KafkaHandle, own: false };
  return { h: createKafka([...(h as readonly string[])], clientId, { connectTimeoutMs }), own: true };
}

/**
 * Wait until a broker answers (connect + ApiVersions + Metadata), retrying with backoff
 * (100 ms doubling to 2 s) until the handle's connectTimeoutMs; then a JoineryError naming the
 * addresses tried and the last error.
 */
export async function waitForBroker(h: KafkaHandle, code: ErrorCode = 'E_INPUT'): Promise<void> {
  const start = Date.now();
  const deadline = start + h.connectTimeoutMs;
  let delay = 100;
  let last: unknown = new Error('no attempt made');
  for (;;) {
    const remaining = deadline - Date.now();
    const probe = new Kafka({
      clientId: `${h.clientId}-probe`,
      brokers: h.brokers,
      connectionTimeout: Math.max(100, Math.min(3_000, remaining)),
      requestTimeout: Math.max(1_000, Math.min(10_000, remaining)),
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
      logCreator: () => () => {},
    });
    const admin = probe.admin({ retry: { retries: 0 } });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        admin.connect(),
        new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`no answer within ${formatDurationMs(Math.max(remaining, 0))}`)), Math.max(remaining, 100)); }),
      ]);
      clearTimeout(timer);
      await admin.disconnect().catch(() => {});
      return;
    } catch (e) {
      clearTimeout(timer);
      last = e;
      admin.disconnect().catch(() => {});
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new JoineryError(code, `cannot reach Kafka at ${h.brokers.join(',')}: ${errText(last)} ` +
        `(retried for ${formatDurationMs(Date.now() - start)}; is the broker running? check --brokers and --connect-timeout)`, { cause: last });
    }
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, 2_000);
  }
}

async function connectedAdmin(h: KafkaHandle, code: ErrorCode): Promise<Admin> {
  await waitForBroker(h, code);
  const admin = h.kafka.admin();
  try {
    await admin.connect();
  } catch (e) {
    throw new JoineryError(code, `cannot reach Kafka at ${h.brokers.join(',')}: ${errText(e)}`, { cause: e });
  }
  return admin;
}

// ---------------------------------------------------------------------------------------------
// Admin helpers

export interface TopicInfo {
  topic: string;
  exists: boolean;
  /** Partition count (0 when the topic does not exist). */
  partitions: number;
}

/** Existence and partition count of each topic. */
export async function describeTopics(brokers: KafkaHandle | readonly string[], topics: readonly string[],
  opts: { connectTimeoutMs?: number } = {}): Promise<TopicInfo[]> {
  const { h, own } = handleFrom(brokers, 'joinery-admin', opts.connectTimeoutMs);
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    return await describeWith(admin, topics);
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

async function describeWith(admin: Admin, topics: readonly string[]): Promise<TopicInfo[]> {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  const counts = new Map<string, number>();
  if (present.length > 0) {
    const meta = await admin.fetchTopicMetadata({ topics: [...new Set(present)] });
    for (const t of meta.topics) counts.set(t.name, t.partitions.length);
  }
  return topics.map((topic) => ({ topic, exists: existing.has(topic), partitions: counts.get(topic) ?? 0 }));
}

/**
 * describeWith for an admin client kept across calls: one metadata request for every topic.
 * Asking for a deleted topic by name makes kafkajs refresh (and retry) it for a long time.
 */
async function describeFromClusterMetadata(admin: Admin, topics: readonly string[]): Promise<TopicInfo[]> {
  const meta = await admin.fetchTopicMetadata();
  const counts = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  return topics.map((topic) => ({ topic, exists: counts.has(topic), partitions: counts.get(topic) ?? 0 }));
}

export interface EnsureResult {
  topic: string;
  created: boolean;
  /** Partition count now (an existing topic keeps its own count). */
  partitions: number;
}

/**
 * Create the topics that do not exist yet (replication factor min(3, brokers in the cluster)),
 * waiting for their leaders. Existing topics are left alone; the result says what they have.
 */
export async function ensureTopics(brokers: KafkaHandle | readonly string[], specs: ReadonlyArray<{ topic: string; partitions: number }>,
  opts: { connectTimeoutMs?: number; code?: ErrorCode } = {}): Promise<EnsureResult[]> {
  const code = opts.code ?? 'E_OUTPUT';
  const { h, own } = handleFrom(brokers, 'joinery-admin', opts.connectTimeoutMs);
  for (const s of specs) {
    if (!Number.isInteger(s.partitions) || s.partitions < 1) throw usageError(`topic ${s.topic}: partitions must be a whole number ≥ 1 (got ${s.partitions})`);
  }
  const admin = await connectedAdmin(h, code);
  try {
    const before = await describeWith(admin, specs.map((s) => s.topic));
    const missing = specs.filter((s, i) => !before[i].exists);
    if (missing.length > 0) {
      const cluster = await admin.describeCluster();
      const rf = Math.max(1, Math.min(3, cluster.brokers.length));
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.partitions, replicationFactor: rf })),
        });
      } catch (e) {
        // a concurrent creator may have won the race; re-check below
        const again = await describeWith(admin, missing.map((s) => s.topic));
        if (again.some((t) => !t.exists)) throw new JoineryError(code, `creating Kafka topics ${missing.map((s) => s.topic).join(', ')} failed: ${errText(e)}`, { cause: e });
      }
    }
    const after = await describeWith(admin, specs.map((s) => s.topic));
    return after.map((t, i) => ({ topic: t.topic, created: !before[i].exists, partitions: t.partitions }));
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** Delete topics (tests and tools). Missing topics are ignored. */
export async function deleteTopics(brokers: KafkaHandle | readonly string[], topics: readonly string[]): Promise<void> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_OUTPUT');
  try {
    const existing = new Set(await admin.listTopics());
    const del = topics.filter((t) => existing.has(t));
    if (del.length > 0) await admin.deleteTopics({ topics: del });
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** Raise a topic's partition count to `count` (tests and tools). */
export async function addPartitions(brokers: KafkaHandle | readonly string[], topic: string, count: number): Promise<void> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_OUTPUT');
  try {
    await admin.createPartitions({ topicPartitions: [{ topic, count }] });
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/**
 * Low watermark and end offset per partition of a topic (tests, tools, idle checks). `high` is the
 * last stable offset (kafkajs lists offsets read_committed): the high watermark, except that a
 * transaction still open holds it at that transaction's first record — the end a read_committed
 * consumer (KafkaSource) can reach. With `isolation: 'read_uncommitted'`, `high` is the high
 * watermark. Both are equal once no transaction is open on the partition; note that a committed
 * (or aborted) transaction's markers are written just after commitTransaction returns, so the
 * last stable offset can lag it by a few milliseconds.
 */
export async function topicOffsets(brokers: KafkaHandle | readonly string[], topic: string,
  opts: { isolation?: 'read_committed' | 'read_uncommitted' } = {}): Promise<Array<{ partition: number; low: string; high: string }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const o = await admin.fetchTopicOffsets(topic);
    const hw = opts.isolation === 'read_uncommitted' ? await highWatermarks(h, topic) : null;
    return o.map((p) => ({ partition: p.partition, low: p.low, high: hw ? String(hw.get(p.partition) ?? p.high) : p.high })).sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/**
 * Per partition of a topic: the first offset whose record timestamp is ≥ timeMs (Kafka's
 * offsets-for-times), or the partition's end when there is none; with its low and high offsets.
 */
export async function offsetsForTime(brokers: KafkaHandle | readonly string[], topic: string, timeMs: number): Promise<Array<{ partition: number; offset: number; low: number; high: number }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, timeMs);
    return ends.map((e) => {
      const t = Number(byTime.find((x) => x.partition === e.partition)?.offset ?? -1);
      const low = Number(e.low), high = Number(e.high);
      return { partition: e.partition, offset: t < 0 ? high : Math.max(low, Math.min(high, t)), low, high };
    }).sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** Committed offsets of a consumer group ('-1' = none). */
export async function groupOffsets(brokers: KafkaHandle | readonly string[], groupId: string, topics: string[]): Promise<Array<{ topic: string; partition: number; offset: string }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const r = await admin.fetchOffsets({ groupId, topics });
    return r.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })));
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/**
 * Committed offsets of a consumer group with the metadata string stored with each ('-1' and null
 * = nothing committed). Offsets committed in a Kafka transaction show here once it is committed,
 * never when it was aborted; the metadata is what KafkaRecordSink.commitTransaction or
 * KafkaSource.commit stored (e.g. the checkpoint id). Sorted by topic, partition.
 */
export async function fetchCommittedOffsets(brokers: KafkaHandle | readonly string[], groupId: string, topics: readonly string[]): Promise<Array<{ topic: string; partition: number; offset: string; metadata: string | null }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const r = await admin.fetchOffsets({ groupId, topics: [...topics] });
    return r.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata ?? null })))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

// ---------------------------------------------------------------------------------------------
// Source

/** A lost or refused connection (worth reconnecting), as opposed to a protocol or usage error. */
function isConnectivityError(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x && depth < 6; x = (x as { cause?: unknown; originalError?: unknown }).cause ?? (x as { originalError?: unknown }).originalError, depth++) {
    const name = (x as Error).name ?? '', msg = (x as Error).message ?? '';
    if (/KafkaJSConnection(Closed)?Error|KafkaJSBrokerNotFound|KafkaJSNumberOfRetriesExceeded|KafkaJSRequestTimeoutError|KafkaJSNoBrokerAvailableError/.test(name)) return true;
    if (/ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Connection (error|timeout)|Closed connection|not (the correct )?coordinator|coordinator is (loading|not available)|leader/i.test(msg)) return true;
  }
  return false;
}

/**
 * A consumer crash worth a fresh consumer: lost connections, plus what kafkajs itself would have
 * restarted (retries exhausted, a retriable root cause) and "Failed to find group coordinator",
 * which kafkajs throws as non-retriable, without a cause, when no broker answered FindCoordinator.
 */
function isReconnectable(e: unknown): boolean {
  if (isConnectivityError(e)) return true;
  // kafkajs's retrier wraps a bailed error as KafkaJSNonRetriableError with the original as cause
  let x: unknown = e;
  for (let d = 0; x && d < 8; d++) {
    const name = (x as Error).name ?? '';
    if (name === 'KafkaJSNumberOfRetriesExceeded' || name === 'KafkaJSGroupCoordinatorNotFound') return true;
    const next = (x as { cause?: unknown }).cause;
    if (!next || next === x) break;
    x = next;
  }
  return (x as { retriable?: boolean })?.retriable === true;
}

const CO_PARTITIONED = 'JoineryCoPartitioned';

/**
 * Group assignment that keeps a key's two sides together: partition p of *every* subscribed topic
 * goes to member p mod members (members sorted by id). kafkajs's default round-robin spreads the
 * topic-partitions of both topics independently, so left/p and right/p could land on different
 * members and their keys would never meet. With co-partitioned topics (same partition count, same
 * key partitioner) this makes scaling out by partition correct.
 */
export const coPartitionedAssigner: PartitionAssigner = (config) => coPartitionedAssignerWith()(config);

/** The co-partitioned assigner, carrying a hook awaited before each (re-)join of its consumer. */
function coPartitionedAssignerWith(beforeJoin?: () => Promise<void>): PartitionAssigner {
  return (config) => Object.assign(coPartitioned(config), beforeJoin ? { [BEFORE_JOIN]: beforeJoin } : {});
}

const coPartitioned: PartitionAssigner = ({ cluster }) => ({
  name: CO_PARTITIONED,
  version: 1,
  async assign({ members, topics }) {
    const ids = members.map((m) => m.memberId).sort();
    const byMember = new Map<string, Record<string, number[]>>(ids.map((id) => [id, {}]));
    for (const topic of topics) {
      for (const m of cluster.findTopicPartitionMetadata(topic)) {
        const a = byMember.get(ids[m.partitionId % ids.length])!;
        (a[topic] ??= []).push(m.partitionId);
      }
    }
    return ids.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: byMember.get(memberId)!, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: CO_PARTITIONED, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
  },
});

/** Where a group without committed offsets starts: earliest, latest, or the first offset at/after a time (epoch ms). */
export type KafkaFrom = 'earliest' | 'latest' | number;

/** `--from earliest|latest|TIMESTAMP` (ISO-8601 or epoch milliseconds). */
export function parseFrom(text: string, flag = 'from'): KafkaFrom {
  const t = text.trim();
  if (t === 'earliest' || t === 'latest') return t;
  if (/^\d+$/.test(t)) return Number(t);
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  throw usageError(`--${flag}: expected earliest, latest, an ISO-8601 time (2026-01-01T00:00:00Z) or epoch milliseconds (got ${JSON.stringify(text)})`);
}

/** A RecordBatch from Kafka, with what the engine needs to commit and report positions. */
export interface KafkaRecordBatch extends RecordBatch {
  topic: string;
  kafkaPartition: number;
  /** Next offset after this batch (offset of the last record, or of trailing control records, + 1): commit this once applied. */
  nextOffset: string;
  /** The partition's high watermark when the batch was fetched. */
  highWatermark: string;
  /**
   * Kafka offset of each record when the batch's offsets are not contiguous (compacted topics,
   * transaction markers); undefined otherwise, and then record i has offset firstPosition + i.
   */
  recordOffsets?: Float64Array;
}

export interface KafkaSourceOptions {
  brokers: string[];
  /** Reuse a client (else one is created). */
  kafka?: KafkaHandle;
  clientId?: string;
  groupId: string;
  leftTopic: string;
  rightTopic: string;
  /** Record format of the values (the router decodes them). */
  format: 'json' | 'flatbuffers';
  /** Start of partitions the group has no committed offset for (default earliest). */
  from?: KafkaFrom;
  /**
   * Exact start positions (next offset to read) of some partitions, e.g. from a checkpoint: they
   * override the group's committed offsets and `from`. Applied (seek) when the partition is first
   * assigned to this process, before any of its batches is delivered. An offset outside
   * [earliest, end] of its partition fails open (records were deleted, or the checkpoint does not
   * belong to this topic), since starting elsewhere would lose or repeat records.
   */
  startOffsets?: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>;
  /** next() returns null once every assigned partition has sat at its end this long (0 = never). */
  exitWhenIdleMs?: number;
  connectTimeoutMs?: number;
  /** How long to keep reconnecting after losing the broker mid-run (default max(60 s, connectTimeoutMs)). */
  reconnectTimeoutMs?: number;
  /** Bytes of fetched records held between eachBatch and next() (default 32 MiB). */
  queueBytes?: number;
  minBytes?: number;
  maxWaitTimeInMs?: number;
  maxBytesPerPartition?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Called on every group join with the partitions gained and lost (side/partition). */
  onAssignment?: (change: { assigned: PartitionRef[]; revoked: PartitionRef[]; generation: number }) => void;
  /**
   * Awaited before this member re-joins its group (a rebalance, or a new consumer after a lost
   * broker), while it still owns its partitions: the place to commit what has been applied of
   * them (a checkpoint). Delivery is suspended from then on (next() returns null) until
   * resetTo(). Without it, re-joins happen at once and delivery goes on.
   */
  beforeRejoin?: () => Promise<void>;
}

interface PartState {
  topic: string;
  side: Side;
  partition: number;
  /** Start position computed at open when the group had no committed offset, or given in startOffsets (floor for fetched records). */
  floor: number;
  /** floor comes from startOffsets: seek there on the first assignment, whatever the group committed. */
  explicitStart: boolean;
  /** Committed offset at open (-1 = none). */
  committedAtOpen: number;
  /** Next offset accepted into the queue (-1 = none yet in this process). */
  enqueuedNext: number;
  /** Next offset handed to next()'s caller (-1 = none yet). */
  deliveredNext: number;
  assigned: boolean;
  /** Not delivered nor fetched: userPaused || held. */
  paused: boolean;
  userPaused: boolean;
  held: boolean;
  /** Paused by event-time alignment (--max-drift). */
  aligned: boolean;
  /** Highest high watermark seen (at open, and with each fetched batch). */
  highSeen: number;
  /** Bytes and batches of this partition in the queue. */
  queuedBytes: number;
  queuedBatches: number;
}

const DEFAULTS = {
  queueBytes: 32 * 1024 * 1024,
  minBytes: 256 * 1024,
  maxWaitTimeInMs: 50,
  maxBytesPerPartition: 4 * 1024 * 1024,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  /** How often the input topics' metadata is checked (deleted topic, partition count changed). */
  metadataPollMs: 2_000,
};
const POOL_MAX = 16;
const MIN_DATA_BYTES = 64 * 1024;

/** Call every waiter of a list and return a fresh empty one (waiters are promise resolvers: their continuations run later, never re-entering the old list). */
function wakeAll(waiters: Array<() => void>): Array<() => void> {
  for (const f of waiters) f();
  return [];
}

function pow2AtLeast(n: number): number {
  let c = 1024;
  while (c < n) c *= 2;
  return c;
}

/**
 * Two topics as one Source: left topic → side 0, right topic → side 1; RecordBatch.partition is
 * the Kafka partition. `partitions` lists every partition of both topics (known at open, before
 * the first batch). Open with `await KafkaSource.open(opts)`.
 */
export class KafkaSource implements Source {
  readonly name: string;
  partitions: readonly PartitionRef[] = [];
  readonly format: 'json' | 'flatbuffers';
  readonly live = true;
  /** Counters for progress and tests. */
  readonly stats = { batches: 0, records: 0, bytes: 0, droppedBelowPosition: 0, rebalances: 0, purgedBatches: 0, queueWaits: 0, reconnects: 0 };

  private readonly h: KafkaHandle;
  private readonly ownsClient: boolean;
  private admin: Admin | null = null;
  private consumer: Consumer | null = null;
  private readonly parts = new Map<string, PartState>();
  private readonly queue: KafkaRecordBatch[] = [];
  private queuedBytes = 0;
  private unpausedQueuedBytes = 0;
  private readonly queueLimit: number;
  private readonly dataPool: Buffer[] = [];
  private readonly offsPool: Uint32Array[] = [];
  private lastDelivered: KafkaRecordBatch | null = null;
  /** The pooled buffer behind each batch's data view. */
  private readonly bufOf = new WeakMap<KafkaRecordBatch, Buffer>();
  private waiters: Array<() => void> = [];
  private spaceWaiters: Array<() => void> = [];
  private fatal: Error | null = null;
  private closed = false;
  private ended = false;
  private generation = 0;
  private idleSince = -1;
  /** Delivery stopped for a re-join (beforeRejoin) until resetTo(). */
  private suspended = false;
  /** The engine reading this source is stopping: next() returns null until resetTo(). */
  private interrupted = false;
  private generationWaiters: Array<() => void> = [];
  /** Start positions of the partitions of the current assignment (startOffsets, then resetTo()). */
  private startPositions: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>;
  private lastActivity = Date.now();
  private readonly exitWhenIdleMs: number;
  private readonly from: KafkaFrom;

  private constructor(private readonly opts: KafkaSourceOptions) {
    if (opts.leftTopic === opts.rightTopic) throw usageError(`--left and --right name the same Kafka topic ${JSON.stringify(opts.leftTopic)}`);
    this.ownsClient = !opts.kafka;
    this.h = opts.kafka ?? createKafka(opts.brokers, opts.clientId ?? 'joinery', { connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
    this.name = `kafka:${opts.leftTopic}+${opts.rightTopic}`;
    this.format = opts.format;
    this.queueLimit = opts.queueBytes ?? DEFAULTS.queueBytes;
    this.exitWhenIdleMs = opts.exitWhenIdleMs ?? 0;
    this.from = opts.from ?? 'earliest';
    this.startPositions = opts.startOffsets ?? [];
  }

  /** Connect, check both topics, learn their partitions and start positions, join the group. */
  static async open(opts: KafkaSourceOptions): Promise<KafkaSource> {
    const s = new KafkaSource(opts);
    try {
      await s.start();
    } catch (e) {
      await s.close().catch(() => {});
      throw e;
    }
    return s;
  }

  private key(topic: string, partition: number): string {
    return `${topic}/${partition}`;
  }

  private topicOf(side: Side): string {
    return side === 0 ? this.opts.leftTopic : this.opts.rightTopic;
  }

  private async start(): Promise<void> {
    const { leftTopic, rightTopic, groupId } = this.opts;
    this.admin = await connectedAdmin(this.h, 'E_INPUT');
    const admin = this.admin;
    const info = await describeWith(admin, [leftTopic, rightTopic]);
    for (const [i, t] of info.entries()) {
      if (!t.exists) {
        throw new JoineryError('E_INPUT', `Kafka topic "${t.topic}" (--${i === 0 ? 'left' : 'right'} kafka:${t.topic}) does not exist on ${this.h.brokers.join(',')}; ` +
          `create it (joinery gen creates its topics) or check the name`);
      }
      if (t.partitions === 0) throw new JoineryError('E_INPUT', `Kafka topic "${t.topic}" has no partitions`);
    }
    this.topicParts = [info[0].partitions, info[1].partitions];
    const skew = this.partitionProblem(info[0].partitions, info[1].partitions);
    if (skew) throw new JoineryError('E_INPUT', skew);
    // Start positions: startOffsets, else committed offsets of the group, else --from.
    const explicit = new Map<string, number>();
    for (const o of this.opts.startOffsets ?? []) {
      const side = o.topic === leftTopic ? 0 : o.topic === rightTopic ? 1 : -1;
      const off = Number(o.offset);
      if (side < 0) throw usageError(`startOffsets: topic ${JSON.stringify(o.topic)} is neither --left kafka:${leftTopic} nor --right kafka:${rightTopic}`);
      if (!Number.isInteger(o.partition) || o.partition < 0 || o.partition >= info[side].partitions) {
        throw new JoineryError('E_INPUT', `startOffsets: ${o.topic} has no partition ${o.partition} (it has ${info[side].partitions})`);
      }
      if (!Number.isSafeInteger(off) || off < 0) throw usageError(`startOffsets: offset of ${o.topic}/${o.partition} must be a whole number ≥ 0 (got ${String(o.offset)})`);
      explicit.set(this.key(o.topic, o.partition), off);
    }
    const committed = new Map<string, number>();
    // a broker just started answers "coordinator is loading" / "not the coordinator" for a while
    let fetched: Awaited<ReturnType<Admin['fetchOffsets']>> | null = null;
    for (let delayMs = 100, deadline = Date.now() + this.h.connectTimeoutMs; !fetched;) {
      try {
        fetched = await admin.fetchOffsets({ groupId, topics: [leftTopic, rightTopic] });
      } catch (e) {
        if (!isConnectivityError(e) || Date.now() >= deadline) throw new JoineryError('E_INPUT', `reading the committed offsets of group ${groupId} failed: ${errText(e)}`, { cause: e });
        await sleep(delayMs);
        delayMs = Math.min(delayMs * 2, 1_000);
      }
    }
    for (const t of fetched) {
      for (const p of t.partitions) committed.set(this.key(t.topic, p.partition), Number(p.offset));
    }
    const refs: PartitionRef[] = [];
    for (const [i, t] of info.entries()) {
      const side = i as Side;
      const offs = await admin.fetchTopicOffsets(t.topic);
      const byTime = typeof this.from === 'number' ? await admin.fetchTopicOffsetsByTimestamp(t.topic, this.from) : [];
      for (let p = 0; p < t.partitions; p++) {
        const o = offs.find((x) => x.partition === p);
        const low = Number(o?.low ?? 0), high = Number(o?.high ?? 0);
        const start = explicit.get(this.key(t.topic, p));
        if (start !== undefined && (start < low || start > high)) {
          throw new JoineryError('E_INPUT', `start offset ${start} of ${t.topic}/${p} is outside its records [${low}, ${high}]` +
            (start < low ? ' (deleted by retention?)' : ' (a checkpoint of another topic?)') + ': cannot resume exactly there');
        }
        // an explicit start replaces the committed offset in every position computed below
        const c = start !== undefined ? -1 : committed.get(this.key(t.topic, p)) ?? -1;
        let floor = start ?? -1;
        if (c < 0 && start === undefined) {
          if (this.from === 'earliest') floor = low;
          else if (this.from === 'latest') floor = high;
          else floor = Math.max(low, Number(byTime.find((x) => x.partition === p)?.offset ?? high));
        }
        this.parts.set(this.key(t.topic, p), {
          topic: t.topic, side, partition: p, floor, explicitStart: start !== undefined, committedAtOpen: c, enqueuedNext: -1, deliveredNext: -1,
          assigned: false, paused: false, userPaused: false, held: false, aligned: false, queuedBytes: 0, queuedBatches: 0, highSeen: high,
        });
        refs.push({ side, partition: p });
      }
    }
    this.partitions = refs;

    await this.startConsumer();
    if (this.fatal) throw this.fatal;
    this.metaTimer = setInterval(() => { void this.checkTopics(); }, DEFAULTS.metadataPollMs);
    this.metaTimer.unref();
  }

  /** Partition counts of both topics at open: the co-partitioned join and the checkpoints depend on them. */
  private topicParts: [number, number] = [0, 0];
  private metaTimer: NodeJS.Timeout | null = null;
  private metaAdmin: Admin | null = null;
  private metaCheck: Promise<void> | null = null;

  private partitionProblem(left: number, right: number): string | null {
    const { leftTopic, rightTopic } = this.opts;
    const [l0, r0] = this.topicParts;
    const counts = `"${leftTopic}" (--left) has ${left} partition(s), "${rightTopic}" (--right) has ${right}`;
    if (left !== right) {
      return `Kafka input topics are not co-partitioned: ${counts}${left !== l0 || right !== r0 ? ` (${l0} and ${r0} when the run started)` : ''}; ` +
        'the join reads partition p of both topics together, so both need the same partition count (check with joinery topics)';
    }
    if (left !== l0 || right !== r0) {
      return `the partition count of the Kafka input topics changed while running: ${counts} (${l0} and ${r0} when the run started); ` +
        'restart joinery to read the new partitions (keys may have moved between partitions)';
    }
    return null;
  }

  /**
   * Both input topics still exist with the partition counts of the start, else the source fails
   * (E_INPUT naming the topic): a deleted topic otherwise looks like a lost broker to kafkajs, and
   * partitions added to one topic break the co-partitioning silently. Connectivity problems are
   * left to the consumer's reconnects.
   */
  private checkTopics(): Promise<void> {
    if (this.metaCheck) return this.metaCheck;
    if (this.closed || this.fatal) return Promise.resolve();
    // bounded: an unreachable broker must not hold up the reconnects that wait for this
    let timer: NodeJS.Timeout | undefined;
    const bounded = Promise.race([this.checkTopicsOnce(), new Promise<void>((r) => { timer = setTimeout(r, 5_000); })]);
    this.metaCheck = bounded.finally(() => { clearTimeout(timer); this.metaCheck = null; });
    return this.metaCheck;
  }

  private async checkTopicsOnce(): Promise<void> {
    const { leftTopic, rightTopic } = this.opts;
    try {
      if (!this.metaAdmin) { const a = this.h.kafka.admin({ retry: { retries: 1 } }); await a.connect(); this.metaAdmin = a; }
      const info = await describeFromClusterMetadata(this.metaAdmin, [leftTopic, rightTopic]);
      if (this.closed || this.fatal) return;
      const gone = info.findIndex((t) => !t.exists);
      if (gone >= 0) {
        this.fail(new JoineryError('E_INPUT', `Kafka input topic "${info[gone].topic}" (--${gone === 0 ? 'left' : 'right'}) no longer exists on ${this.h.brokers.join(',')}: it was deleted while the run was reading it`));
        return;
      }
      const problem = this.partitionProblem(info[0].partitions, info[1].partitions);
      if (problem) this.fail(new JoineryError('E_INPUT', problem));
    } catch {
      const a = this.metaAdmin;
      this.metaAdmin = null;
      void a?.disconnect().catch(() => {});
    }
  }

  /** Create, subscribe and run a kafkajs consumer (at open, and again after it gave up on a lost broker). */
  private async startConsumer(): Promise<void> {
    const { leftTopic, rightTopic, groupId } = this.opts;
    const nParts = this.parts.size;
    const maxBytesPerPartition = this.opts.maxBytesPerPartition ?? DEFAULTS.maxBytesPerPartition;
    const consumer = this.h.kafka.consumer({
      groupId,
      minBytes: this.opts.minBytes ?? DEFAULTS.minBytes,
      maxWaitTimeInMs: this.opts.maxWaitTimeInMs ?? DEFAULTS.maxWaitTimeInMs,
      maxBytesPerPartition,
      maxBytes: Math.min(64 * 1024 * 1024, Math.max(10 * 1024 * 1024, nParts * maxBytesPerPartition)),
      sessionTimeout: this.opts.sessionTimeoutMs ?? DEFAULTS.sessionTimeoutMs,
      heartbeatInterval: this.opts.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
      partitionAssigners: [coPartitionedAssignerWith(this.opts.beforeRejoin ? () => this.beforeJoin() : undefined)],
      // kafkajs's own restart after a crash cannot be stopped while it re-joins the group (its
      // Runner is not yet 'running', so disconnect() skips it and it fetches on afterwards, keeping
      // the process alive): restarts are done here instead (onConsumerGaveUp), with a new consumer.
      retry: { retries: 5, restartOnFailure: async () => false },
    });
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
      const st = this.parts.get(this.key(e.payload.topic, e.payload.partition));
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
      await this.checkTopics();
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

  /** Kafka partitions (numbers, as both topics share them) assigned to this member now. */
  assignedKafkaPartitions(): number[] {
    const out = new Set<number>();
    for (const st of this.parts.values()) if (st.assigned) out.add(st.partition);
    return [...out].sort((a, b) => a - b);
  }

  /** Before a (re-)join: stop delivering, pause fetching, and let the owner commit what it applied. */
  private async beforeJoin(): Promise<void> {
    if (this.generation === 0 || this.closed) return; // the first join: nothing owned yet
    // The hook's synchronous part runs first: it stops the engine's router, which must know it is
    // stopping before next() starts returning null (else that would read as the end of input).
    const committing = this.opts.beforeRejoin?.();
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
    const starts = new Map(startOffsets.map((o) => [this.key(o.topic, o.partition), Number(o.offset)]));
    this.startPositions = startOffsets.filter((o) => this.parts.get(this.key(o.topic, o.partition))?.assigned);
    // Partitions given a start: what was fetched of them goes, and they are read again from there.
    // The others keep their queue and positions (fetched in this generation, or past what this
    // member applied), as kafkajs has moved its fetch position past what is queued.
    const keep: KafkaRecordBatch[] = [];
    for (const b of this.queue) {
      const st = this.parts.get(this.key(b.topic, b.kafkaPartition))!;
      if (!starts.has(this.key(b.topic, b.kafkaPartition))) { keep.push(b); continue; }
      this.unqueue(st, b);
      this.recycle(b);
    }
    this.queue.length = 0;
    this.queue.push(...keep);
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

  private wake(): void {
    this.waiters = wakeAll(this.waiters);
  }

  private wakeSpace(): void {
    this.spaceWaiters = wakeAll(this.spaceWaiters);
  }

  private onGroupJoin(memberAssignment: Record<string, number[]>): void {
    this.generation++;
    if (this.generation > 1) this.stats.rebalances++;
    const now = new Set<string>();
    for (const [topic, ps] of Object.entries(memberAssignment)) for (const p of ps) now.add(this.key(topic, p));
    const assigned: PartitionRef[] = [], revoked: PartitionRef[] = [];
    for (const [k, st] of this.parts) {
      const isNow = now.has(k);
      if (isNow && !st.assigned) assigned.push({ side: st.side, partition: st.partition });
      if (!isNow && st.assigned) revoked.push({ side: st.side, partition: st.partition });
      st.assigned = isNow;
    }
    // Revoked partitions: forget what was fetched but not handed out (the new owner reads it).
    if (revoked.length > 0) {
      const keep: KafkaRecordBatch[] = [];
      for (const b of this.queue) {
        const st = this.parts.get(this.key(b.topic, b.kafkaPartition))!;
        if (st.assigned) { keep.push(b); continue; }
        this.unqueue(st, b);
        this.stats.purgedBatches++;
        this.recycle(b);
      }
      this.queue.length = 0;
      this.queue.push(...keep);
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

  private unqueue(st: PartState, b: KafkaRecordBatch): void {
    const n = b.data.byteLength;
    this.queuedBytes -= n;
    st.queuedBytes -= n;
    st.queuedBatches--;
    if (!st.paused) this.unpausedQueuedBytes -= n;
  }

  private async waitForSpace(p: EachBatchPayload, st: PartState): Promise<boolean> {
    const tooFull = (): boolean => this.unpausedQueuedBytes >= this.queueLimit || this.queuedBytes >= 4 * this.queueLimit;
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
    const st = this.parts.get(this.key(batch.topic, batch.partition));
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
    if (threshold >= 0 && msgs.length > 0 && Number(msgs[0].offset) < threshold) {
      while (first < msgs.length && Number(msgs[first].offset) < threshold) first++;
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
    const count = msgs.length - first;
    let bytes = 0;
    for (let i = first; i < msgs.length; i++) { const v = msgs[i].value; if (v) bytes += v.length; }
    const data = this.takeData(bytes);
    const offsets = this.takeOffsets(count + 1);
    let pos = 0;
    offsets[0] = 0;
    for (let i = first, k = 1; i < msgs.length; i++, k++) {
      const v = msgs[i].value;
      if (v && v.length > 0) { data.set(v, pos); pos += v.length; }
      offsets[k] = pos;
    }
    const firstOffset = Number(msgs[first].offset);
    const lastMsgOffset = Number(msgs[msgs.length - 1].offset);
    let recordOffsets: Float64Array | undefined;
    if (lastMsgOffset - firstOffset + 1 !== count) {
      recordOffsets = new Float64Array(count);
      for (let i = first, k = 0; i < msgs.length; i++, k++) recordOffsets[k] = Number(msgs[i].offset);
    }
    const kb: KafkaRecordBatch = {
      side: st.side, partition: st.partition, format: this.format,
      data: data.subarray(0, bytes), offsets, count,
      firstPosition: firstOffset, origin: `${st.topic}/${st.partition}`,
      topic: st.topic, kafkaPartition: st.partition,
      nextOffset: String(BigInt(lastOffset) + 1n), highWatermark: batch.highWatermark, recordOffsets,
    };
    this.bufOf.set(kb, data);
    this.queue.push(kb);
    this.queuedBytes += bytes;
    st.queuedBytes += bytes;
    st.queuedBatches++;
    if (!st.paused) this.unpausedQueuedBytes += bytes;
    st.enqueuedNext = next;
    this.idleSince = -1;
    this.lastActivity = Date.now();
    p.resolveOffset(lastOffset);
    this.wake();
  }

  private takeData(bytes: number): Buffer {
    for (let i = 0; i < this.dataPool.length; i++) {
      if (this.dataPool[i].length >= bytes) return this.dataPool.splice(i, 1)[0];
    }
    return Buffer.allocUnsafeSlow(pow2AtLeast(Math.max(bytes, MIN_DATA_BYTES)));
  }

  private takeOffsets(n: number): Uint32Array {
    for (let i = 0; i < this.offsPool.length; i++) {
      if (this.offsPool[i].length >= n) return this.offsPool.splice(i, 1)[0];
    }
    return new Uint32Array(pow2AtLeast(Math.max(n, 4096)));
  }

  private recycle(b: KafkaRecordBatch): void {
    const buf = this.bufOf.get(b);
    if (buf && this.dataPool.length < POOL_MAX) this.dataPool.push(buf);
    if (this.offsPool.length < POOL_MAX) this.offsPool.push(b.offsets);
  }

  /** The next batch of a partition that is not paused; null at the end (exit-when-idle, close). */
  async next(): Promise<KafkaRecordBatch | null> {
    if (this.lastDelivered) { this.recycle(this.lastDelivered); this.lastDelivered = null; }
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

  private take(): KafkaRecordBatch | null {
    for (let i = 0; i < this.queue.length; i++) {
      const b = this.queue[i];
      const st = this.parts.get(this.key(b.topic, b.kafkaPartition))!;
      // A queue full of batches of partitions paused for alignment would keep out the batches of
      // the slowest partition they wait for: then those go out anyway (alignment is a bound on
      // memory, not on correctness).
      if (st.paused && !(st.aligned && !st.userPaused && !st.held && this.queuedBytes >= 4 * this.queueLimit)) continue;
      if (i === 0) this.queue.shift(); else this.queue.splice(i, 1);
      this.unqueue(st, b);
      st.deliveredNext = Number(b.nextOffset);
      this.wakeSpace();
      return b;
    }
    return null;
  }

  private waitForBatch(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== done); r(); }, ms);
      const done = (): void => { clearTimeout(t); r(); };
      this.waiters.push(done);
    });
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
      const topics = [...new Set(mine.map((st) => st.topic))];
      const highs = new Map<string, number>();
      for (const t of topics) for (const o of await admin.fetchTopicOffsets(t)) highs.set(this.key(t, o.partition), Number(o.high));
      let committed: Map<string, number> | null = null;
      if (mine.some((st) => st.enqueuedNext < 0 && st.floor < 0)) {
        committed = new Map();
        for (const t of await admin.fetchOffsets({ groupId: this.opts.groupId, topics })) {
          for (const p of t.partitions) committed.set(this.key(t.topic, p.partition), Number(p.offset));
        }
      }
      for (const st of mine) {
        const k = this.key(st.topic, st.partition);
        let pos = Math.max(st.enqueuedNext, st.floor, st.committedAtOpen);
        if (committed) pos = Math.max(pos, committed.get(k) ?? -1);
        if (pos < (highs.get(k) ?? 0)) return false;
      }
      return true;
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

  /** Stop delivering (and fetching) a partition: queued batches of it wait until resume(). */
  pause(side: Side, partition: number): void {
    const st = this.parts.get(this.key(this.topicOf(side), partition));
    if (!st) return;
    st.userPaused = true;
    this.applyPause(st);
  }

  resume(side: Side, partition: number): void {
    const st = this.parts.get(this.key(this.topicOf(side), partition));
    if (!st) return;
    st.userPaused = false;
    this.applyPause(st);
  }

  /** Rebuild: hold a partition (as paused, but independent of pause/resume) until released. */
  hold(p: PartitionRef, held: boolean): void {
    const st = this.parts.get(this.key(this.topicOf(p.side), p.partition));
    if (!st) return;
    st.held = held;
    this.applyPause(st);
  }

  /** Event-time alignment: pause a partition that runs ahead (as paused, independent of pause/resume and hold). */
  align(p: PartitionRef, paused: boolean): void {
    const st = this.parts.get(this.key(this.topicOf(p.side), p.partition));
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
      this.unpausedQueuedBytes -= st.queuedBytes;
      try { this.consumer?.pause([{ topic: st.topic, partitions: [st.partition] }]); } catch { /* re-applied on the next group join */ }
      return;
    }
    this.unpausedQueuedBytes += st.queuedBytes;
    if (!this.ended) {
      try { this.consumer?.resume([{ topic: st.topic, partitions: [st.partition] }]); } catch { /* re-applied on the next group join */ }
    }
    this.wake();
    this.wakeSpace();
  }

  isPaused(side: Side, partition: number): boolean {
    return this.parts.get(this.key(this.topicOf(side), partition))?.paused ?? false;
  }

  /** Assigned partitions with records not handed out yet: queued, or below the highest high watermark seen. */
  unreadPartitions(): PartitionRef[] {
    const out: PartitionRef[] = [];
    for (const st of this.parts.values()) {
      if (!st.assigned || this.ended) continue;
      const pos = Math.max(st.deliveredNext, st.floor, st.committedAtOpen);
      if (st.queuedBatches > 0 || pos < st.highSeen) out.push({ side: st.side, partition: st.partition });
    }
    return out;
  }

  /** Per assigned partition: next offset to deliver, highest high watermark seen, lag between them (for /status, /metrics). */
  positions(): PartitionPosition[] {
    return [...this.parts.values()].filter((st) => st.assigned).map((st) => {
      const offset = Math.max(st.deliveredNext, st.floor, st.committedAtOpen, 0);
      return { side: st.side, partition: st.partition, topic: st.topic, offset, end: st.highSeen, lag: Math.max(0, st.highSeen - offset), paused: st.paused };
    });
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
    return { kind: 'kafka', name: this.name, kafka: [...pos.values()] };
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
    let delay = 100;
    for (;;) {
      if (this.fatal) throw this.fatal;
      const mine = positions.filter((p) => this.parts.get(this.key(p.topic, p.partition))?.assigned);
      if (mine.length === 0) return { skipped: positions.length };
      try {
        const c = this.consumer;
        if (!c) throw new Error('consumer closed');
        // kafkajs returns without committing (and without an error) while its consumer is not
        // running, e.g. re-joining the group after a broker restart: only its COMMIT_OFFSETS event
        // says the commit was sent and acknowledged.
        let sent = false;
        const off = c.on(c.events.COMMIT_OFFSETS, () => { sent = true; });
        try {
          await c.commitOffsets(mine.map((p) => ({ topic: p.topic, partition: p.partition, offset: String(p.offset), metadata: metadata ?? null })));
        } finally {
          off();
        }
        if (!sent) throw new Error('the Kafka consumer is not running (re-joining its group); offsets not committed');
        return { skipped: positions.length - mine.length };
      } catch (e) {
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
    if (this.metaTimer) { clearInterval(this.metaTimer); this.metaTimer = null; }
    this.wake();
    this.wakeSpace();
    this.wakeGeneration();
    const CLOSE_WAIT_MS = 2_000;
    const stopped = (async () => {
      // a consumer that is still joining cannot be stopped (disconnect() would skip kafkajs's
      // Runner, which then fetches on): let it finish joining first
      for (let i = 0; this.starting && i < 10; i++) await this.starting;
      const c = this.consumer, a = this.admin, m = this.metaAdmin;
      this.consumer = null;
      this.admin = null;
      this.metaAdmin = null;
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
    this.queue.length = 0;
    this.dataPool.length = 0;
    this.offsPool.length = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Producer

export type KafkaCompression = 'none' | 'gzip';

export interface KafkaProducerOptions {
  brokers: string[];
  kafka?: KafkaHandle;
  clientId?: string;
  topic: string;
  compression?: KafkaCompression;
  connectTimeoutMs?: number;
  /** Create the topic with this many partitions when it is missing (else a missing topic is an error). */
  createPartitions?: number;
  /** A send carries at least this many records unless the linger time passes first (default 1000). */
  batchRecords?: number;
  /** Longest wait before a partial batch is sent (default 20 ms). */
  lingerMs?: number;
  /** Most records in one produce request (default 16384). */
  maxSendRecords?: number;
  /**
   * Most key+value bytes for one partition in one produce request (default 900 KiB): a partition's
   * records form one record batch, which the broker rejects above message.max.bytes (1 MiB by default).
   */
  maxBatchBytes?: number;
  /** write() returns false above this many buffered records (default 65536) … */
  highWaterRecords?: number;
  /**
   * … or above this many key+value bytes buffered, the send in flight included (default 32 MiB;
   * keep it above two sends, see maxSendRecords and maxBatchBytes, or sends get smaller).
   */
  highWaterBytes?: number;
  /** kafkajs retries of one send (default 10; backoff 200 ms × 2 up to 5 s) … */
  retries?: number;
  /** … and, while the broker is unreachable, how long the same send is repeated before the sink fails (default 60 s). */
  reconnectTimeoutMs?: number;
  /**
   * Transactional mode (KafkaRecordSink only): records go into Kafka transactions under this id,
   * committed with commitTransaction() together with consumer-group offsets. Opening the sink
   * fences every earlier producer with the same id and aborts its open transaction, so one
   * transactional id per output stream and engine instance (a restart reuses it).
   */
  transactionalId?: string;
  /**
   * The broker aborts a transaction that stays open longer than this (ms, default 60000, at most
   * the broker's transaction.max.timeout.ms, 15 min by default): commit at least this often
   * while writing. The clock starts with the first send after a commit.
   */
  transactionTimeoutMs?: number;
}

/** A consumer-group position committed with a transaction (offset = next offset to read). */
export interface TransactionOffset {
  topic: string;
  partition: number;
  offset: string | number | bigint;
}

/**
 * An idempotent producer to one topic with its own batching: records accumulate; a send goes out
 * once batchRecords are waiting or lingerMs has passed; exactly one send is in flight (kafkajs
 * assigns idempotence sequence numbers per request, and a later request overtaking a failed one
 * could be de-duplicated away by the broker), and whatever arrived meanwhile goes in the next one.
 * A send that still fails after kafkajs's retries makes the sink failed: every later call throws
 * that JoineryError('E_OUTPUT').
 */
class BatchingProducer {
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
    this.h = opts.kafka ?? createKafka(opts.brokers, opts.clientId ?? 'joinery', { connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
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
   */
  commitTransaction(groupId: string, offsets: readonly TransactionOffset[], metadata: string): Promise<void> {
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
          const topics = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
          // kafkajs passes each partition's metadata through to TxnOffsetCommit as it is
          await this.retryTxn(() => tx.sendOffsets({ consumerGroupId: groupId, topics }), undefined, (e) => this.offsetTopicsExist(e, topics.map((t) => t.topic)));
        }
        step = 'committing';
        await this.checkTopic();
        await tx.commit(); // EndTxn is retried by the patch in loadKafkajs
        this.tx = null;
        this.stats.commits++;
      } catch (e) {
        const err = this.txnError(step, e);
        if (!this.error) this.error = err;
        this.notifyReady();
        this.notifyIdle();
        throw err;
      }
    });
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
      await tx.abort(); // EndTxn is retried by the patch in loadKafkajs
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

function toBuffer(v: Uint8Array | string): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  const b = Buffer.allocUnsafe(v.length);
  b.set(v);
  return b;
}

/**
 * The joined output to a Kafka topic: one record per joined pair (FlatBuffers JoinedRecord or
 * JSON), keyed by the join key so a key's records stay on one partition and in order. The value
 * and key bytes are copied, so the caller may reuse its buffers.
 *
 * Back-pressure: write() returns false when the caller should `await sink.ready()` (highWaterRecords,
 * highWaterBytes); the engine then holds routing until it resolves.
 *
 * Exactly-once output (`transactionalId` set): records are written in Kafka transactions, sent in
 * the same large batches as in plain mode while the transaction is open; commitTransaction() ends
 * one together with the input's consumer-group offsets and a metadata string (a checkpoint id),
 * so output, input positions and checkpoint id become visible atomically to read_committed
 * consumers and to fetchCommittedOffsets(). Opening fences older producers with the same id and
 * aborts their open transaction; abortTransaction() and close() abort the open one.
 */
export class KafkaRecordSink {
  readonly spec: string;
  private readonly p: BatchingProducer;

  private constructor(opts: KafkaProducerOptions) {
    this.spec = `kafka:${opts.topic}`;
    this.p = new BatchingProducer(opts);
  }

  static async open(opts: KafkaProducerOptions): Promise<KafkaRecordSink> {
    const s = new KafkaRecordSink(opts);
    await s.p.start();
    return s;
  }

  get stats(): { records: number; bytes: number; sends: number; commits: number; aborts: number } {
    return this.p.stats;
  }

  /** True when opened with a transactionalId. */
  get transactional(): boolean {
    return this.p.txnId !== null;
  }

  /** See BatchingProducer.commitTransaction: records written so far + offsets (with metadata on each partition), atomically. */
  commitTransaction(groupId: string, offsets: readonly TransactionOffset[], metadata: string): Promise<void> {
    return this.p.commitTransaction(groupId, offsets, metadata);
  }

  /** Drop the records written since the last commit and abort the open transaction. */
  abortTransaction(): Promise<void> {
    return this.p.abortTransaction();
  }

  /** Records buffered, not yet handed to the broker. */
  get buffered(): number {
    return this.p.buffered;
  }

  /** Key+value bytes held until the broker acknowledges them (buffered and in flight). */
  get bufferedBytes(): number {
    return this.p.bufferedBytes;
  }

  write(key: Uint8Array | string | null, value: Uint8Array | string): boolean {
    return this.p.add(key === null ? null : toBuffer(key), toBuffer(value));
  }

  ready(): Promise<void> {
    return this.p.ready();
  }

  flush(): Promise<void> {
    return this.p.flush();
  }

  close(): Promise<void> {
    return this.p.close();
  }
}

/**
 * LineSink for `kafka:TOPIC` (late events, dead letters): each newline-terminated line of a chunk
 * becomes one record (without the newline, no key). write() is synchronous like the other line
 * sinks and throws once the sink has failed; flush() and close() return promises the caller should
 * await (a rejected one carries the JoineryError('E_OUTPUT')). Use `needsDrain` / ready() for
 * back-pressure.
 */
export class KafkaLineSink implements LineSink {
  readonly spec: string;
  private readonly p: BatchingProducer;
  private partial: Buffer | null = null;

  private constructor(opts: KafkaProducerOptions) {
    this.spec = `kafka:${opts.topic}`;
    this.p = new BatchingProducer(opts);
  }

  /** `spec` is kafka:TOPIC. */
  static async open(spec: string, opts: Omit<KafkaProducerOptions, 'topic'>): Promise<KafkaLineSink> {
    if (!spec.startsWith('kafka:') || spec.length <= 6) throw usageError(`expected kafka:TOPIC, got ${JSON.stringify(spec)}`);
    if (opts.transactionalId !== undefined) throw usageError(`${spec}: transactional output is only available for the joined output (KafkaRecordSink)`);
    const s = new KafkaLineSink({ ...opts, topic: spec.slice(6) });
    await s.p.start();
    return s;
  }

  get stats(): { records: number; bytes: number; sends: number; commits: number; aborts: number } {
    return this.p.stats;
  }

  get needsDrain(): boolean {
    return this.p.buffered >= 65_536;
  }

  ready(): Promise<void> {
    return this.p.ready();
  }

  write(chunk: Uint8Array): void {
    if (this.p.failed) throw this.p.failed;
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 10) continue;
      let line = chunk.subarray(start, i);
      if (this.partial) { line = Buffer.concat([this.partial, line]); this.partial = null; }
      let end = line.length;
      if (end > 0 && line[end - 1] === 13) end--;
      if (end > 0) this.p.add(null, toBuffer(line.subarray(0, end)));
      start = i + 1;
    }
    if (start < chunk.length) {
      const rest = toBuffer(chunk.subarray(start));
      this.partial = this.partial ? Buffer.concat([this.partial, rest]) : rest;
    }
  }

  flush(): Promise<void> {
    if (this.partial && this.partial.length > 0) { this.p.add(null, this.partial); this.partial = null; }
    return this.p.flush();
  }

  async close(): Promise<void> {
    if (this.partial && this.partial.length > 0 && !this.p.failed) { this.p.add(null, this.partial); this.partial = null; }
    return this.p.close();
  }
}

// ---------------------------------------------------------------------------------------------
// High watermarks (topicOffsets read_uncommitted)

/**
 * High watermarks of a topic's partitions (read_uncommitted end offsets). kafkajs's admin lists
 * offsets with isolation READ_COMMITTED only, which answers the last stable offset; a kafkajs
 * cluster created with READ_UNCOMMITTED (through the Kafka client's private cluster factory, the
 * one kafkajs's own consumers use) answers the high watermark.
 */
export async function highWatermarks(h: KafkaHandle, topic: string): Promise<Map<number, number>> {
  const kafka = h.kafka as unknown as Record<symbol, unknown>;
  const sym = Object.getOwnPropertySymbols(kafka).find((x) => x.description === 'private:Kafka:createCluster');
  const create = sym ? kafka[sym] : undefined;
  if (typeof create !== 'function') throw new Error('kafkajs internals changed: cannot list high watermarks (private:Kafka:createCluster)');
  const cluster = (create as (o: object) => {
    connect(): Promise<void>; disconnect(): Promise<void>; addTargetTopic(t: string): Promise<void>; refreshMetadataIfNecessary(): Promise<void>;
    findTopicPartitionMetadata(t: string): Array<{ partitionId: number }>;
    fetchTopicsOffset(t: Array<{ topic: string; fromBeginning: boolean; partitions: Array<{ partition: number }> }>): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  })({ isolationLevel: 0 /* READ_UNCOMMITTED */ });
  try {
    await cluster.connect();
    await cluster.addTargetTopic(topic);
    await cluster.refreshMetadataIfNecessary();
    const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId }));
    const r = await cluster.fetchTopicsOffset([{ topic, fromBeginning: false, partitions }]);
    return new Map(r.flatMap((t) => t.partitions.map((p) => [p.partition, Number(p.offset)] as [number, number])));
  } finally {
    await cluster.disconnect().catch(() => {});
  }
}
