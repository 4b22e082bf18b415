/**
 * The output gate of a checkpointed run (docs/architecture.md §3). Output produced after barrier b
 * carries tag b and may be written only once b is released; until then it is held, in order.
 *
 * One implementation for both holders: a worker gating its file output (released once every worker
 * has written its output from before b, so the file's length is a consistent cut) and main gating
 * transactional record output (released once checkpoint b's transaction has committed or failed).
 * A worker's tags never decrease; main's queue mixes workers, whose tags interleave, so release
 * writes every held item due and keeps the rest in order (for one worker that is the due prefix).
 */
export class OutputGate<T> {
  private held: Array<{ tag: number; item: T }> = [];

  constructor(private releasedId: number, private readonly write: (item: T) => void) {}

  /** The highest barrier id released so far. */
  get released(): number { return this.releasedId; }

  /** Items waiting for their barrier's release. */
  get holding(): number { return this.held.length; }

  /** Write `item` now if its tag is released (true), else hold it (false). */
  offer(tag: number, item: T): boolean {
    if (tag > this.releasedId) { this.held.push({ tag, item }); return false; }
    this.write(item);
    return true;
  }

  /** Release barrier `id`: write what it held back. Returns how many items were written. */
  release(id: number): number {
    if (id > this.releasedId) this.releasedId = id;
    let n = 0;
    const keep: typeof this.held = [];
    for (const h of this.held) {
      if (h.tag <= this.releasedId) { this.write(h.item); n++; } else keep.push(h);
    }
    this.held = keep;
    return n;
  }
}
