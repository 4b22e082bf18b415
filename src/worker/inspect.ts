/**
 * GET /state?key=…: the worker owning the key's key group lists what it buffers for the key on
 * each side (for debugging a join that did not happen). Runs in the worker thread between ring
 * drains, reading the store outside a write transaction; nothing is changed.
 */
import type { MessagePort } from 'node:worker_threads';
import { flatToJson } from '../codec/flat.js';
import type { Side, StateStore } from '../state/store.js';

/** Entries listed per side at most. */
export const INSPECT_LIMIT = 1000;

/** main → worker */
export interface InspectRequest { type: 'inspect'; id: number; key: string; keyGroup: number; keyHash: number }

export interface InspectedEntry {
  id: unknown;           // the event id (JSON value)
  ts: number;            // event time, ms
  joined: boolean;       // has joined at least one partner
  payload: unknown;      // the record as JSON when it is JSON (or FlatBuffers turned into JSON), else base64 text
  encoding?: 'base64';
}

/** worker → main */
export interface InspectReply {
  type: 'inspected'; id: number; worker: number;
  left: InspectedEntry[]; right: InspectedEntry[]; truncated: boolean; error?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function payloadJson(side: Side, format: 'json' | 'flatbuffers', bytes: Uint8Array): { payload: unknown; encoding?: 'base64' } {
  try {
    const text = format === 'json' ? utf8.decode(bytes) : flatToJson(side === 0 ? 'Impression' : 'Play', bytes, 0, bytes.length);
    return { payload: JSON.parse(text) };
  } catch {
    return { payload: Buffer.from(bytes).toString('base64'), encoding: 'base64' };
  }
}

function idValue(bytes: Uint8Array): unknown {
  const t = Buffer.from(bytes).toString('utf8');
  try { return JSON.parse(t); } catch { return t; }
}

/** Answer inspect requests on `port` from `store` (worker thread side). */
export function installInspector(port: MessagePort, store: () => StateStore, index: number, formats: readonly ['json' | 'flatbuffers', 'json' | 'flatbuffers']): void {
  port.on('message', (m: { type?: string }) => {
    if (m?.type !== 'inspect') return;
    const q = m as InspectRequest;
    const reply: InspectReply = { type: 'inspected', id: q.id, worker: index, left: [], right: [], truncated: false };
    try {
      const key = Buffer.from(q.key, 'utf8');
      for (const side of [0, 1] as const) {
        const out = side === 0 ? reply.left : reply.right;
        store().probe(side, q.keyGroup, q.keyHash, key, -Infinity, Infinity, (e) => {
          if (out.length >= INSPECT_LIMIT) { reply.truncated = true; return false; }
          out.push({ id: idValue(e.id), ts: e.ts, joined: e.joined, ...payloadJson(side, formats[side], e.payload) });
          return false;
        });
      }
    } catch (e) {
      reply.error = (e as Error).message;
    }
    port.postMessage(reply);
  });
}
