/**
 * Sources and sinks by kind: the `file:PATH`, `kafka:TOPIC`, `gen:`, `stdout` and `null` flag
 * values, parsed here once into typed descriptors. Everything past the config layer asks for
 * `endpointsOf(cfg)` and switches on `kind` (src/source/registry.ts maps each source kind to its
 * factory); nothing else parses these prefixes.
 */
import { usageError } from '../core/errors.js';
import type { Config } from './schema.js';

export type SourceEndpoint =
  | { kind: 'file'; spec: string; path: string }
  | { kind: 'kafka'; spec: string; topic: string }
  | { kind: 'gen'; spec: string };

export type SinkEndpoint =
  | { kind: 'file'; spec: string; path: string }
  | { kind: 'kafka'; spec: string; topic: string }
  | { kind: 'stdout'; spec: string }
  | { kind: 'null'; spec: string };

export type SourceKind = SourceEndpoint['kind'];
/** A `file:PATH` input. */
export type FileSourceEndpoint = Extract<SourceEndpoint, { kind: 'file' }>;
export type SinkKind = SinkEndpoint['kind'];

/** A source flag value as a descriptor; null when it names no known kind. */
export function parseSourceSpec(spec: string): SourceEndpoint | null {
  if (spec.startsWith('file:') && spec.length > 5) return { kind: 'file', spec, path: spec.slice(5) };
  if (spec.startsWith('kafka:') && spec.length > 6) return { kind: 'kafka', spec, topic: spec.slice(6) };
  if (spec.startsWith('gen:')) return { kind: 'gen', spec };
  return null;
}

/** A sink flag value as a descriptor; null when it names no known kind. */
export function parseSinkSpec(spec: string): SinkEndpoint | null {
  if (spec === 'stdout') return { kind: 'stdout', spec };
  if (spec === 'null') return { kind: 'null', spec };
  if (spec.startsWith('file:') && spec.length > 5) return { kind: 'file', spec, path: spec.slice(5) };
  if (spec.startsWith('kafka:') && spec.length > 6) return { kind: 'kafka', spec, topic: spec.slice(6) };
  return null;
}

/** The kind a spec names by its prefix ('file', 'kafka', 'gen', …), for messages about a mismatch. */
export function prefixOf(spec: string): string {
  const i = spec.indexOf(':');
  return i < 0 ? spec : spec.slice(0, i);
}

export function sourceEndpoint(spec: string, flag: string): SourceEndpoint {
  const e = parseSourceSpec(spec);
  if (!e) throw usageError(`--${flag}: unsupported source ${JSON.stringify(spec)} (use file:PATH, kafka:TOPIC or gen:)`);
  return e;
}

export function sinkEndpoint(spec: string, flag: string): SinkEndpoint {
  const e = parseSinkSpec(spec);
  if (!e) throw usageError(`--${flag}: unsupported sink ${JSON.stringify(spec)} (use file:PATH, kafka:TOPIC, stdout or null)`);
  return e;
}

/** Every source and sink a config names, by kind. */
export interface Endpoints {
  left?: SourceEndpoint;
  right?: SourceEndpoint;
  out?: SinkEndpoint;
  lateOut?: SinkEndpoint;
  deadLetter?: SinkEndpoint;
  /** verify --output: the joined output to check. */
  output?: SinkEndpoint;
}

const parsed = new WeakMap<Config, { key: string; endpoints: Endpoints }>();

/**
 * The descriptors of a config's sources and sinks (parsed once per config; a changed flag value
 * is parsed again). Throws E_USAGE for a value of no known kind.
 */
export function endpointsOf(cfg: Pick<Config, 'left' | 'right' | 'out' | 'lateOut' | 'deadLetter' | 'output'>): Endpoints {
  const key = [cfg.left, cfg.right, cfg.out, cfg.lateOut, cfg.deadLetter, cfg.output].join('\0');
  const hit = parsed.get(cfg as Config);
  if (hit && hit.key === key) return hit.endpoints;
  const endpoints: Endpoints = {
    left: cfg.left === undefined ? undefined : sourceEndpoint(cfg.left, 'left'),
    right: cfg.right === undefined ? undefined : sourceEndpoint(cfg.right, 'right'),
    out: cfg.out === undefined ? undefined : sinkEndpoint(cfg.out, 'out'),
    lateOut: cfg.lateOut === undefined ? undefined : sinkEndpoint(cfg.lateOut, 'late-out'),
    deadLetter: cfg.deadLetter === undefined ? undefined : sinkEndpoint(cfg.deadLetter, 'dead-letter'),
    output: cfg.output === undefined ? undefined : sinkEndpoint(cfg.output, 'output'),
  };
  parsed.set(cfg as Config, { key, endpoints });
  return endpoints;
}

/** The Kafka topic of an endpoint, or null when it is of another kind (or absent). */
export function kafkaTopic(e: SourceEndpoint | SinkEndpoint | undefined): string | null {
  return e?.kind === 'kafka' ? e.topic : null;
}

/** The file path of an endpoint, or null when it is of another kind (or absent). */
export function filePath(e: SourceEndpoint | SinkEndpoint | undefined): string | null {
  return e?.kind === 'file' ? e.path : null;
}

/** A sink spec's file path, or null (a string-only view for parts that carry the spec, like manifests). */
export function filePathOfSpec(spec: string | undefined): string | null {
  return spec === undefined ? null : filePath(parseSinkSpec(spec) ?? undefined);
}
