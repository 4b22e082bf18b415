/**
 * OffsetFetch v6 and v7 for kafkajs 2.2.4 (which implements v1–v4 only), installed by patches.ts
 * (patch 'offset-fetch-stable') in place of kafkajs/src/protocol/requests/offsetFetch.
 *
 * Why: an output transaction's offsets (TxnOffsetCommit) stay pending in the group coordinator
 * until the transaction's commit markers are written; v1–v4 answer the previous offsets
 * meanwhile, so a member planning from them right after a rebalance could restore an older
 * checkpoint whose successor's output is about to commit (duplicates). v7 (KIP-447) carries
 * require_stable: while a transaction with pending offsets for a requested partition is open, the
 * coordinator answers UNSTABLE_OFFSET_COMMIT (88, retriable) for it instead, and the caller waits.
 *
 * kafkajs hands the `topics` array of `broker.offsetFetch` through unchanged to the request
 * encoder, so the flag travels on that array (REQUIRE_STABLE), as txn-offset-commit.ts's
 * membership does. Without it v6/v7 ask what v4 asks (require_stable false), so kafkajs's own
 * offset fetches (the consumer's) keep their meaning. The broker's ApiVersions decide the version
 * (kafkajs takes min(7, the broker's maximum)); versions kafkajs lacks (5) fall back to v4.
 * The decoded response says `requireStable: true` only when the flag was sent, so a caller can
 * tell a stable answer from one of an older broker or of kafkajs unpatched.
 */
import { requestDeps, type Req } from './request-deps.js';

/** Property of the `topics` array given to broker.offsetFetch: ask with require_stable (v7). */
export const REQUIRE_STABLE = Symbol.for('joinery.requireStable');

interface Topic { topic: string; partitions: Array<{ partition: number }> }
interface Args { groupId: string; topics: (Topic[] & { [REQUIRE_STABLE]?: boolean }) | null }
interface EncoderT {
  writeInt32(v: number): EncoderT; writeBoolean(v: boolean): EncoderT;
  writeUVarIntString(v: string | null): EncoderT; writeUVarIntArray(a: EncoderT[]): EncoderT; writeUVarIntBytes(v?: Buffer): EncoderT;
  buffer: Buffer;
}
interface DecoderT {
  readInt32(): number; readInt16(): number; readInt64(): { toString(): string }; readUVarIntString(): string | null;
  readUVarIntArray<T>(f: (d: DecoderT) => T): T[] | null; readTaggedFields(): unknown;
}
export interface OffsetFetchPartition { partition: number; offset: string; metadata: string | null; errorCode: number }
export interface OffsetFetchResponse {
  throttleTime: number; clientSideThrottleTime: number; errorCode: number;
  responses: Array<{ topic: string; partitions: OffsetFetchPartition[] }>;
  /** True when the request carried require_stable (v7 with REQUIRE_STABLE). */
  requireStable: boolean;
}
type Protocol = (a: { version: number }) => (args: Args) => unknown;

/** The replacement of kafkajs's requests/offsetFetch/index.js: its v1–v4, plus v6 and v7. */
export function offsetFetchRequests(req: Req): { versions: string[]; protocol: Protocol } {
  const { original, Encoder, Decoder, failure, createErrorFromCode, apiKey } = requestDeps<Protocol, EncoderT, DecoderT>(req, 'kafkajs/src/protocol/requests/offsetFetch/index.js', 'OffsetFetch', 'writeBoolean');
  const newestOriginal = Math.max(...original.versions.map(Number));

  // kafkajs's v2+ parse: the group's error, else the first partition error is thrown
  // (UNSTABLE_OFFSET_COMMIT among them, retriable).
  const parse = async (data: OffsetFetchResponse) => {
    if (failure(data.errorCode)) throw createErrorFromCode(data.errorCode);
    for (const t of data.responses) for (const p of t.partitions) if (failure(p.errorCode)) throw createErrorFromCode(p.errorCode);
    return data;
  };

  /**
   * v6 is the first flexible version: compact strings and arrays, a tag buffer after each struct
   * and after the request header's client id (kafkajs writes the header itself, so the payload
   * starts with that buffer); v7 adds require_stable after the topics. The response starts with
   * the header's tag buffer; partitions carry committed_leader_epoch (since v5, ignored here).
   */
  const flexible = (version: 6 | 7) => ({ groupId, topics }: Args) => {
    const stable = version === 7 && topics?.[REQUIRE_STABLE] === true;
    return {
      request: {
        apiKey, apiVersion: version, apiName: 'OffsetFetch',
        encode: async () => {
          const e = new Encoder().writeUVarIntBytes().writeUVarIntString(groupId);
          if (topics === null) e.writeUVarIntArray(null as unknown as EncoderT[]);
          else {
            e.writeUVarIntArray(topics.map((t) => new Encoder().writeUVarIntString(t.topic)
              .writeUVarIntArray(t.partitions.map((p) => new Encoder().writeInt32(p.partition)))
              .writeUVarIntBytes()));
          }
          if (version === 7) e.writeBoolean(stable);
          return e.writeUVarIntBytes();
        },
      },
      response: {
        decode: async (raw: Buffer): Promise<OffsetFetchResponse> => decodeFlexible(new Decoder(raw), stable),
        parse,
      },
    };
  };
  const v6 = flexible(6), v7 = flexible(7);

  return {
    versions: [...new Set([...original.versions, '6', '7'])],
    protocol: ({ version }) => (version >= 7 ? v7 : version === 6 ? v6 : original.protocol({ version: Math.min(version, newestOriginal) })),
  };
}

function decodeFlexible(d: DecoderT, requireStable: boolean): OffsetFetchResponse {
  d.readTaggedFields();
  const throttleTime = d.readInt32();
  const responses = d.readUVarIntArray((dt) => {
    const topic = dt.readUVarIntString() ?? '';
    const partitions = dt.readUVarIntArray((dp): OffsetFetchPartition => {
      const partition = dp.readInt32();
      const offset = dp.readInt64().toString();
      dp.readInt32(); // committed_leader_epoch
      const metadata = dp.readUVarIntString();
      const errorCode = dp.readInt16();
      dp.readTaggedFields();
      return { partition, offset, metadata, errorCode };
    }) ?? [];
    dt.readTaggedFields();
    return { topic, partitions };
  }) ?? [];
  const errorCode = d.readInt16();
  d.readTaggedFields();
  return { throttleTime: 0, clientSideThrottleTime: throttleTime, errorCode, responses, requireStable };
}
