import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SinkEndpoint, SinkKind } from '../config/endpoints.js';
import { JoineryError } from '../core/errors.js';

/**
 * Line sinks: NDJSON to a file, stdout, or nowhere (null: count only). Writes are buffered and go
 * out in large chunks; a file sink writes with O_APPEND so several threads can append whole chunks
 * to the same file without interleaving lines.
 */
export interface LineSink {
  readonly spec: string;
  /** Append bytes that end with a newline. */
  write(chunk: Uint8Array): void;
  /** Synchronous for files; a promise for Kafka (await it before committing source positions). */
  flush(): void | Promise<void>;
  close(): void | Promise<void>;
}

/** Keyed records (the joined output to Kafka). write() returning false asks the caller to await ready(). */
export interface RecordSink {
  readonly spec: string;
  /** One record; the sink copies what it keeps. False: await ready() before writing more. */
  write(key: Uint8Array, value: Uint8Array): boolean;
  /**
   * Optional: a whole chunk of framed records ([u16 LE keyLen][key][u32 LE valueLen][value]…, see
   * decodeRecordChunk), handed over: the caller never touches it again, so the sink may keep views
   * of it instead of copies. Same result as write() per record.
   */
  writeChunk?(chunk: Uint8Array): boolean;
  ready(): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

const FLUSH_BYTES = 256 * 1024;

class FileSink implements LineSink {
  private fd: number;
  private parts: Uint8Array[] = [];
  private pending = 0;
  constructor(readonly spec: string, file: string, truncate: boolean) {
    try {
      this.fd = fs.openSync(file, truncate ? 'w' : 'a');
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `cannot open output ${spec}: ${(e as Error).message}`);
    }
  }
  write(chunk: Uint8Array): void {
    this.parts.push(chunk);
    this.pending += chunk.length;
    if (this.pending >= FLUSH_BYTES) this.flush();
  }
  flush(): void {
    if (this.pending === 0) return;
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.pending);
    this.parts = [];
    this.pending = 0;
    let off = 0;
    try {
      while (off < all.length) off += fs.writeSync(this.fd, all, off, all.length - off);
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `writing ${this.spec} failed: ${(e as Error).message}`);
    }
  }
  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }
}

class StdoutSink implements LineSink {
  readonly spec = 'stdout';
  write(chunk: Uint8Array): void {
    process.stdout.write(chunk);
  }
  flush(): void {}
  close(): void {}
}

class NullSink implements LineSink {
  readonly spec = 'null';
  write(): void {}
  flush(): void {}
  close(): void {}
}

/**
 * The sink kinds a thread opens itself, by kind (the engine for --late-out and --dead-letter, each
 * worker for a file --out). The other kinds (Kafka) need async setup: the caller opens them and
 * hands the engine a LineSink or RecordSink.
 */
const LINE_SINKS: { [K in SinkKind]?: (e: Extract<SinkEndpoint, { kind: K }>, truncate: boolean) => LineSink } = {
  stdout: () => new StdoutSink(),
  null: () => new NullSink(),
  file: (e, truncate) => new FileSink(e.spec, e.path, truncate),
};

/** Whether this thread can open sinks of this kind itself (else the caller hands the engine one). */
export function isLineSinkKind(kind: SinkKind): boolean {
  return LINE_SINKS[kind] !== undefined;
}

/** Open a sink on this thread. `truncate` empties a file sink first (the owner does it once; writers append). */
export function openLineSink(sink: SinkEndpoint, truncate: boolean): LineSink {
  const open = LINE_SINKS[sink.kind] as ((e: SinkEndpoint, truncate: boolean) => LineSink) | undefined;
  if (!open) throw new JoineryError('E_USAGE', `unsupported sink ${JSON.stringify(sink.spec)} (use file:PATH, stdout or null)`);
  return open(sink, truncate);
}

/** Fail before any work when a file sink's directory is missing or not writable. */
export function checkWritable(sink: SinkEndpoint | undefined, flag: string): void {
  if (sink?.kind !== 'file') return;
  const { spec, path: file } = sink;
  const dir = path.dirname(path.resolve(file));
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new JoineryError('E_OUTPUT', `--${flag} ${spec}: directory ${dir} does not exist or is not writable`);
  }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
    throw new JoineryError('E_OUTPUT', `--${flag} ${spec}: is a directory`);
  }
}
