/**
 * A full disk under --state-dir. LMDB reports it as a bare "Input/output error" from a transaction
 * commit (after printing a line of its own on stderr), which says nothing about the disk. So the
 * workers stop a little before: when the file system holding the state directory has less than
 * STATE_DISK_RESERVE_BYTES free, the worker fails with E_STATE naming the directory and its free
 * space; and a store error that gets through anyway is reported the same way. Nothing accepted is
 * lost: the run stops before committing anything past its last checkpoint, and the next start
 * (with space freed, or another --state-dir) resumes from it.
 */
import * as fs from 'node:fs';
import { JoineryError } from '../core/errors.js';

/** Free space below which the workers stop: more than a drain's LMDB commit plus a bucket seal write. */
export const STATE_DISK_RESERVE_BYTES = 16 * 1024 * 1024;
/** How often a worker looks (a statfs costs microseconds; a drain writes well under the reserve in this time). */
const CHECK_EVERY_MS = 20;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function freeSpace(dir: string): { freeBytes: number; totalBytes: number } | null {
  try {
    const s = fs.statfsSync(dir);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return null;
  }
}

/** "12.0 MiB free of 3.0 GiB" for dir's file system (for messages about a full disk). */
export function spaceText(dir: string): string {
  const f = freeSpace(dir);
  return f ? `${mib(f.freeBytes)} free of ${mib(f.totalBytes)}` : 'free space unknown';
}

const advice = 'free space there (or give another --state-dir) and start again: with --checkpoint-dir it resumes from the last checkpoint';

export class StateDiskGuard {
  private nextCheckMs = 0;
  constructor(private readonly dir: string, private readonly worker: number) {}

  /** Throw E_STATE when the state directory's file system is (nearly) full. */
  check(nowMs: number): void {
    if (nowMs < this.nextCheckMs) return;
    this.nextCheckMs = nowMs + CHECK_EVERY_MS;
    const f = freeSpace(this.dir);
    if (f && f.freeBytes < STATE_DISK_RESERVE_BYTES) {
      throw new JoineryError('E_STATE', `worker ${this.worker}: the disk of --state-dir ${this.dir} is full (${spaceText(this.dir)}; the state store needs at least ${mib(STATE_DISK_RESERVE_BYTES)} free): ${advice}`);
    }
  }
}

/** A failure of the state store (LMDB) as E_STATE with the directory and its free space; other errors as they are. */
export function stateStoreError(e: unknown, dir: string, worker: number): JoineryError | null {
  if (e instanceof JoineryError) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  const fromStore = /[\\/]lmdb[\\/]/.test(err?.stack ?? '') || /MDB_|ENOSPC|EDQUOT|EIO|No space left|Input\/output error/.test(`${err?.code ?? ''} ${err?.message ?? ''}`);
  if (!fromStore) return null;
  const f = freeSpace(dir);
  const full = !!f && f.freeBytes < STATE_DISK_RESERVE_BYTES;
  return new JoineryError('E_STATE', `worker ${worker}: the state store in --state-dir ${dir} failed${full ? ' (disk full)' : ''}: ${err?.message ?? String(e)} (${spaceText(dir)})${full ? `: ${advice}` : ''}`);
}
