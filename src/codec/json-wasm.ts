/**
 * The JSON extractor's fast path, a batch at a time in WebAssembly (the Rust source is
 * tools/wasm/json-extract; tools/wasm/build.sh embeds the module in json-wasm-bytes.ts).
 *
 * Why: finding the key, time and id of each JSON record was the router's largest cost (the byte
 * scan and the key text, ~0.45 µs per 110-byte record in JavaScript on the 2-core box). The same
 * loop compiled to WebAssembly runs in about a third of that: no bounds checks, no tagged
 * numbers. A batch's bytes are copied into the module's memory once (a memmove), every record is
 * read there, and JsonExtractor hands the router what the module found.
 *
 * The module only takes the common record: a flat object of plain ASCII strings, numbers and
 * literals, whose key and id values are plain strings or non-negative integers and whose time is
 * an integer of at most 15 characters. It declines everything else (escapes, bytes ≥ 0x7f,
 * nested values, a byte order mark, missing fields, invalid JSON), and JsonExtractor.extract reads
 * those records as before. So it never accepts a record the JavaScript code would refuse, and
 * gives what that code would give (test/unit/json-wasm.test.ts compares the two on generated and
 * mangled records). Nested field paths (`a.b`) keep the extractor in JavaScript.
 * JOINERY_JSON_WASM=0 turns the fast path off (to compare, or should it ever misbehave).
 */
import { JSON_WASM_BASE64 } from './json-wasm-bytes.js';

/** Node's WebAssembly, typed here: the project's type libraries (no DOM) do not declare it. */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

interface Exports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  __heap_base: { value: number };
  config_ptr(): number;
  configure(nKeys: number): number;
  extract_batch(data: number, dataLen: number, offs: number, count: number, skip: number, lines: number,
    out: number, keys: number, keysCap: number): number;
}

/** What a taken record gives: JsonExtractor's fields after extract(). */
export interface Extracted { ts: number; keyLen: number; idLen: number; lead: number }

const MAX_NAMES = 16;
const MAX_NAME_BYTES = 64;
const DECLINED = 0xffffffff;
const PAGE = 65536;

let compiled: object | null | undefined;

/** The module, compiled once per thread; null when turned off or when it cannot be compiled. */
function wasmModule(): object | null {
  if (compiled === undefined) {
    try {
      compiled = process.env.JOINERY_JSON_WASM === '0' || WA === undefined ? null : new WA.Module(Buffer.from(JSON_WASM_BASE64, 'base64'));
    } catch {
      compiled = null; // a runtime without WebAssembly: JavaScript does it all
    }
  }
  return compiled;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

export class JsonWasmBatch {
  private u8: Uint8Array;
  private dv: DataView;
  private readonly base: number;
  private outAt = 0;
  private keysAt = 0;
  /** Bumped by every run(): results are those of the run whose generation a caller holds. */
  generation = 0;

  private constructor(private readonly x: Exports, private readonly nKeys: number) {
    this.base = align(x.__heap_base.value, 16);
    this.u8 = new Uint8Array(x.memory.buffer);
    this.dv = new DataView(x.memory.buffer);
  }

  /** A fast path for these fields, or null (nested paths, too many or too long names, no WebAssembly). */
  static create(keyFields: readonly string[], timeField: string, idField: string): JsonWasmBatch | null {
    const names = [...keyFields, timeField, idField];
    if (names.length > MAX_NAMES || names.some((n) => n.includes('.'))) return null;
    const bytes = names.map((n) => Buffer.from(n, 'utf8'));
    if (bytes.some((b) => b.length > MAX_NAME_BYTES)) return null;
    const m = wasmModule();
    if (m === null) return null;
    const x = new WA!.Instance(m, {}).exports as Exports;
    const mem = new Uint8Array(x.memory.buffer);
    let p = x.config_ptr();
    mem[p++] = bytes.length;
    for (const b of bytes) { mem[p++] = b.length; mem.set(b, p); p += b.length; }
    return x.configure(keyFields.length) === 1 ? new JsonWasmBatch(x, keyFields.length) : null;
  }

  /**
   * Reads records [0, count) of a batch: record i is bytes[offs[i] + skip, offs[i + 1]), NDJSON
   * lines when `lines` (trailing blanks trimmed, as the router trims them). Returns how many the
   * module took.
   */
  run(bytes: Uint8Array, offs: Uint32Array, count: number, skip: number, lines: boolean): number {
    const dataLen = offs[count];
    const dataAt = this.base;
    const offsAt = align(dataAt + dataLen, 8);
    const outAt = align(offsAt + 4 * (count + 1), 8);
    const keysAt = outAt + 16 * count;
    // a record's key and id text is made of its own bytes plus the brackets and commas
    const keysCap = dataLen + count * (this.nKeys + 2);
    const need = keysAt + keysCap;
    const mem = this.x.memory;
    if (need > mem.buffer.byteLength) {
      mem.grow(Math.ceil((need - mem.buffer.byteLength) / PAGE));
      this.u8 = new Uint8Array(mem.buffer);
      this.dv = new DataView(mem.buffer);
    }
    this.u8.set(dataLen === bytes.length ? bytes : bytes.subarray(0, dataLen), dataAt);
    new Uint32Array(mem.buffer, offsAt, count + 1).set(offs.length === count + 1 ? offs : offs.subarray(0, count + 1));
    this.outAt = outAt;
    this.keysAt = keysAt;
    this.generation++;
    return this.x.extract_batch(dataAt, dataLen, offsAt, count, skip, lines ? 1 : 0, outAt, keysAt, keysCap);
  }

  /**
   * Record i of the last run, when the module took it: its key and id text into out[0, …) and its
   * time into `ex`. False when it was declined (or out is too small): extract it in JavaScript.
   */
  take(i: number, out: Uint8Array, ex: Extracted): boolean {
    const dv = this.dv, o = this.outAt + 16 * i;
    const at = dv.getUint32(o + 8, true);
    if (at === DECLINED) return false;
    const keyLen = dv.getUint16(o + 12, true), idLen = dv.getUint16(o + 14, true);
    const n = keyLen + idLen;
    if (n > out.length) return false;
    const u8 = this.u8, s = this.keysAt + at;
    for (let j = 0; j < n; j++) out[j] = u8[s + j];
    ex.ts = dv.getFloat64(o, true);
    ex.keyLen = keyLen;
    ex.idLen = idLen;
    ex.lead = 0;
    return true;
  }
}
