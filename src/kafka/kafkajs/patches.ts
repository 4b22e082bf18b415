/**
 * Loading kafkajs (2.2.4, pinned exactly in package.json) with every patch joinery puts into it:
 * require-cache replacements of private kafkajs/src modules and one prototype patch, installed
 * before kafkajs itself loads. This is the only module that requires kafkajs; the rest of the
 * adapter takes `kafkajs` from here, so nothing can load it unpatched.
 *
 * - group-messages: linear grouping of a send's messages by partition (kafkajs's is quadratic).
 * - txn-retry: EndTxn / AddOffsetsToTxn / AddPartitionsToTxn retried on retriable errors.
 * - fast-codec: faster record-batch encoding/decoding and CRC32C (fast-codec.ts).
 * - rejoin: a hook awaited before ConsumerGroup.joinAndSync (checkpoint before a rebalance), told
 *   whether this member was evicted from the group (then it must not commit).
 * - txn-offset-fence: TxnOffsetCommit v3 (KIP-447), so the group coordinator refuses the
 *   transactional offset commit of a member it evicted (txn-offset-commit.ts).
 * - offset-fetch-stable: OffsetFetch v6/v7 (KIP-447 require_stable), so a member planning after a
 *   rebalance waits for a transaction with pending offsets instead of reading the previous ones
 *   (offset-fetch.ts; admin.ts fetchCommittedOffsets).
 *
 * checkKafkajsPatches (called at start by the CLI and the group member) logs at debug level which
 * patches are active, warns for each that failed to install, and refuses group-member mode with
 * checkpoints without 'rejoin' or 'txn-offset-fence' (E_KAFKA_PATCH).
 */
import { createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';
import { JoineryError } from '../../core/errors.js';
import { log } from '../../core/log.js';
import { errText, isRetriableTxnError, sleep } from './errors.js';
import { crc32cImpl } from './crc32c.js';
import { fastCodecEnabled, fastCodecReplaced, installFastCodec } from './fast-codec.js';
import { offsetFetchRequests } from './offset-fetch.js';
import { txnOffsetCommitRequests } from './txn-offset-commit.js';

const requireCjs = createRequire(import.meta.url);

/**
 * The patches below, by name. Each is checked at start (checkKafkajsPatches): a patch that did not
 * install is reported, never silently dropped, and group-member mode refuses to run without
 * 'rejoin' (its exactly-once across a rebalance depends on it).
 * JOINERY_KAFKAJS_SKIP_PATCH=NAME[,NAME] leaves patches out on purpose (to bisect, and for the test
 * of that refusal); JOINERY_KAFKAJS_FAST=0 / JOINERY_FAST_SKIP govern 'fast-codec' (fast-codec.ts).
 */
export type KafkajsPatchName = 'group-messages' | 'txn-retry' | 'fast-codec' | 'rejoin' | 'txn-offset-fence' | 'offset-fetch-stable';
const PATCH_NAMES: readonly KafkajsPatchName[] = ['group-messages', 'txn-retry', 'fast-codec', 'rejoin', 'txn-offset-fence', 'offset-fetch-stable'];
/** The patches a group member with checkpoints cannot keep exactly-once without. */
const MEMBER_PATCHES: readonly KafkajsPatchName[] = ['rejoin', 'txn-offset-fence'];
const skippedPatches = new Set((process.env.JOINERY_KAFKAJS_SKIP_PATCH ?? '').split(',').map((x) => x.trim()).filter(Boolean));
/** Why a patch is not installed ('skipped …' when left out on purpose); absent once installed. */
const patchFailures = new Map<KafkajsPatchName, string>();
/** What each installed patch put in place, to verify at start that it is still there. */
let groupMessagesReplacement: unknown;
let eosManagerReplacement: unknown;
let txnOffsetCommitReplacement: unknown;
let offsetFetchReplacement: unknown;
const TXN_OFFSET_COMMIT = 'kafkajs/src/protocol/requests/txnOffsetCommit/index.js';
const OFFSET_FETCH = 'kafkajs/src/protocol/requests/offsetFetch/index.js';

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
        // A message that names its partition gets it from kafkajs's partitioners too, but only after
        // they filter the partition list, an array per message (joinery's sinks always name it).
        const named = (message as { partition?: number | null }).partition;
        const partition = named !== null && named !== undefined ? named : partitioner({ topic, partitionMetadata, message });
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
  installPatch('txn-offset-fence', () => {
    // replaced before kafkajs's request table (protocol/requests/index.js) takes it at load
    if (requireCjs.resolve('kafkajs/src/protocol/requests/index.js') in requireCjs.cache) return 'kafkajs/src/protocol/requests/index.js was loaded before the patch';
    const replacement = txnOffsetCommitRequests(requireCjs);
    const mod = requireCjs.cache[requireCjs.resolve(TXN_OFFSET_COMMIT)];
    if (!mod) return `${TXN_OFFSET_COMMIT} did not load`;
    mod.exports = txnOffsetCommitReplacement = replacement;
    return undefined;
  });
  installPatch('offset-fetch-stable', () => {
    if (requireCjs.resolve('kafkajs/src/protocol/requests/index.js') in requireCjs.cache) return 'kafkajs/src/protocol/requests/index.js was loaded before the patch';
    const replacement = offsetFetchRequests(requireCjs);
    const mod = requireCjs.cache[requireCjs.resolve(OFFSET_FETCH)];
    if (!mod) return `${OFFSET_FETCH} did not load`;
    mod.exports = offsetFetchReplacement = replacement;
    return undefined;
  });
  return requireCjs('kafkajs') as typeof KafkaJS;
}

