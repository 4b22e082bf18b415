/**
 * `joinery topics` (check): both input topics exist, and their partition counts, with what a
 * mismatch means for scaling out.
 *
 * Exit codes: 0 = both exist with the same partition count; 1 = both exist but the counts differ
 * (fine for one node, wrong for scale-out by partition); 3 = a topic is missing or Kafka is
 * unreachable (the error's own exit code when it throws).
 */
import { kafkaAdapter } from './adapters.js';

export async function runTopicsCheck(brokers: string[], leftTopic: string, rightTopic: string,
  opts: { connectTimeoutMs?: number; out?: (line: string) => void } = {}): Promise<number> {
  const out = opts.out ?? ((line: string) => process.stdout.write(line + '\n'));
  const [l, r] = await (await kafkaAdapter()).admin.describeTopics(brokers, [leftTopic, rightTopic], { connectTimeoutMs: opts.connectTimeoutMs });
  out(`Kafka ${brokers.join(',')}`);
  for (const [role, t] of [['left ', l], ['right', r]] as const) {
    out(`  ${role} ${t.topic}: ${t.exists ? `${t.partitions} partition${t.partitions === 1 ? '' : 's'}` : 'MISSING'}`);
  }
  const missing = [l, r].filter((t) => !t.exists);
  if (missing.length > 0) {
    out(`error: ${missing.map((t) => t.topic).join(' and ')} ${missing.length > 1 ? 'do' : 'does'} not exist. ` +
      `Create ${missing.length > 1 ? 'them' : 'it'} (for example with joinery gen --left-topic … --right-topic … --partitions N, or kafka-topics.sh --create) before joinery run.`);
    return 3;
  }
  if (l.partitions !== r.partitions) {
    out(`warning: partition counts differ (${l.topic}: ${l.partitions}, ${r.topic}: ${r.partitions}).`);
    out('  A single joinery node reads every partition of both topics, so its join is still correct.');
    out('  Scaling out by partition is not: a key\'s impressions and plays must meet in the same joinery node,');
    out('  which needs both topics co-partitioned, i.e. the same partition count and the same key partitioner,');
    out(`  so that partition p of ${l.topic} and partition p of ${r.topic} hold the same keys. With ${l.partitions} vs ${r.partitions}`);
    out('  partitions a key hashes to different partition numbers on each side, and nodes that each own a subset');
    out('  of partitions would miss matches. Re-create (or re-partition into) topics with equal counts before');
    out('  running several nodes; adding partitions to an existing topic also moves keys, so do it on both topics');
    out('  together and only when empty, or re-key the data.');
    return 1;
  }
  out(`ok: both topics have ${l.partitions} partition${l.partitions === 1 ? '' : 's'} (co-partitioned when both are keyed by the join key with the same partitioner; ` +
    `up to ${l.partitions} joinery node${l.partitions === 1 ? '' : 's'} can split them by partition).`);
  return 0;
}
