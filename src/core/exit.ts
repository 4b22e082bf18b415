/**
 * Ending the process at once (second stop signal, stop timeout, a closed stdout) without hanging on
 * worker threads.
 *
 * process.exit() joins every worker thread, and a worker terminated inside an LMDB write
 * transaction deadlocks there (lmdb-js's cleanup hook waits for the transaction lock its own
 * thread holds). So the workers are told to halt through a shared flag they read between frames:
 * they abort their open transaction, close their store and end; then the process exits. A worker
 * that does not end within the grace period is stuck in native code, and only a signal the process
 * cannot catch gets past it (SIGKILL: the shell then reports 137 instead of the asked-for code).
 */
import type { Worker } from 'node:worker_threads';
import { log } from './log.js';

/** One engine run's workers and the flag they poll (Int32Array over a SharedArrayBuffer, 1 = halt). */
interface Group { flag: Int32Array; live: Set<Worker> }
const groups = new Set<Group>();
let exiting = false;

/** The halt flag a run hands its workers; `track` adds each worker as it starts; `close` forgets the run. */
export interface HaltGroup {
  sab: SharedArrayBuffer;
  track: (w: Worker) => void;
  /** Halt this run's workers (a failed run): resolves once all have ended, or false after timeoutMs. */
  halt: (timeoutMs: number) => Promise<boolean>;
  close: () => void;
}

export function haltGroup(): HaltGroup {
  const sab = new SharedArrayBuffer(4);
  const g: Group = { flag: new Int32Array(sab), live: new Set() };
  groups.add(g);
  if (exiting) Atomics.store(g.flag, 0, 1);
  return {
    sab,
    track: (w) => { g.live.add(w); w.once('exit', () => g.live.delete(w)); },
    halt: async (timeoutMs) => {
      Atomics.store(g.flag, 0, 1);
      const t0 = Date.now();
      while (g.live.size > 0 && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 10));
      return g.live.size === 0;
    },
    close: () => { groups.delete(g); },
  };
}

export const HALT_GRACE_MS = 1500;

export function isExiting(): boolean {
  return exiting;
}

/** Halt every worker, then exit with `code`; returns at once (the exit follows within the grace period). */
export function exitSoon(code: number, graceMs = HALT_GRACE_MS): void {
  if (exiting) return;
  exiting = true;
  process.exitCode = code;
  for (const g of groups) Atomics.store(g.flag, 0, 1);
  const t0 = Date.now();
  const check = () => {
    let live = 0;
    for (const g of groups) live += g.live.size;
    if (live === 0) { process.exit(code); return; }
    if (Date.now() - t0 >= graceMs) {
      try { log.say('error', `joinery: ${live} worker thread(s) did not halt within ${graceMs}ms (stuck in native code): killing the process`, { code: 'E_INTERNAL' }); } catch { /* stderr gone */ }
      process.kill(process.pid, 'SIGKILL');
      return;
    }
    setTimeout(check, 10);
  };
  check();
}