/** Property of a partition assigner instance holding its source's before-re-join hook. */
export const BEFORE_JOIN = Symbol('joinery.beforeJoin');
/** The joinAndSync this patch installed (checked at start: still on the prototype). */
let rejoinJoinAndSync: unknown;

/**
 * What the before-join hook is told: the kafkajs ConsumerGroup (its generationId and memberId are
 * this member's once the join is done), and `evicted` — the error type saying the coordinator no
 * longer counts this member in the generation it holds (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
 * FENCED_INSTANCE_ID), so its partitions may be another member's already and it must not commit
 * anything for them; null for an ordinary rebalance (or when that could not be told).
 */
export interface BeforeJoinInfo { evicted: string | null; group: { generationId?: number; memberId?: string | null; groupInstanceId?: string | null } }
/** Error types by which the group coordinator says a member is out of its generation. */
export const EVICTED_TYPES: ReadonlySet<string> = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);
/** Set on a ConsumerGroup once one of its joins completed (a later memberId of null means the coordinator forgot it). */
const JOINED = Symbol('joinery.joined');

/**
 * kafkajs has no "partitions revoked" callback: on a rebalance its runner calls
 * ConsumerGroup.joinAndSync at once, and the partitions may go to another member. A member whose
 * join buffer and output are not yet committed for them must commit first (what the Java client's
 * onPartitionsRevoked is for; the coordinator accepts commits of the current generation until the
 * member re-joins, within the rebalance timeout). This patch awaits a hook before every
 * joinAndSync of a consumer whose assigner carries one (KafkaSource's, per consumer): the source
 * stops delivering and the engine takes its checkpoint there. A failing hook does not stop the
 * join (the source then fails on its own).
 *
 * A member that was evicted (it stalled past the session timeout: kafkajs set memberId to null on
 * UNKNOWN_MEMBER_ID, or a heartbeat now answers ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID) must not
 * checkpoint-and-commit here: the hook is told so (BeforeJoinInfo.evicted). One heartbeat is sent
 * to find out, unless kafkajs already knows.
 */
function patchRejoinHook(): string | undefined {
  if (rejoinJoinAndSync) return undefined;
  const ConsumerGroup = requireCjs(requireCjs.resolve('kafkajs/src/consumer/consumerGroup.js')) as { prototype: Record<string, unknown> };
  const original = ConsumerGroup.prototype.joinAndSync as ((this: unknown) => Promise<void>) | undefined;
  if (typeof original !== 'function') return 'kafkajs/src/consumer/consumerGroup.js has no ConsumerGroup.prototype.joinAndSync';
  type Group = BeforeJoinInfo['group'] & { assigners?: Array<Record<symbol, unknown>>; heartbeat?: (o: { interval: number }) => Promise<void>; [JOINED]?: boolean };
  ConsumerGroup.prototype.joinAndSync = async function joinAndSync(this: Group): Promise<void> {
    const hook = this.assigners?.map((a) => a[BEFORE_JOIN]).find((h) => typeof h === 'function') as ((info: BeforeJoinInfo) => Promise<void>) | undefined;
    if (hook) {
      let evicted: string | null = null;
      if (this[JOINED]) {
        if (this.memberId == null) evicted = 'UNKNOWN_MEMBER_ID';
        else {
          try { await this.heartbeat?.({ interval: 0 }); } catch (e) {
            const type = (e as { type?: string }).type ?? '';
            if (EVICTED_TYPES.has(type)) evicted = type;
          }
        }
      }
      // Heartbeats go on meanwhile: answered REBALANCE_IN_PROGRESS, they still keep the session
      // alive, so a checkpoint longer than the session timeout does not cost the membership.
      const beat = setInterval(() => { void this.heartbeat?.({ interval: 0 }).catch(() => {}); }, 1_000);
      try { await hook({ evicted, group: this }); } catch { /* reported by the hook's owner */ } finally { clearInterval(beat); }
    }
    await original.call(this);
    this[JOINED] = true;
  };
  rejoinJoinAndSync = ConsumerGroup.prototype.joinAndSync;
  return undefined;
}

