/** Kafka inputs of a rebuild (src/rebuild/plan.ts logPlan): the group's committed offsets and offsets-for-times of both topics. */
import { endpointsOf, kafkaTopic } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import type { RebuildLog } from '../rebuild/plan.js';
import { kafkaAdapter } from './adapters.js';
import { parseBrokers } from './options.js';

export async function kafkaRebuildLog(cfg: Config): Promise<RebuildLog> {
  const { admin } = await kafkaAdapter();
  const brokers = parseBrokers(cfg.brokers!);
  const ep = endpointsOf(cfg);
  const topics = [kafkaTopic(ep.left)!, kafkaTopic(ep.right)!] as const;
  return {
    topics,
    // stable: a commit in flight (an open transaction holding offsets) is waited for, not answered with the offsets it replaces
    committed: () => admin.fetchCommittedOffsets(brokers, cfg.group, topics, { requireStable: true }),
    offsetsForTime: (topic, timeMs) => admin.offsetsForTime(brokers, topic, timeMs),
  };
}
