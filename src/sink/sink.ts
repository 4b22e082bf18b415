import * as fs from 'node:fs';
import * as path from 'node:path';
import { filePathOfSpec, parseSinkSpec } from '../config/endpoints.js';
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
  write(key: Uint8Array, value: Uint8Array): boolean;
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

/** Open a sink on this thread. `truncate` empties a file sink first (the owner does it once; writers append). */
export function openLineSink(spec: string, truncate: boolean): LineSink {
  const e = parseSinkSpec(spec);
  switch (e?.kind) {
    case 'stdout': return new StdoutSink();
    case 'null': return new NullSink();
    case 'file': return new FileSink(spec, e.path, truncate);
    default: throw new JoineryError('E_USAGE', `unsupported sink ${JSON.stringify(spec)} (use file:PATH, stdout or null)`);
  }
}

/** Fail before any work when a file sink's directory is missing or not writable. */
export function checkWritable(spec: string | undefined, flag: string): void {
  const file = filePathOfSpec(spec);
  if (file === null) return;
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
