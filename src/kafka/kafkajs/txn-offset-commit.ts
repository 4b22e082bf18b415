/**
 * TxnOffsetCommit v2 and v3 for kafkajs 2.2.4 (which implements v0 and v1 only), installed by
 * patches.ts (patch 'txn-offset-fence') in place of kafkajs/src/protocol/requests/txnOffsetCommit.
 *
 * Why: v0/v1 carry no consumer-group generation or member id, so the group coordinator accepts a
 * transactional offset commit from anyone holding the transactional id — also from a member the
 * group evicted long ago (it stalled past its session timeout) and whose partitions another member
 * already re-processed: its late transaction would commit that output a second time and move the
 * other member's offsets. v3 (KIP-447) carries generation_id, member_id and group_instance_id; the
 * coordinator checks them like an ordinary OffsetCommit and answers ILLEGAL_GENERATION,
 * UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID, and the transaction is aborted instead.
 *
 * kafkajs hands the `topics` array of `transaction.sendOffsets` through unchanged to the request
 * encoder, so the membership travels on that array (GROUP_MEMBERSHIP) — no other kafkajs code has
 * to change. Without it a v3 request says generation -1 / member "" (what v0/v1 mean).
 */
import { requestDeps, type Req } from './request-deps.js';

/** Property of the `topics` array given to sendOffsets: the consumer's membership to fence the commit with. */
export const GROUP_MEMBERSHIP = Symbol.for('joinery.groupMembership');

export interface GroupMembership { generationId: number; memberId: string; groupInstanceId?: string | null }

interface Partition { partition: number; offset: string; metadata?: string | null }
interface Topic { topic: string; partitions: Partition[] }
interface Args { transactionalId: string; groupId: string; producerId: unknown; producerEpoch: number; topics: Topic[] & { [GROUP_MEMBERSHIP]?: GroupMembership } }
interface EncoderT {
  writeString(v: string | null): EncoderT; writeInt16(v: number): EncoderT; writeInt32(v: number): EncoderT; writeInt64(v: unknown): EncoderT;
  writeArray(a: EncoderT[]): EncoderT; writeUVarIntString(v: string | null): EncoderT; writeUVarIntArray(a: EncoderT[]): EncoderT; writeUVarIntBytes(v?: Buffer): EncoderT;
}
interface DecoderT {
  readInt32(): number; readInt16(): number; readString(): string; readUVarIntString(): string | null;
  readArray<T>(f: (d: DecoderT) => T): T[]; readUVarIntArray<T>(f: (d: DecoderT) => T): T[] | null; readTaggedFields(): unknown;
}

/** The replacement of kafkajs's requests/txnOffsetCommit/index.js: its v0 and v1, plus v2 and v3. */
export function txnOffsetCommitRequests(req: Req): { versions: string[]; protocol: (a: { version: number }) => (args: Args) => unknown } {
  const { original, Encoder, Decoder, failure, createErrorFromCode, apiKey } = requestDeps<(a: { version: number }) => (args: Args) => unknown, EncoderT, DecoderT>(req, 'kafkajs/src/protocol/requests/txnOffsetCommit/index.js', 'TxnOffsetCommit', 'writeUVarIntArray');

  // The kafkajs v0 parse: the first partition error is thrown (kafkajs's retry logic keys on its type).
  const parse = async (data: { topics: Array<{ partitions: Array<{ errorCode: number }> }> }) => {
    for (const t of data.topics) for (const p of t.partitions) if (failure(p.errorCode)) throw createErrorFromCode(p.errorCode);
    return data;
  };

  /** v2: v1 + committed_leader_epoch per partition (-1: unknown). */
  const v2 = ({ transactionalId, groupId, producerId, producerEpoch, topics }: Args) => ({
    request: {
      apiKey, apiVersion: 2, apiName: 'TxnOffsetCommit',
      encode: async () => new Encoder()
        .writeString(transactionalId).writeString(groupId).writeInt64(producerId).writeInt16(producerEpoch)
        .writeArray(topics.map((t) => new Encoder().writeString(t.topic).writeArray(t.partitions.map((p) =>
          new Encoder().writeInt32(p.partition).writeInt64(p.offset).writeInt32(-1).writeString(p.metadata ?? null))))),
    },
    response: {
      decode: async (raw: Buffer) => {
        const d = new Decoder(raw);
        const throttleTime = d.readInt32();
        const topics = d.readArray((dt) => ({ topic: dt.readString(), partitions: dt.readArray((dp) => ({ partition: dp.readInt32(), errorCode: dp.readInt16() })) }));
        return { throttleTime: 0, clientSideThrottleTime: throttleTime, topics };
      },
      parse,
    },
  });

  /**
   * v3, the first flexible version: compact strings and arrays, a tag buffer after each struct and
   * after the request header's client id (kafkajs writes the header itself, so the payload starts
   * with it, as kafkajs's own flexible requests do), and generation_id / member_id /
   * group_instance_id after producer_epoch. The response starts with the header's tag buffer.
   */
  const v3 = ({ transactionalId, groupId, producerId, producerEpoch, topics }: Args) => {
    const m = topics[GROUP_MEMBERSHIP];
    return {
      request: {
        apiKey, apiVersion: 3, apiName: 'TxnOffsetCommit',
        encode: async () => new Encoder()
          .writeUVarIntBytes()
          .writeUVarIntString(transactionalId).writeUVarIntString(groupId).writeInt64(producerId).writeInt16(producerEpoch)
          .writeInt32(m ? m.generationId : -1).writeUVarIntString(m ? m.memberId : '').writeUVarIntString(m?.groupInstanceId ?? null)
          .writeUVarIntArray(topics.map((t) => new Encoder().writeUVarIntString(t.topic)
            .writeUVarIntArray(t.partitions.map((p) => new Encoder()
              .writeInt32(p.partition).writeInt64(p.offset).writeInt32(-1).writeUVarIntString(p.metadata ?? null).writeUVarIntBytes()))
            .writeUVarIntBytes()))
          .writeUVarIntBytes(),
      },
      response: {
        decode: async (raw: Buffer) => {
          const d = new Decoder(raw);
          d.readTaggedFields();
          const throttleTime = d.readInt32();
          const topics = d.readUVarIntArray((dt) => {
            const topic = dt.readUVarIntString() ?? '';
            const partitions = dt.readUVarIntArray((dp) => { const x = { partition: dp.readInt32(), errorCode: dp.readInt16() }; dp.readTaggedFields(); return x; }) ?? [];
            dt.readTaggedFields();
            return { topic, partitions };
          }) ?? [];
          return { throttleTime: 0, clientSideThrottleTime: throttleTime, topics };
        },
        parse,
      },
    };
  };

  return {
    versions: [...new Set([...original.versions, '2', '3'])],
    protocol: ({ version }) => (version === 3 ? v3 : version === 2 ? v2 : original.protocol({ version })),
  };
}
