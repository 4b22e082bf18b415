/**
 * The key, id and payload of a ring frame as Uint8Arrays for the join, without allocating per
 * event: a view of the ring made per field (three per event) was ~310 of the ~690 bytes of V8 heap
 * a worker allocated per event, and with it most of its scavenges (and the helper threads' share of
 * them). Short fields are copied, 4 bytes at a time, into a private scratch buffer instead and
 * handed out through one view per (field, length), made once. The store contract allows it: byte
 * arguments are valid only during the call, a store copies what it keeps.
 *
 * A field longer than FIELD_MAX still gets a view of the ring (copying by words loses to `set`
 * beyond ~160 bytes, and a view of the ring copies nothing).
 */
import { copyWords } from '../state/bucket-format.js';

/** Longest field copied (bytes); longer ones are ring views, as before. */
const FIELD_MAX = 128;
export const F_KEY = 0;
export const F_ID = 1;
export const F_PAYLOAD = 2;

export class EventViews {
  private readonly scratch = new ArrayBuffer(3 * FIELD_MAX);
  private readonly dv = new DataView(this.scratch);
  /** Per field, the view of each length (made on first use). */
  private readonly views: Uint8Array[][] = [[], [], []];

  constructor(private readonly sab: SharedArrayBuffer, private readonly ring: DataView) {}

  /**
   * Field `f` (F_KEY, F_ID, F_PAYLOAD) of the current event: `len` bytes at `off` in the ring.
   * Valid until the next call for the same field.
   */
  field(f: number, off: number, len: number): Uint8Array {
    if (len > FIELD_MAX) return new Uint8Array(this.sab, off, len);
    const base = f * FIELD_MAX;
    copyWords(this.ring, off, this.dv, base, len);
    let v = this.views[f][len];
    if (v === undefined) {
      for (let l = this.views[f].length; l < len; l++) this.views[f].push(new Uint8Array(this.scratch, base, l)); // keep the array packed
      v = new Uint8Array(this.scratch, base, len);
      this.views[f].push(v);
    }
    return v;
  }
}
