/**
 * Encoding joinery's FlatBuffers records with one reused flatbuffers.Builder (the output sink's
 * JoinedRecord, test and tool records), and decoding JoinedRecord through the generated classes.
 * The one file that imports 'flatbuffers' apart from the generated code (src/codec/fb/).
 */
import * as flatbuffers from 'flatbuffers';
import { Impression, JoinedRecord, Play } from './fb/joinery.js';
import { flatToJson, numberText, type ImpressionEvent, type PlayEvent } from './flat.js';

const builder = new flatbuffers.Builder(1024);

function finished(): Uint8Array {
  return builder.asUint8Array().slice();
}

export function encodeImpression(e: ImpressionEvent): Uint8Array {
  const b = builder;
  b.clear();
  const id = b.createString(e.eventId);
  const dev = b.createString(e.device);
  Impression.startImpression(b);
  Impression.addTs(b, e.ts);
  Impression.addEventId(b, id);
  Impression.addProfileId(b, e.profileId);
  Impression.addTitleId(b, e.titleId);
  Impression.addDevice(b, dev);
  Impression.addRow(b, e.row);
  Impression.addPosition(b, e.position);
  b.finish(Impression.endImpression(b));
  return finished();
}

export function encodePlay(e: PlayEvent): Uint8Array {
  const b = builder;
  b.clear();
  const id = b.createString(e.eventId);
  const dev = b.createString(e.device);
  Play.startPlay(b);
  Play.addTs(b, e.ts);
  Play.addEventId(b, id);
  Play.addProfileId(b, e.profileId);
  Play.addTitleId(b, e.titleId);
  Play.addDurationMs(b, e.durationMs);
  Play.addDevice(b, dev);
  b.finish(Play.endPlay(b));
  return finished();
}

/**
 * One join output. Ids and key are canonical JSON texts as they travel through the engine
 * (`"i-42"` with its quotes, or `17`; key `[7,42]`), given as strings or UTF-8 bytes. The unmatched
 * side of an outer-join row has id null, ts null and no nested record.
 */
export interface JoinedParts {
  leftId: string | Uint8Array | null;
  rightId: string | Uint8Array | null;
  key: string | Uint8Array;
  leftTs: number | null;
  rightTs: number | null;
  /** The left record's FlatBuffer (an Impression), or null. */
  left: Uint8Array | null;
  /** The right record's FlatBuffer (a Play), or null. */
  right: Uint8Array | null;
}

export interface DecodedJoined {
  leftId: string | null;
  rightId: string | null;
  key: string;
  leftTs: number | null;
  rightTs: number | null;
  left: Uint8Array | null;
  right: Uint8Array | null;
}

/** A [ubyte] holding a complete FlatBuffer, its first byte 8-aligned (as nested buffers should be). */
function nestedBuffer(b: flatbuffers.Builder, bytes: Uint8Array): flatbuffers.Offset {
  b.prep(8, bytes.length); // after the bytes are written, the position is 8-aligned (from the end)
  return b.createByteVector(bytes);
}

export function encodeJoined(r: JoinedParts): Uint8Array {
  const b = builder;
  b.clear();
  const leftId = r.leftId === null ? 0 : b.createString(r.leftId);
  const rightId = r.rightId === null ? 0 : b.createString(r.rightId);
  const key = b.createString(r.key);
  const left = r.left === null ? 0 : nestedBuffer(b, r.left);
  const right = r.right === null ? 0 : nestedBuffer(b, r.right);
  JoinedRecord.startJoinedRecord(b);
  if (r.leftTs !== null) JoinedRecord.addLeftTs(b, r.leftTs);
  if (r.rightTs !== null) JoinedRecord.addRightTs(b, r.rightTs);
  if (leftId) JoinedRecord.addLeftId(b, leftId);
  if (rightId) JoinedRecord.addRightId(b, rightId);
  JoinedRecord.addKey(b, key);
  if (left) JoinedRecord.addLeft(b, left);
  if (right) JoinedRecord.addRight(b, right);
  b.finish(JoinedRecord.endJoinedRecord(b));
  return finished();
}

/**
 * Decodes a JoinedRecord into a plain object (copies; for tests and tools, not the hot path).
 * Trusts its input: the generated accessors do no bounds checking.
 */
export function decodeJoined(bytes: Uint8Array): DecodedJoined {
  const r = JoinedRecord.getRootAsJoinedRecord(new flatbuffers.ByteBuffer(bytes));
  const leftId = r.leftId();
  const rightId = r.rightId();
  const left = r.leftArray();
  const right = r.rightArray();
  return {
    leftId,
    rightId,
    key: r.key() ?? '',
    leftTs: leftId === null ? null : r.leftTs(),
    rightTs: rightId === null ? null : r.rightTs(),
    left: left === null ? null : left.slice(),
    right: right === null ? null : right.slice(),
  };
}

/** The NDJSON output form of a JoinedRecord (docs/architecture.md §2), without a trailing newline. */
export function joinedToJson(bytes: Uint8Array): string {
  const d = decodeJoined(bytes);
  return '{"leftId":' + (d.leftId ?? 'null') + ',"rightId":' + (d.rightId ?? 'null') + ',"key":' + d.key +
    ',"leftTs":' + (d.leftTs === null ? 'null' : numberText(d.leftTs)) +
    ',"rightTs":' + (d.rightTs === null ? 'null' : numberText(d.rightTs)) +
    ',"left":' + (d.left === null ? 'null' : flatToJson('Impression', d.left)) +
    ',"right":' + (d.right === null ? 'null' : flatToJson('Play', d.right)) + '}';
}
