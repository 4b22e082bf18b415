/**
 * One kafkajs client per process: connection settings, socket tracking (closeKafka), waiting for
 * a broker at start, and kafkajs logs as compact one-line messages at WARN and above (retriable
 * protocol errors, rebalances and the like are demoted to INFO; identical lines at most every
 * 10 s). An unreachable broker is retried with backoff for the connect timeout, then reported with
 * the address tried.
 */
import { createRequire } from 'node:module';
import * as net from 'node:net';
import type * as KafkaJS from 'kafkajs';
import type { Admin, LogEntry } from 'kafkajs';
import { JoineryError, type ErrorCode } from '../../core/errors.js';
import { log as logger, type LogLevel } from '../../core/log.js';
import { formatDurationMs } from '../../core/units.js';
import { parseBrokers } from '../options.js';
import type { KafkaClient, KafkaTarget } from '../port.js';
import { errText, sleep } from './errors.js';
import { kafkajs } from './patches.js';

const { Kafka, logLevel } = kafkajs;
type Kafka = KafkaJS.Kafka;


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


// Client

export interface KafkaHandle {
  readonly brokers: string[];
  readonly clientId: string;
  readonly connectTimeoutMs: number;
  /** The kafkajs client (its type never leaves src/kafka/kafkajs/). */
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

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;


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

/** A KafkaClient of this adapter (openClient) as its handle. */
export function asHandle(client: KafkaClient): KafkaHandle {
  if (!(client as Partial<KafkaHandle>).sockets) throw new JoineryError('E_INTERNAL', 'a Kafka client of another adapter was passed to the kafkajs adapter');
  return client as KafkaHandle;
}

export function handleFrom(h: KafkaTarget, clientId: string, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): { h: KafkaHandle; own: boolean } {
  if (!Array.isArray(h)) return { h: asHandle(h as KafkaClient), own: false };
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

export async function connectedAdmin(h: KafkaHandle, code: ErrorCode): Promise<Admin> {
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
// High watermarks (topicOffsets read_uncommitted)

/** What of kafkajs's private Cluster (and its Broker objects) the adapter uses. */
export interface PrivateCluster {
  connect(): Promise<void>; disconnect(): Promise<void>; addTargetTopic(t: string): Promise<void>; refreshMetadataIfNecessary(): Promise<void>;
  findTopicPartitionMetadata(t: string): Array<{ partitionId: number }>;
  fetchTopicsOffset(t: Array<{ topic: string; fromBeginning: boolean; partitions: Array<{ partition: number }> }>): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  findGroupCoordinator(a: { groupId: string }): Promise<{ offsetFetch(a: { groupId: string; topics: unknown }): Promise<unknown> }>;
}

/**
 * A kafkajs Cluster of the client made through the Kafka client's private cluster factory (the one
 * kafkajs's own consumers and admin use), for requests kafkajs's public API cannot make.
 */
export function privateCluster(h: KafkaHandle, options: object, purpose: string): PrivateCluster {
  const kafka = h.kafka as unknown as Record<symbol, unknown>;
  const sym = Object.getOwnPropertySymbols(kafka).find((x) => x.description === 'private:Kafka:createCluster');
  const create = sym ? kafka[sym] : undefined;
  if (typeof create !== 'function') throw new Error(`kafkajs internals changed: cannot ${purpose} (private:Kafka:createCluster)`);
  return (create as (o: object) => PrivateCluster)(options);
}

/**
 * High watermarks of a topic's partitions (read_uncommitted end offsets). kafkajs's admin lists
 * offsets with isolation READ_COMMITTED only, which answers the last stable offset; a kafkajs
 * cluster created with READ_UNCOMMITTED (through the Kafka client's private cluster factory, the
 * one kafkajs's own consumers use) answers the high watermark.
 */
export async function highWatermarks(h: KafkaHandle, topic: string): Promise<Map<number, number>> {
  const cluster = privateCluster(h, { isolationLevel: 0 /* READ_UNCOMMITTED */ }, 'list high watermarks');
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