/** How long one request to the transaction coordinator is retried (retriable errors, lost connections). */
const TXN_REQUEST_RETRY_MS = 60_000;

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
  'txn-offset-fence': 'a group member evicted from its group (stalled past the session timeout) could still commit output another member re-processes',
  'offset-fetch-stable': 'a group member reads the committed offsets without require_stable (two reads that agree), and may miss a transaction about to commit',
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
      case 'txn-offset-fence': {
        // in the require cache, and the very object kafkajs's request table uses
        const table = requireCjs('kafkajs/src/protocol/requests/index.js') as { requests?: Record<string, unknown> };
        active = inPlace(TXN_OFFSET_COMMIT, txnOffsetCommitReplacement) && table.requests?.TxnOffsetCommit === txnOffsetCommitReplacement;
        break;
      }
      case 'offset-fetch-stable': {
        const table = requireCjs('kafkajs/src/protocol/requests/index.js') as { requests?: Record<string, unknown> };
        active = inPlace(OFFSET_FETCH, offsetFetchReplacement) && table.requests?.OffsetFetch === offsetFetchReplacement;
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
 * checkpoints without the re-join hook (such a member would hand partitions over without
 * checkpointing them first) or without the fenced offset commit (an evicted member could commit
 * work another member redoes): either way its output would no longer be exactly-once.
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
      crc32c: crc32cImpl, // 'js' where @node-rs/crc32's prebuilt module did not load (slower, same result)
    });
    if (version !== KAFKAJS_VERSION) log.warn(`kafkajs ${version} is installed, but joinery's kafkajs patches are written for ${KAFKAJS_VERSION} (run npm ci)`);
    for (const s of status) {
      if (!s.active && !/^(skipped|turned off)/.test(s.detail)) log.warn(`kafkajs patch ${s.name} is not installed (${s.detail}): ${WITHOUT_PATCH[s.name]}`);
    }
    const unknown = [...skippedPatches].filter((n) => !(PATCH_NAMES as readonly string[]).includes(n));
    if (unknown.length > 0) log.warn(`JOINERY_KAFKAJS_SKIP_PATCH: no patch named ${unknown.join(', ')} (the patches: ${PATCH_NAMES.join(', ')})`);
  }
  if (!opts.groupMemberCheckpoints) return;
  const what: Record<string, string> = {
    rejoin: 'the kafkajs re-join hook (patch rejoin, ConsumerGroup.joinAndSync)',
    'txn-offset-fence': 'the fenced transactional offset commit (patch txn-offset-fence, TxnOffsetCommit v3)',
  };
  const why: Record<string, string> = {
    rejoin: 'would hand partitions over without checkpointing them',
    'txn-offset-fence': 'could commit, after being evicted from the group, work another member redoes',
  };
  for (const name of MEMBER_PATCHES) {
    const s = status.find((x) => x.name === name)!;
    if (s.active) continue;
    throw new JoineryError('E_KAFKA_PATCH', `${what[name]} is not installed: ${s.detail}; ` +
      `a group member (Kafka input with --checkpoint-dir) ${why[name]} and lose exactly-once, so it does not start; ` +
      `install kafkajs ${KAFKAJS_VERSION} exactly (npm ci) and unset JOINERY_KAFKAJS_SKIP_PATCH`);
  }
}

/** kafkajs, loaded once with the patches above. */
export const kafkajs = loadKafkajs();

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
export function javaMurmur2(key: Buffer | string): number {
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
