/** The consumer group's partition assignment for a join of two co-partitioned topics. */
import type { PartitionAssigner } from 'kafkajs';
import { BEFORE_JOIN, kafkajs, type BeforeJoinInfo } from './patches.js';

const { AssignerProtocol } = kafkajs;

const CO_PARTITIONED = 'JoineryCoPartitioned';

/**
 * Group assignment that keeps a key's two sides together: partition p of *every* subscribed topic
 * goes to member p mod members (members sorted by id). kafkajs's default round-robin spreads the
 * topic-partitions of both topics independently, so left/p and right/p could land on different
 * members and their keys would never meet. With co-partitioned topics (same partition count, same
 * key partitioner) this makes scaling out by partition correct. It carries the source's hook,
 * awaited before each (re-)join of its consumer (the rejoin patch).
 */
export function coPartitionedAssignerWith(beforeJoin?: (info: BeforeJoinInfo) => Promise<void>): PartitionAssigner {
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

