/**
 * Where checkpoints live: the CheckpointStorage port. Every read, write, list, rename and delete of
 * checkpoint data goes through it, so an object store is one more implementation of this interface
 * (docs/architecture.md §3 maps each method onto an S3-like store). Two implementations share one
 * contract suite (test/contract/checkpoint-storage.contract.ts): LocalDirStorage here (a directory)
 * and MemoryStorage (memory-storage.ts, for unit tests; it stores like an object store would).
 *
 * Bulk bytes never pass through the port as buffers on the hot path: a worker appends its change
 * file to a *staged* file, which is a local disk path by contract (synchronous appends, no copy),
 * and the coordinator `publish`es it at a checkpoint; readers `fetch` files to local paths and read
 * those. For a local directory both are the data directory itself; an object store uploads on
 * publish and downloads on fetch.
 *
 * LocalDirStorage's layout:
 *   DIR/manifests/ckpt-<id>.json   the commit points (fsync + atomic rename + directory fsync)
 *   DIR/data/                      state and in-flight files named by the manifests
 *   DIR/recycle/                   change files that left the chain, for the next stage() to overwrite
 *   DIR/members/<name>/            a group member's own storage (sub('members', name))
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lockDir } from '../core/dirlock.js';
import { JoineryError } from '../core/errors.js';
import { injectedFault } from './faults.js';
import type { SealedFile } from './tasks.js';
import { mkdirs } from '../core/mkdirs.js';

/** How another thread opens the same storage (openStorage): plain data, it crosses threads. */
export type StorageDescriptor = { kind: 'local'; dir: string };

/** A file being written before it is published: `localPath` is on local disk, whatever the storage. */
export interface StagedFile { readonly name: string; readonly localPath: string }

export interface PublishedFile { name: string; bytes: number; checksum: string }

/**
 * Makes staged local files durable where they are and checksums them (the side pool's seal, or the
 * figures a compaction computed while writing them); called by publish before the files are final.
 */
export type Sealer = (localPaths: string[]) => Promise<Array<Pick<SealedFile, 'bytes' | 'checksum'>>>;

export interface CheckpointStorage {
  /** For messages: a directory, or a URL-like name. */
  readonly location: string;
  /** How a worker thread opens this storage; null for one that cannot cross threads (MemoryStorage). */
  readonly descriptor: StorageDescriptor | null;
  /** The storage under a sub-location (a group member's: sub('members', name)); creates nothing. */
  sub(...parts: string[]): CheckpointStorage;
  /** Hold this storage for this process (E_LOCKED naming the holder otherwise); `flag` names it in the message. */
  lock(flag: string): void;

  /** Make a manifest durable under its id: after this resolves it survives a crash, whole or not at all. */
  writeManifest(id: number, text: string): Promise<void>;
  /** Manifest ids present, newest first (set-aside ones are not). */
  listManifests(): Promise<number[]>;
  /** A manifest's text; with `setAsideAs`, the copy setAsideManifest(id, setAsideAs) kept. */
  readManifest(id: number, setAsideAs?: string): Promise<string>;
  removeManifest(id: number): Promise<void>;
  /**
   * Take a manifest out of the list, keeping its text under `suffix` (for a look): the id may be
   * written again; a later set-aside under the same suffix replaces the kept copy. Missing: rejects.
   */
  setAsideManifest(id: number, suffix: string): Promise<void>;

  /**
   * A local file to write state into (synchronous appends are fine); nothing is visible before
   * publish. It may already hold bytes (a recycled file, see recycleFile): a writer overwrites it
   * from the start and cuts it at its own end (ChangeWriter does), or replaces it whole.
   */
  stage(name: string): StagedFile;
  /** Stage a file holding `bytes`. */
  writeStaged(name: string, bytes: Uint8Array): Promise<StagedFile>;
  /** Make staged files durable and visible under their names (`seal` checksums them); resolves in order. */
  publish(files: readonly StagedFile[], seal: Sealer): Promise<PublishedFile[]>;
  /** Published file names. */
  listFiles(): Promise<string[]>;
  /** A published file's bytes (a copy). */
  readFile(name: string): Promise<Buffer>;
  /** Local paths holding these published files, for bulk or synchronous reading; rejects naming a missing one. */
  fetch(names: readonly string[]): Promise<string[]>;
  /** Remove a published file; removing a missing one is fine. */
  removeFile(name: string): Promise<void>;
  /**
   * Remove a published file as removeFile does, but let a later stage() write over its bytes in
   * place. A local directory keeps up to `keepAtMost` such files, so that a new change file
   * overwrites pages the page cache already holds rather than allocating and filling fresh ones;
   * others just remove it.
   */
  recycleFile(name: string, keepAtMost: number): Promise<void>;
}

