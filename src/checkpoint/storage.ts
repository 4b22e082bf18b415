/**
 * Where checkpoints live. Behind an interface so an object store can be added: workers write state
 * files into a local staging directory (`dataDir`), the coordinator makes them durable and
 * publishes manifests through this interface. LocalDirStorage is the local implementation:
 *   DIR/manifests/ckpt-<id>.json   the commit points (fsync + atomic rename + directory fsync)
 *   DIR/data/                      state files named by the manifests
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JoineryError } from '../core/errors.js';
import { injectedFault } from './faults.js';

export interface CheckpointStorage {
  readonly location: string;
  /** Local directory for state files. */
  readonly dataDir: string;
  /** Make a manifest durable under its id: after this resolves it survives a crash, whole or not at all. */
  writeManifest(id: number, text: string): Promise<void>;
  /** Manifest ids present, newest first. */
  listManifests(): number[];
  readManifest(id: number): string;
  removeManifest(id: number): void;
  /** Bytes of a state file by name. */
  readFile(name: string): Buffer;
  /** State file names present. */
  listFiles(): string[];
  removeFile(name: string): void;
}

const MANIFEST_RE = /^ckpt-(\d{9})\.json$/;

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

export class LocalDirStorage implements CheckpointStorage {
  readonly dataDir: string;
  private readonly manifestDir: string;

  constructor(readonly location: string) {
    this.manifestDir = path.join(location, 'manifests');
    this.dataDir = path.join(location, 'data');
    try {
      fs.mkdirSync(this.manifestDir, { recursive: true });
      fs.mkdirSync(this.dataDir, { recursive: true });
      const probe = path.join(location, `.write-test-${process.pid}`);
      fs.writeFileSync(probe, '');
      fs.rmSync(probe);
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `--checkpoint-dir ${location} is not a writable directory: ${(e as Error).message}`);
    }
  }

  manifestPathOf(id: number): string {
    return this.manifestPath(id);
  }

  private manifestPath(id: number): string {
    return path.join(this.manifestDir, `ckpt-${String(id).padStart(9, '0')}.json`);
  }

  async writeManifest(id: number, text: string): Promise<void> {
    const final = this.manifestPath(id);
    const tmp = `${final}.tmp-${process.pid}`;
    try {
      injectedFault('checkpoint-write', final);
      const fh = await fs.promises.open(tmp, 'w');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, final);
      fsyncDir(this.manifestDir);
    } catch (e) {
      try { fs.rmSync(tmp, { force: true }); } catch { /* best effort */ }
      throw e;
    }
  }

  listManifests(): number[] {
    return fs.readdirSync(this.manifestDir).map((n) => MANIFEST_RE.exec(n)).filter((m) => m !== null)
      .map((m) => Number(m![1])).sort((a, b) => b - a);
  }

  readManifest(id: number): string {
    return fs.readFileSync(this.manifestPath(id), 'utf8');
  }

  removeManifest(id: number): void {
    fs.rmSync(this.manifestPath(id), { force: true });
  }

  readFile(name: string): Buffer {
    return fs.readFileSync(path.join(this.dataDir, name));
  }

  listFiles(): string[] {
    return fs.readdirSync(this.dataDir);
  }

  removeFile(name: string): void {
    fs.rmSync(path.join(this.dataDir, name), { force: true });
  }
}

/**
 * Checkpoint storage held in memory, for tests of the coordinator and restore logic: the same
 * contract as LocalDirStorage (test/contract/checkpoint-storage.contract.ts). State files are kept
 * as bytes (`putFile` stands in for a worker writing into `dataDir`); `failWrites` makes the next
 * manifest writes fail the way a full disk would, with nothing of them visible.
 */
export class MemoryStorage implements CheckpointStorage {
  private readonly manifests = new Map<number, string>();
  private readonly files = new Map<string, Buffer>();
  failWrites = 0;

  constructor(readonly location = 'memory:', readonly dataDir = 'memory:/data') {}

  async writeManifest(id: number, text: string): Promise<void> {
    await Promise.resolve();
    if (this.failWrites > 0) {
      this.failWrites--;
      throw Object.assign(new Error(`ENOSPC: no space left on device (MemoryStorage), write manifest ${id}`), { code: 'ENOSPC' });
    }
    this.manifests.set(id, text);
  }

  listManifests(): number[] {
    return [...this.manifests.keys()].sort((a, b) => b - a);
  }

  readManifest(id: number): string {
    const t = this.manifests.get(id);
    if (t === undefined) throw Object.assign(new Error(`ENOENT: no manifest ${id} in ${this.location}`), { code: 'ENOENT' });
    return t;
  }

  removeManifest(id: number): void {
    this.manifests.delete(id);
  }

  putFile(name: string, bytes: Uint8Array): void {
    this.files.set(name, Buffer.from(bytes));
  }

  readFile(name: string): Buffer {
    const b = this.files.get(name);
    if (!b) throw Object.assign(new Error(`ENOENT: no state file ${name} in ${this.location}`), { code: 'ENOENT' });
    return Buffer.from(b);
  }

  listFiles(): string[] {
    return [...this.files.keys()];
  }

  removeFile(name: string): void {
    this.files.delete(name);
  }
}
