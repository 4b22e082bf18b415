/** Kafka settings that do not depend on the client library: broker lists and `--from`. */
import { usageError } from '../core/errors.js';

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


/** The name a Kafka input goes by in checkpoint manifests (SourcePosition.name): both topics. */
export function kafkaSourceName(leftTopic: string, rightTopic: string): string {
  return `kafka:${leftTopic}+${rightTopic}`;
}