/**
 * The storage --checkpoint-dir names: the one place an implementation is chosen (an object store
 * would be picked here by its URL scheme). `create`: make it now and check that it is writable.
 */
export function storageAt(location: string, create = true): CheckpointStorage {
  return new LocalDirStorage(location, { create });
}

/** Open a storage from its descriptor (in a worker thread). */
export function openStorage(d: StorageDescriptor): CheckpointStorage {
  if (d.kind === 'local') return new LocalDirStorage(d.dir, { create: false });
  throw new JoineryError('E_INTERNAL', `checkpoint storage kind ${(d as { kind: string }).kind} is unknown`);
}

/** Where member `member` keeps its checkpoints (null: the single-node layout, the root itself). */
export function memberStorage(root: CheckpointStorage, member: string | null): CheckpointStorage {
  return member === null ? root : root.sub('members', member);
}

export const manifestName = (id: number): string => `ckpt-${String(id).padStart(9, '0')}.json`;
const MANIFEST_RE = /^ckpt-(\d{9})\.json$/;

/** A plain file name: a name with a separator would leave the storage's name space. */
export function checkName(name: string): string {
  if (!name || name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
    throw new JoineryError('E_INTERNAL', `checkpoint file name ${JSON.stringify(name)} is not a plain file name`);
  }
  return name;
}

