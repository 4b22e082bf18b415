/**
 * The Kafka wiring of a run, once for the single node (cli.ts) and the group member (member.ts):
 * the input source, the sinks, and the hooks the engine calls to commit — offsets with the
 * checkpoint id as metadata, or the output transaction together with the offsets. Everything
 * goes through the port (port.ts) of the adapter adapters.ts picks.
 */
import { checkpointMetadata, parseCheckpointRef } from '../checkpoint/handoff.js';
import type { Manifest } from '../checkpoint/manifest.js';
import { endpointsOf, kafkaTopic } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import type { LogPosition } from '../source/source.js';
import type { EngineControl } from '../control/engine-control.js';
import { log } from '../core/log.js';
import type { EngineOptions, PositionsPort } from '../engine.js';
import { kafkaAdapter } from './adapters.js';
import { parseBrokers, parseFrom } from './options.js';
import type { KafkaAdapter, KafkaInput, KafkaLineOutput, KafkaRecordOutput, KafkaSourceOptions } from './port.js';

export interface KafkaIOOptions {
  cfg: Config;
  /** The group member's name (member.ts); null for the single node. */
  member: string | null;
  control?: EngineControl;
  /** Checkpoints are taken: offsets are committed with them (or by the output transaction). */
  checkpoints: boolean;
  /** Exact start offsets of the input (a restored checkpoint, a rebuild plan). */
  startOffsets?: KafkaSourceOptions['startOffsets'];
  /** Awaited before the member re-joins its group (checkpoint first, unless `evicted`); group members only. */
  beforeRejoin?: (info: { evicted: string | null }) => Promise<void>;
  /** A checkpoint's output transaction (or offsets) committed. */
  onCommitted?: (checkpointId: number) => void;
}

/** The engine's view of the Kafka parts of a run: its sinks, and the group's offsets as the engine's PositionsPort. */
export type KafkaEngineHooks = Pick<EngineOptions, 'outRecords' | 'lateSink' | 'deadSink'> & { positions: PositionsPort };

export interface KafkaIO {
  readonly adapter: KafkaAdapter;
  readonly brokers: string[];
  /** The Kafka input (--left/--right kafka:TOPIC), else null. */
  readonly source: KafkaInput | null;
  readonly out: KafkaRecordOutput | null;
  readonly lateSink: KafkaLineOutput | null;
  readonly deadSink: KafkaLineOutput | null;
  readonly engine: KafkaEngineHooks;
  /** Close what is open (sinks first, then the source). The engine closes them itself unless keepOpen. */
  close(): Promise<void>;
}

/** Kafka's session heartbeat: a tenth of the session timeout, between 0.5 s and 3 s. */
export function heartbeatIntervalMs(sessionTimeoutMs: number): number {
  return Math.max(500, Math.min(3_000, Math.floor(sessionTimeoutMs / 10)));
}

/**
 * The output transaction's id: one per job (and member), stable across restarts, so a restarted
 * process fences its predecessor and aborts its open transaction.
 */
export function transactionalIdOf(group: string, topic: string, member: string | null): string {
  return `joinery-${group}-${topic}${member === null ? '' : `-${member}`}`;
}

/** Exactly-once Kafka output: written in transactions that commit with the checkpoints. */
export function isTransactional(cfg: Config, checkpoints: boolean): boolean {
  return checkpoints && endpointsOf(cfg).out?.kind === 'kafka' && cfg.delivery === 'exactly-once';
}

/** The input's committed positions a checkpoint manifest holds. */
function kafkaPositions(m: Pick<Manifest, 'sources'>): LogPosition[] {
  return m.sources.find((x) => x.kind === 'log')?.log ?? [];
}

/**
 * Single node, exactly-once Kafka → Kafka: the id of the checkpoint the group's committed offsets
 * name (0: none), i.e. the last one whose output transaction committed.
 */
export async function committedCheckpointId(cfg: Config): Promise<number> {
  const adapter = await kafkaAdapter();
  const ep = endpointsOf(cfg);
  // Stable: a previous run killed between sending a checkpoint's offsets and committing its
  // transaction leaves them pending; answered the older ones, this run would restore an older
  // checkpoint while that output still commits (duplicates). Only that window waits.
  const committed = await adapter.admin.fetchCommittedOffsets(parseBrokers(cfg.brokers!), cfg.group, [kafkaTopic(ep.left)!, kafkaTopic(ep.right)!], { requireStable: true });
  // single-node checkpoints are named without a member (group members run src/member.ts)
  return Math.max(0, ...committed.map((c) => { const r = parseCheckpointRef(c.metadata); return r && r.member === null ? r.id : 0; }));
}

