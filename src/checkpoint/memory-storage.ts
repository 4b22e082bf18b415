/**
 * Checkpoint storage held in memory, for unit tests of the coordinator, restore and handoff logic:
 * the same contract as LocalDirStorage (test/contract/checkpoint-storage.contract.ts). It keeps
 * objects in a flat key space the way an object store does (`<location>/manifests/…`,
 * `<location>/data/…`; sub() is a longer prefix over the same objects), so it also shows what an
 * object-store implementation does: staged files are local temporary files that publish "uploads"
 * (reads into memory, then deletes), fetch "downloads" to a local scratch directory, and a manifest
 * appears whole or not at all. It cannot cross threads (descriptor null): engine tests use a directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  checkName, manifestIdsOf, manifestName,
  type CheckpointStorage, type PublishedFile, type Sealer, type StagedFile,
} from './storage.js';
import { mkdirs } from '../core/mkdirs.js';

interface Shared {
  objects: Map<string, Buffer>;
  scratch: string | null;
  fetched: number;
}

function missing(what: string): Error {
  return Object.assign(new Error(`ENOENT: no such object ${what}`), { code: 'ENOENT' });
}

export class MemoryStorage implements CheckpointStorage {
  readonly descriptor = null;
  /** The next this many manifest writes fail the way a full disk would, with nothing of them visible. */
  failWrites = 0;
  private readonly shared: Shared;

  constructor(readonly location = 'memory:', shared?: Shared) {
    this.shared = shared ?? { objects: new Map(), scratch: null, fetched: 0 };
  }

  private key(kind: 'manifests' | 'data', name: string): string {
    return `${this.location}/${kind}/${name}`;
  }

  private names(kind: 'manifests' | 'data'): string[] {
    const prefix = `${this.location}/${kind}/`;
    const out: string[] = [];
    for (const k of this.shared.objects.keys()) if (k.startsWith(prefix) && !k.includes('/', prefix.length)) out.push(k.slice(prefix.length));
    return out;
  }

  /** The local directory for staged and fetched files (created on first use; removed by dispose). */
  private scratch(sub: string): string {
    this.shared.scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-memory-storage-'));
    const dir = path.join(this.shared.scratch, sub);
    mkdirs(dir);
    return dir;
  }

  sub(...parts: string[]): MemoryStorage {
    return new MemoryStorage(`${this.location}/${parts.map(checkName).join('/')}`, this.shared);
  }

  lock(): void { /* in-process: nothing else can hold it */ }

  async writeManifest(id: number, text: string): Promise<void> {
    await Promise.resolve();
    if (this.failWrites > 0) {
      this.failWrites--;
      throw Object.assign(new Error(`ENOSPC: no space left on device (MemoryStorage), write ${this.key('manifests', manifestName(id))}`), { code: 'ENOSPC' });
    }
    this.shared.objects.set(this.key('manifests', manifestName(id)), Buffer.from(text, 'utf8'));
  }

  async listManifests(): Promise<number[]> {
    return manifestIdsOf(this.names('manifests'));
  }

  async readManifest(id: number, setAsideAs = ''): Promise<string> {
    const k = this.key('manifests', manifestName(id) + setAsideAs);
    const b = this.shared.objects.get(k);
    if (!b) throw missing(k);
    return b.toString('utf8');
  }

  async removeManifest(id: number): Promise<void> {
    this.shared.objects.delete(this.key('manifests', manifestName(id)));
  }

  async setAsideManifest(id: number, suffix: string): Promise<void> {
    const k = this.key('manifests', manifestName(id));
    const b = this.shared.objects.get(k);
    if (!b) throw missing(k);
    this.shared.objects.set(k + suffix, b); // copy, then delete: an object store has no rename
    this.shared.objects.delete(k);
  }

  stage(name: string): StagedFile {
    return { name, localPath: path.join(this.scratch('staged'), checkName(name)) };
  }

  async writeStaged(name: string, bytes: Uint8Array): Promise<StagedFile> {
    const f = this.stage(name);
    await fs.promises.writeFile(f.localPath, bytes);
    return f;
  }

  async publish(files: readonly StagedFile[], seal: Sealer): Promise<PublishedFile[]> {
    if (files.length === 0) return [];
    const sealed = await seal(files.map((f) => f.localPath));
    const out: PublishedFile[] = [];
    for (const [i, f] of files.entries()) {
      this.shared.objects.set(this.key('data', f.name), await fs.promises.readFile(f.localPath)); // the upload
      await fs.promises.rm(f.localPath, { force: true });
      out.push({ name: f.name, bytes: sealed[i].bytes, checksum: sealed[i].checksum });
    }
    return out;
  }

  /** A published state file, as if a checkpoint had published it (tests). */
  putFile(name: string, bytes: Uint8Array): void {
    this.shared.objects.set(this.key('data', checkName(name)), Buffer.from(bytes));
  }

  async listFiles(): Promise<string[]> {
    return this.names('data');
  }

  async readFile(name: string): Promise<Buffer> {
    const k = this.key('data', checkName(name));
    const b = this.shared.objects.get(k);
    if (!b) throw missing(k);
    return Buffer.from(b);
  }

  async fetch(names: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const n of names) {
      const bytes = await this.readFile(n);
      // Each fetch its own copy: a file published again under the same name is fetched afresh.
      const p = path.join(this.scratch('fetched'), `${++this.shared.fetched}-${n}`);
      await fs.promises.writeFile(p, bytes);
      out.push(p);
    }
    return out;
  }

  async removeFile(name: string): Promise<void> {
    this.shared.objects.delete(this.key('data', checkName(name)));
  }

  /** Nothing to overwrite in place here (staged files are scratch copies): removed. */
  recycleFile(name: string, _keepAtMost: number): Promise<void> {
    return this.removeFile(name);
  }

  /** Remove the local scratch directory (staged and fetched files). */
  dispose(): void {
    if (this.shared.scratch) fs.rmSync(this.shared.scratch, { recursive: true, force: true });
    this.shared.scratch = null;
  }
}