export function manifestIdsOf(names: Iterable<string>): number[] {
  const ids: number[] = [];
  for (const n of names) { const m = MANIFEST_RE.exec(n); if (m) ids.push(Number(m[1])); }
  return ids.sort((a, b) => b - a);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';


export class LocalDirStorage implements CheckpointStorage {
  readonly dataDir: string;
  readonly descriptor: StorageDescriptor;
  private readonly manifestDir: string;
  /** Removed state files kept for stage() to overwrite (recycleFile); listed by no one else. */
  readonly recycleDir: string;
  private ready = false;

  /** `create` (default): make the directories now and check they are writable; otherwise on the first write. */
  constructor(readonly location: string, opts: { create?: boolean } = {}) {
    this.manifestDir = path.join(location, 'manifests');
    this.dataDir = path.join(location, 'data');
    this.recycleDir = path.join(location, 'recycle');
    this.descriptor = { kind: 'local', dir: location };
    if (opts.create ?? true) this.ensure(true);
  }

  /** Create the directories (idempotent: worker threads each open their own instance); `probe`: check now that files can be written. */
  private ensure(probe = false): void {
    if (this.ready && !probe) return;
    try {
      mkdirs(this.manifestDir);
      mkdirs(this.dataDir);
      if (probe) {
        const p = path.join(this.location, `.write-test-${process.pid}`);
        fs.writeFileSync(p, '');
        fs.rmSync(p, { force: true });
      }
    } catch (e) {
      throw new JoineryError('E_OUTPUT', `--checkpoint-dir ${this.location} is not a writable directory: ${(e as Error).message}`);
    }
    this.ready = true;
  }

  sub(...parts: string[]): LocalDirStorage {
    return new LocalDirStorage(path.join(this.location, ...parts.map(checkName)), { create: false });
  }

  lock(flag: string): void {
    lockDir(this.location, flag);
  }

  manifestPathOf(id: number): string {
    return path.join(this.manifestDir, manifestName(id));
  }

  async writeManifest(id: number, text: string): Promise<void> {
    this.ensure();
    const final = this.manifestPathOf(id);
    const tmp = `${final}.tmp-${process.pid}`;
    try {
      injectedFault('checkpoint-write', final);
      const fh = await fs.promises.open(tmp, 'w');
      try {
        const half = text.length >> 1;
        await fh.writeFile(text.slice(0, half));
        injectedFault('kill-in-manifest-write', tmp); // the crash tests' torn write: half the text written, never renamed
        await fh.writeFile(text.slice(half));
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

  async listManifests(): Promise<number[]> {
    try {
      return manifestIdsOf(await fs.promises.readdir(this.manifestDir));
    } catch (e) {
      if (isMissing(e)) return []; // a member's storage nothing was written to yet
      throw e;
    }
  }

  readManifest(id: number, setAsideAs = ''): Promise<string> {
    return fs.promises.readFile(this.manifestPathOf(id) + setAsideAs, 'utf8');
  }

  async removeManifest(id: number): Promise<void> {
    await fs.promises.rm(this.manifestPathOf(id), { force: true });
  }

  async setAsideManifest(id: number, suffix: string): Promise<void> {
    const p = this.manifestPathOf(id);
    await fs.promises.rename(p, `${p}${suffix}`);
    fsyncDir(this.manifestDir);
  }

  stage(name: string): StagedFile {
    this.ensure();
    // Staged in place: publishing is making the file durable (the names of unpublished files are
    // this run's open change files, which retention leaves alone).
    const localPath = path.join(this.dataDir, checkName(name));
    this.takeRecycled(localPath);
    return { name, localPath };
  }

  /**
   * Move a recycled file (if there is one) to `localPath`. Writing over pages the page cache holds
   * costs a copy; a fresh file's pages must first be allocated (and, in a virtual machine whose
   * host reclaims free memory, faulted in from the host: 16× the copy, measured). Threads staging at
   * once race for a file by rename: the loser tries the next, or starts a fresh file.
   */
  private takeRecycled(localPath: string): void {
    let names: string[];
    try { names = fs.readdirSync(this.recycleDir); } catch { return; }
    for (const n of names) {
      const p = path.join(this.recycleDir, n);
      try {
        // Only a plain file this storage put there: writing through a link placed in the pool
        // would overwrite whatever it points to.
        if (!fs.lstatSync(p).isFile()) continue;
        fs.renameSync(p, localPath);
        return;
      } catch { /* taken by another thread, or gone: the next one */ }
    }
  }

  async writeStaged(name: string, bytes: Uint8Array): Promise<StagedFile> {
    // Written whole and small (in-flight frames): a recycled file would only be truncated away.
    this.ensure();
    const f = { name, localPath: path.join(this.dataDir, checkName(name)) };
    await fs.promises.writeFile(f.localPath, bytes);
    return f;
  }

  async publish(files: readonly StagedFile[], seal: Sealer): Promise<PublishedFile[]> {
    if (files.length === 0) return [];
    const sealed = await seal(files.map((f) => f.localPath));
    return files.map((f, i) => ({ name: f.name, bytes: sealed[i].bytes, checksum: sealed[i].checksum }));
  }

  async listFiles(): Promise<string[]> {
    try {
      return await fs.promises.readdir(this.dataDir);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  readFile(name: string): Promise<Buffer> {
    return fs.promises.readFile(path.join(this.dataDir, checkName(name)));
  }

  async fetch(names: readonly string[]): Promise<string[]> {
    const paths = names.map((n) => path.join(this.dataDir, checkName(n)));
    await Promise.all(paths.map((p) => fs.promises.access(p, fs.constants.R_OK)));
    return paths;
  }

  async removeFile(name: string): Promise<void> {
    await fs.promises.rm(path.join(this.dataDir, checkName(name)), { force: true });
  }

  async recycleFile(name: string, keepAtMost: number): Promise<void> {
    const p = path.join(this.dataDir, checkName(name));
    try {
      await fs.promises.mkdir(this.recycleDir, { recursive: true });
      if ((await fs.promises.readdir(this.recycleDir)).length < keepAtMost) {
        await fs.promises.rename(p, path.join(this.recycleDir, name));
        return;
      }
    } catch (e) {
      if (isMissing(e)) return; // already gone: fine, as for removeFile
      // Otherwise (a full pool raced, no room for the directory): removed instead.
    }
    await this.removeFile(name);
  }
}

export { MemoryStorage } from './memory-storage.js';
