/**
 * Frame bodies travelling router → worker. All multi-byte fields little-endian; the body starts
 * 8-aligned so the f64 fields are aligned too.
 *
 *   EVENT      u8 kind | u8 side | u16 keyGroup | u32 keyHash | f64 ts | f64 routedAtMs |
 *              u16 keyLen | u16 idLen | u32 payloadLen | u16 sourcePartition+1 | 6 pad |
 *              key | id | payload                                          (40-byte header)
 *   WATERMARK  u8 kind | 7 pad | f64 watermarkMs            (-Infinity … +Infinity)
 *   END        u8 kind                                        (no more input: flush and report)
 *   BARRIER    u8 kind | 7 pad | f64 checkpointId          (checkpoint: everything before it is in)
 *   REPLAY_END u8 kind                                        (rebuild: the replay is over, output from here on)
 *
 * key is the canonical key (JSON array text, e.g. `[7,42]`), id the canonical id (JSON text,
 * e.g. `"imp-9"`), payload the record as read (JSON text or a FlatBuffer). sourcePartition is the
 * Kafka partition the event was read from, plus one (0 for other sources): checkpoints keep it per
 * buffered event so a partition's state can move to another member of the consumer group.
 */
export const enum FrameKind { Event = 1, Watermark = 2, End = 3, Barrier = 4, ReplayEnd = 5 }
export const EVENT_HEADER_BYTES = 40;
export const WATERMARK_BYTES = 16;
export const END_BYTES = 8;
export const REPLAY_END_BYTES = 8;
export const BARRIER_BYTES = 16;
export const BARRIER_ID = 8;

export const EV_KIND = 0, EV_SIDE = 1, EV_KEY_GROUP = 2, EV_KEY_HASH = 4, EV_TS = 8, EV_ROUTED_AT = 16,
  EV_KEY_LEN = 24, EV_ID_LEN = 26, EV_PAYLOAD_LEN = 28, EV_PARTITION = 32;
export const WM_VALUE = 8;
