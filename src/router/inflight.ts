/**
 * The in-flight frames of a stop checkpoint (docs/architecture.md §3): per worker of the run that
 * took it, the frames routed to it but not processed, framed as in its ring. A resume routes them
 * before anything it reads; this is the order they go in.
 */
import { align8, forEachFrame, FRAME_HEADER_BYTES, type FrameSpill, type RingProducer, unreadFrames } from '../ring/ring.js';
import { EV_KEY_GROUP, EV_PARTITION, FrameKind, WM_VALUE } from '../ring/frame.js';

export interface InflightStream {
  bytes: Uint8Array;
  /** Only events read from these Kafka partitions (a group member taking partitions over). */
  partitions?: ReadonlySet<number>;
}

export type InflightStep =
  | { kind: 'event'; bytes: Uint8Array; offset: number; length: number; keyGroup: number }
  | { kind: 'watermark'; valueMs: number };

/**
 * Merge the streams along their watermarks: every ring got the same watermark sequence, so take
 * all events of every stream up to its next watermark, then the lowest of those watermarks (each
 * stream that has it moves past it). An event thus meets no higher watermark than it did before
 * the stop, so none turns late and nothing it could join with has expired. With `watermarks`
 * false (streams of several checkpoints, whose sequences differ) none is yielded: the events then
 * precede any watermark, which is safe too (a watermark only expires what no on-time event can join).
 */
export function* mergeInflight(streams: readonly InflightStream[], watermarks: boolean): Generator<InflightStep> {
  const cursors = streams.map((st) => {
    const offs: number[] = [], lens: number[] = [];
    forEachFrame(st.bytes, (off, len) => { offs.push(off); lens.push(len); });
    return { u8: st.bytes, dv: new DataView(st.bytes.buffer, st.bytes.byteOffset, st.bytes.byteLength), offs, lens, i: 0, partitions: st.partitions };
  });
  for (;;) {
    for (const c of cursors) {
      while (c.i < c.offs.length && c.u8[c.offs[c.i]] !== FrameKind.Watermark) {
        const off = c.offs[c.i], len = c.lens[c.i];
        c.i++;
        if (c.u8[off] !== FrameKind.Event) continue;
        if (c.partitions) {
          const sp = c.dv.getUint16(off + EV_PARTITION, true);
          if (sp === 0 || !c.partitions.has(sp - 1)) continue;
        }
        yield { kind: 'event', bytes: c.u8, offset: off, length: len, keyGroup: c.dv.getUint16(off + EV_KEY_GROUP, true) };
      }
    }
    let next = Infinity, found = false;
    for (const c of cursors) {
      if (c.i < c.offs.length) { found = true; next = Math.min(next, c.dv.getFloat64(c.offs[c.i] + WM_VALUE, true)); }
    }
    if (!found) return;
    for (const c of cursors) if (c.i < c.offs.length && c.dv.getFloat64(c.offs[c.i] + WM_VALUE, true) === next) c.i++;
    if (watermarks) yield { kind: 'watermark', valueMs: next };
  }
}

/**
 * After a cut, once every worker has stopped: per worker, the frames it did not process (its ring
 * from its released head, then its spill), checkpoint barriers and the end frame left out.
 */
export function unroutedFrames(rings: readonly RingProducer[], spills: readonly FrameSpill[]): Uint8Array[] {
  const keep = (k: number) => k === FrameKind.Event || k === FrameKind.Watermark;
  return rings.map((r, w) => {
    const parts = unreadFrames(r.sab, keep);
    const spill = spills[w].bytes();
    forEachFrame(spill, (off, len) => {
      if (keep(spill[off])) parts.push(spill.subarray(off - FRAME_HEADER_BYTES, off - FRAME_HEADER_BYTES + align8(FRAME_HEADER_BYTES + len)));
    });
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  });
}

/** A stop checkpoint's frames to route at the start of a run (Router.setInflight). */
export class SavedFrames {
  private streams: InflightStream[] = [];
  private watermarks = true;

  set(streams: InflightStream[], watermarks: boolean): void {
    this.streams = streams;
    this.watermarks = watermarks;
  }

  /** Events still to route. */
  pending(): number {
    let n = 0;
    for (const st of mergeInflight(this.streams, false)) if (st.kind === 'event') n++;
    return n;
  }

  /** The steps to route (once; null when there are none). */
  take(): ReturnType<typeof mergeInflight> | null {
    if (this.streams.length === 0) return null;
    const steps = mergeInflight(this.streams, this.watermarks);
    this.streams = [];
    return steps;
  }
}
