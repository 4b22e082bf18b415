/**
 * The Kafka client behind the port. Loaded on first use, so runs without Kafka never load a
 * Kafka library. Adding a client: implement KafkaAdapter (port.ts) in src/kafka/NAME/index.ts and
 * add a case here; nothing else changes (docs/architecture.md).
 */
import type { KafkaAdapter } from './port.js';

let loaded: Promise<KafkaAdapter> | null = null;

export function kafkaAdapter(): Promise<KafkaAdapter> {
  // the client's self-check runs as it loads: every command that uses Kafka logs its patches (debug)
  loaded ??= import('./kafkajs/index.js').then((m) => { m.kafkajsAdapter.checkClient({ groupMemberCheckpoints: false }); return m.kafkajsAdapter; });
  return loaded;
}