/** Open the Kafka input and sinks the config names, and the engine's PositionsPort over them. */
export async function openKafkaIO(o: KafkaIOOptions): Promise<KafkaIO> {
  const { cfg, member, control } = o;
  const adapter = await kafkaAdapter();
  adapter.checkClient({ groupMemberCheckpoints: member !== null && o.checkpoints });
  const brokers = parseBrokers(cfg.brokers!);
  const ep = endpointsOf(cfg);
  const leftTopic = kafkaTopic(ep.left), rightTopic = kafkaTopic(ep.right);
  const transactional = isTransactional(cfg, o.checkpoints);
  const io = { adapter, brokers, source: null as KafkaInput | null, out: null as KafkaRecordOutput | null,
    lateSink: null as KafkaLineOutput | null, deadSink: null as KafkaLineOutput | null, engine: { positions: {} } as KafkaEngineHooks,
    async close(): Promise<void> {
      for (const s of [io.deadSink, io.lateSink, io.out]) await s?.close().catch(() => {});
      await io.source?.close().catch(() => {});
    } };
  try {
    if (leftTopic !== null && rightTopic !== null) {
      const format = cfg.format ?? 'flatbuffers';
      io.source = await adapter.openSource({
        brokers, groupId: cfg.group, leftTopic, rightTopic, format, clientId: member === null ? undefined : `joinery-${member}`,
        from: parseFrom(cfg.from), exitWhenIdleMs: cfg.exitWhenIdleMs, connectTimeoutMs: cfg.connectTimeoutMs,
        startOffsets: o.startOffsets, sessionTimeoutMs: cfg.sessionTimeoutMs, heartbeatIntervalMs: heartbeatIntervalMs(cfg.sessionTimeoutMs),
        beforeRejoin: o.beforeRejoin,
        // State moves with partitions only in member mode (src/member.ts): say what a move costs here.
        onAssignment: member !== null ? undefined : ({ assigned, revoked, generation }) => {
          if (generation <= 1 || (assigned.length === 0 && revoked.length === 0)) return;
          const parts = (ps: typeof assigned) => [...new Set(ps.map((p) => p.partition))].sort((a, b) => a - b).join(',');
          log.warn(`the consumer group ${cfg.group} moved partitions (gained [${parts(assigned)}], lost [${parts(revoked)}]): ` +
            `${cfg.checkpointDir ? 'with --out file:' : 'without --checkpoint-dir'} a partition's join buffer does not move with it, so pairs whose first event ` +
            'arrived before the move are missed, and records applied but not yet committed are applied again by the new owner; ' +
            'to run several members, give each --checkpoint-dir on shared storage and Kafka or null output');
        },
      });
      // Partitions are paused while routing stalls on a full ring or while paused by POST /pause.
      io.engine.positions.onStall = pauseSourceWhile(io.source, control);
    }
    const common = { brokers, compression: cfg.compression, connectTimeoutMs: cfg.connectTimeoutMs };
    const outTopic = kafkaTopic(ep.out);
    if (outTopic !== null) {
      // A missing output topic is created with as many partitions as the left input topic (3 otherwise).
      const inputParts = io.source?.partitions.filter((p) => p.side === 0).length;
      io.out = await adapter.openRecordSink({
        ...common, topic: outTopic, createPartitions: inputParts ?? 3,
        transactionalId: transactional ? transactionalIdOf(cfg.group, outTopic, member) : undefined,
      });
      io.engine.outRecords = io.out;
    }
    const lateTopic = kafkaTopic(ep.lateOut), deadTopic = kafkaTopic(ep.deadLetter);
    if (lateTopic !== null) io.engine.lateSink = io.lateSink = await adapter.openLineSink({ ...common, topic: lateTopic });
    if (deadTopic !== null) io.engine.deadSink = io.deadSink = await adapter.openLineSink({ ...common, topic: deadTopic });
  } catch (e) {
    await io.close();
    throw e;
  }
  const src = io.source, out = io.out, positions = io.engine.positions;
  const noted = (positions: Array<{ topic: string; partition: number; offset: string }>) => control?.noteCommitted(positions);
  if (transactional) {
    positions.transactionalOutput = true;
    positions.commitCheckpoint = async (m) => {
      const offsets = kafkaPositions(m);
      // A group member's offsets carry its generation and member id: once the group evicted it
      // (and gave its partitions to another member), the coordinator refuses them (E_GROUP_EVICTED).
      await out!.commitTransaction(cfg.group, offsets, checkpointMetadata(member, m.id), member !== null ? src?.membership : null);
      noted(offsets);
      o.onCommitted?.(m.id);
    };
  } else if (src && o.checkpoints) {
    // Offsets follow checkpoints, with the checkpoint id as metadata.
    positions.commitCheckpoint = async (m) => {
      const offsets = kafkaPositions(m);
      await src.commit(offsets, checkpointMetadata(member, m.id));
      noted(offsets);
      o.onCommitted?.(m.id);
    };
  } else if (src) {
    positions.commitApplied = async (offsets) => { const r = await src.commit(offsets); noted(offsets); return r; };
  }
  return io;
}

/**
 * Pause every partition of a source while routing stalls on a full ring or while paused by
 * POST /pause, resume when neither holds; returns the engine's PositionsPort.onStall. (Kafka keeps heartbeating
 * through a pause, so the group does not rebalance.)
 */
function pauseSourceWhile(src: { partitions: ReadonlyArray<{ side: 0 | 1; partition: number }>; pause(side: 0 | 1, p: number): void; resume(side: 0 | 1, p: number): void },
  control: EngineControl | undefined): (stalled: boolean) => void {
  let stalled = false, held = false;
  const apply = () => {
    for (const p of src.partitions) { if (stalled || held) src.pause(p.side, p.partition); else src.resume(p.side, p.partition); }
  };
  if (control) control.onPauseChange = (p) => { held = p; apply(); };
  return (s) => { stalled = s; apply(); };
}
