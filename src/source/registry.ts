/**
 * Inputs by kind, after Arroyo's connector registry: each kind of --left/--right descriptor
 * (config/endpoints.ts) maps to the factory that opens it. A new kind of input is one case in
 * endpoints.ts and one entry here; the engine only sees Sources. Sinks by kind: file, stdout and
 * null are opened by the engine and its workers (sink/sink.ts openLineSink); Kafka sinks come with
 * the Kafka wiring (kafka/io.ts), opened here whatever the input.
 */
import type { CheckpointContext } from '../checkpoint/index.js';
import { fileStartOf, genStartOf } from '../checkpoint/index.js';
import { endpointsOf, type SourceEndpoint, type SourceKind } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import type { EngineControl } from '../control/engine-control.js';
import type { EngineOptions } from '../engine.js';
import { openFileInput } from './open.js';
import { genOptionsFrom } from './generator.js';
import { GeneratorSource } from './gen-source.js';
import type { LogPosition, Source } from './source.js';

type Format = 'json' | 'flatbuffers';

export interface InputContext {
  cfg: Config;
  ck: CheckpointContext | null;
  control?: EngineControl;
  /** A partitioned log (Kafka): exact start offsets, from a restored checkpoint or a rebuild plan. */
  logStartOffsets?: ReadonlyArray<LogPosition | { topic: string; partition: number; offset: number }>;
}

export interface OpenedIO {
  sources: Source[];
  formats: [Format, Format];
  /** Sinks and the PositionsPort for the engine that came with the inputs (Kafka: its sinks, offset commits, pausing). */
  engine: Partial<EngineOptions>;
  close(): Promise<void>;
}

type Factory<K extends SourceKind> = (left: Extract<SourceEndpoint, { kind: K }>, right: Extract<SourceEndpoint, { kind: K }>, ctx: InputContext) => Promise<OpenedIO>;

const INPUTS: { [K in SourceKind]: Factory<K> } = {
  file: async (left, right, { cfg, ck }) => {
    const l = openFileInput(cfg, left, 0, fileStartOf(ck, left.spec, 0));
    try {
      const r = openFileInput(cfg, right, 1, fileStartOf(ck, right.spec, 1));
      return { sources: [l.source, r.source], formats: [l.format, r.format], engine: {}, close: async () => { await l.source.close(); await r.source.close(); } };
    } catch (e) {
      await l.source.close();
      throw e;
    }
  },
  gen: async (_left, _right, { cfg, ck }) => {
    const g = new GeneratorSource(genOptionsFrom(cfg), undefined, genStartOf(ck));
    return { sources: [g], formats: ['flatbuffers', 'flatbuffers'], engine: {}, close: () => g.close() };
  },
  kafka: async (_left, _right, ctx) => {
    const { openKafkaIO } = await import('../kafka/io.js');
    const io = await openKafkaIO({ cfg: ctx.cfg, member: null, control: ctx.control, checkpoints: !!ctx.ck, startOffsets: ctx.logStartOffsets });
    const format = io.source!.format;
    return { sources: [io.source!], formats: [format, format], engine: io.engine, close: () => io.close() };
  },
};

/**
 * Open the inputs --left/--right name, and the Kafka sinks (with a Kafka input they came along;
 * else they are opened here on their own).
 */
export async function openIO(ctx: InputContext): Promise<OpenedIO> {
  const ep = endpointsOf(ctx.cfg);
  const left = ep.left!, right = ep.right!;
  const io = await (INPUTS[left.kind] as Factory<SourceKind>)(left, right, ctx);
  if (left.kind === 'kafka' || ![ep.out, ep.lateOut, ep.deadLetter].some((e) => e?.kind === 'kafka')) return io;
  try {
    const { openKafkaIO } = await import('../kafka/io.js');
    const k = await openKafkaIO({ cfg: ctx.cfg, member: null, control: ctx.control, checkpoints: !!ctx.ck });
    return { ...io, engine: { ...io.engine, ...k.engine }, close: async () => { await k.close(); await io.close(); } };
  } catch (e) {
    await io.close().catch(() => {});
    throw e;
  }
}
