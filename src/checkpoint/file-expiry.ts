/**
 * Whole state files that a checkpoint can leave out of its chain without reading them: every
 * event in them has expired.
 *
 * Why: in a steady state every checkpoint interval adds a delta of about one interval's events,
 * and the window expires them again. Without this the chain only grows, and a compaction has to
 * read it all and rewrite what is live (the side thread's largest cost, and a restore reads the
 * chain). Events arrive roughly in event-time order, so one interval's delta expires as a whole
 * about one window later: dropping it from the manifest keeps the chain near the live state with
 * no rewriting at all. Compaction remains for the rest (late stragglers that keep a file alive,
 * outer sides).
 *
 * The rule is compaction's own (fold.ts): an event of a side that is not outer is dead once its
 * expireAt is below the lowest worker watermark of the checkpoint. Files holding MARK or EXPIRED
 * records, or events of an outer side, are never dropped here: an outer event's unmatched row is
 * emitted by the worker at expiry, and only its EXPIRED record says that has happened.
 */
/** Per side, the latest expireAt of a file's events (null: none of that side). */
export type ExpireAtMax = [number | null, number | null];

/** True when `f` holds only events of non-outer sides, all expired before `dropBeforeMs`. */
export function fileExpired(f: { expireAtMaxMs?: ExpireAtMax }, outer: readonly [boolean, boolean], dropBeforeMs: number): boolean {
  const m = f.expireAtMaxMs;
  if (!m) return false;
  for (const side of [0, 1] as const) {
    const t = m[side];
    if (t === null) continue;
    if (outer[side] || !(t < dropBeforeMs)) return false;
  }
  return true;
}

/** True when `f` holds only events of non-outer sides: no record elsewhere in a chain refers to them. */
export function orderFree(f: { expireAtMaxMs?: ExpireAtMax }, outer: readonly [boolean, boolean]): boolean {
  return fileExpired(f, outer, Infinity);
}

/** `{expireAtMaxMs}` when known, else nothing (a file reference without the field). */
export function expiryOf(m: ExpireAtMax | undefined): { expireAtMaxMs?: ExpireAtMax } {
  return m ? { expireAtMaxMs: m } : {};
}

/** A file reference's `expireAtMaxMs` as read from a manifest: kept only when well formed. */
export function validExpireAtMax(v: unknown): v is ExpireAtMax {
  return Array.isArray(v) && v.length === 2 && v.every((t) => t === null || (typeof t === 'number' && Number.isFinite(t)));
}
