/**
 * The generator's state as bytes, for checkpoints: a resume of the `gen:` source loads it instead
 * of regenerating every event it had delivered (~1 µs each on the main thread, beside the workers'
 * restore: 12 s for a 1 GB state). The bytes are those of Generator.exportState, arrays laid end to
 * end (each padded to 8 bytes), after a header with the options that shape the stream: a state of
 * another stream is refused, and the caller regenerates instead.
 */
import { newGenEvents, type GenOptions, type GenState } from './generator.js';

const MAGIC = 0x4e45474a; // 'JGEN' little-endian
const VERSION = 1;
const SCALARS = 16;

/** Options whose change changes the events: durationMs (a wall-clock limit) is not one. */
function fingerprint(o: GenOptions): string {
  const { durationMs: _d, ...rest } = o;
  return JSON.stringify(Object.keys(rest).sort().map((k) => [k, rest[k as keyof typeof rest]]));
}

type Arr = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

function arraysOf(s: GenState): Arr[] {
  const e = s.events;
  return [e.side, e.flags, e.device, e.pos, e.idNum, e.profile, e.title, e.ts, e.arrival, e.extra, s.arrivals, s.future, s.queues[0], s.queues[1]];
}

// Not `(n + 7) & ~7`: 32-bit arithmetic, which a hostile count past 2^31 would wrap.
const pad8 = (n: number): number => Math.ceil(n / 8) * 8;
/** The arrays are written in the machine's byte order, which must be the header's (little-endian): true on every platform Node runs on here. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function encodeGenState(s: GenState, opts: GenOptions): Uint8Array {
  const fp = new TextEncoder().encode(fingerprint(opts));
  const arrays = arraysOf(s);
  const head = pad8(4 + 4 + 4 + fp.length) + 8 * SCALARS + 8 * 5;
  const total = arrays.reduce((n, a) => n + pad8(a.byteLength), head);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true); dv.setUint32(4, VERSION, true); dv.setUint32(8, fp.length, true);
  out.set(fp, 12);
  let at = pad8(12 + fp.length);
  const scalars = [...s.rng, s.baseMs, s.step, s.frontier, s.nextImpressionId, s.nextPlayId, s.emittedTotal,
    s.emitted[0], s.emitted[1], s.dups[0], s.dups[1], s.orphansEmitted, s.done ? 1 : 0];
  for (const v of scalars) { dv.setFloat64(at, v, true); at += 8; }
  for (const n of [s.events.side.length, s.arrivals.length / 2, s.future.length / 2, s.queues[0].length, s.queues[1].length]) { dv.setFloat64(at, n, true); at += 8; }
  for (const a of arrays) { out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at); at += pad8(a.byteLength); }
  return out;
}

/**
 * The state was written by a generator with other options: the events delivered before the
 * checkpoint are another stream than these options make, so neither the state nor a regeneration
 * can continue them. `changed`: the options that differ (name: then → now).
 */
export class OtherGenOptions extends Error {
  constructor(readonly changed: string) {
    super(`generator state of other options (${changed})`);
  }
}

function changedOptions(then: string, now: string): string {
  try {
    const a = new Map(JSON.parse(then) as Array<[string, unknown]>), b = new Map(JSON.parse(now) as Array<[string, unknown]>);
    const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k)));
    return keys.map((k) => `${k}: ${JSON.stringify(a.get(k)) ?? 'unset'} → ${JSON.stringify(b.get(k)) ?? 'unset'}`).join(', ') || 'unknown';
  } catch {
    return '--seed/--events/--gen-* options';
  }
}

/** The state in `bytes`, or an Error saying why it cannot be used with these options. */
export function decodeGenState(bytes: Uint8Array, opts: GenOptions): GenState | Error {
  if (!LITTLE_ENDIAN) return new Error('generator states are little-endian');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || dv.getUint32(0, true) !== MAGIC) return new Error('not a generator state');
  if (dv.getUint32(4, true) !== VERSION) return new Error(`generator state version ${dv.getUint32(4, true)}, not ${VERSION}`);
  const fpLen = dv.getUint32(8, true);
  if (12 + fpLen > bytes.length) return new Error('generator state cut short');
  const fp = new TextDecoder().decode(bytes.subarray(12, 12 + fpLen));
  if (fp !== fingerprint(opts)) return new OtherGenOptions(changedOptions(fp, fingerprint(opts)));
  let at = pad8(12 + fpLen);
  if (at + 8 * (SCALARS + 5) > bytes.length) return new Error('generator state cut short');
  const f = (): number => { const v = dv.getFloat64(at, true); at += 8; return v; };
  const sc = Array.from({ length: SCALARS }, f);
  const [live, arr, fut, q0, q1] = Array.from({ length: 5 }, f);
  const counts = [live, arr, fut, q0, q1];
  if (counts.some((n) => !Number.isInteger(n) || n < 0) || arr + fut + q0 + q1 !== live) return new Error('generator state with bad counts');
  if (live > bytes.length / 41) return new Error('generator state of the wrong length'); // 41 bytes of fields per event at least
  // The length the counts imply, checked before anything is allocated from them.
  const bytesOf = [1, 1, 1, 2, 8, 4, 4, 8, 8, 4].map((w) => pad8(w * live)).concat([pad8(16 * arr), pad8(16 * fut), pad8(4 * q0), pad8(4 * q1)]);
  if (bytesOf.reduce((n, x) => n + x, at) !== bytes.length) return new Error('generator state of the wrong length');
  const ev = newGenEvents(live);
  const s: GenState = {
    rng: [sc[0], sc[1], sc[2], sc[3]], baseMs: sc[4], step: sc[5], frontier: sc[6], nextImpressionId: sc[7], nextPlayId: sc[8],
    emittedTotal: sc[9], emitted: [sc[10], sc[11]], dups: [sc[12], sc[13]], orphansEmitted: sc[14], done: sc[15] === 1,
    events: ev, arrivals: new Float64Array(2 * arr), future: new Float64Array(2 * fut), queues: [new Int32Array(q0), new Int32Array(q1)],
  };
  for (const a of arraysOf(s)) {
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(bytes.subarray(at, at + a.byteLength));
    at += pad8(a.byteLength);
  }
  // Every live event is in exactly one heap or queue: a state that says otherwise is refused.
  const seen = new Uint8Array(live);
  const mark = (i: number): boolean => Number.isInteger(i) && i >= 0 && i < live && seen[i]++ === 0;
  for (const h of [s.arrivals, s.future]) for (let k = 1; k < h.length; k += 2) if (!mark(h[k])) return new Error('generator state with a bad event reference');
  for (const q of s.queues) for (const i of q) if (!mark(i)) return new Error('generator state with a bad event reference');
  return s;
}
