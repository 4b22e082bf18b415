/**
 * Fault injection for the recovery tests: JOINERY_INJECT_FAULTS=point:N[@S][,…] makes N
 * operations at that point fail after the first S succeed (per thread). Points: delta-write (a
 * worker appending state changes: ENOSPC), checkpoint-write (the coordinator writing a manifest:
 * ENOSPC), worker-crash (a worker at a checkpoint barrier: throws), kill-after-manifest (the
 * process SIGKILLs itself once a manifest is durable, before its offsets or output transaction
 * commit: the window where disk and output system disagree), kill-in-manifest-write (SIGKILL with
 * half a manifest written to its temporary file: a torn write), stop-stall (a worker ignores a stop's
 * cut and keeps processing: a stop that overruns --stop-timeout, or a second signal while busy). Unset in production: one size check per call.
 * slow-drain:MS is a delay, not a failure: each worker sleeps MS before every drain of its ring, so
 * tests can have the rings hold unjoined events whatever the machine's speed (see injectedDelayMs).
 */
import { log } from '../core/log.js';

export type FaultPoint = 'delta-write' | 'checkpoint-write' | 'worker-crash' | 'kill-after-manifest' | 'kill-in-manifest-write' | 'stop-stall';

const remaining = new Map<string, { skip: number; fail: number }>();
for (const part of (process.env.JOINERY_INJECT_FAULTS ?? '').split(',')) {
  const m = /^([a-z-]+):(\d+)(?:@(\d+))?$/.exec(part.trim());
  if (m) remaining.set(m[1], { fail: Number(m[2]), skip: Number(m[3] ?? 0) });
}

export function injectedFault(point: FaultPoint, what: string): void {
  if (remaining.size === 0) return;
  const f = remaining.get(point);
  if (!f || f.fail <= 0) return;
  if (f.skip > 0) { f.skip--; return; }
  f.fail--;
  if (point === 'kill-after-manifest' || point === 'kill-in-manifest-write') {
    log.say('warn', `joinery: injected SIGKILL (JOINERY_INJECT_FAULTS) after ${what}`);
    process.kill(process.pid, 'SIGKILL');
  }
  if (point === 'stop-stall') throw new Error(`injected stall (JOINERY_INJECT_FAULTS) at ${what}`);
  if (point === 'worker-crash') throw new Error(`injected crash (JOINERY_INJECT_FAULTS) at ${what}`);
  const e = new Error(`ENOSPC: no space left on device (injected by JOINERY_INJECT_FAULTS), write '${what}'`) as NodeJS.ErrnoException;
  e.code = 'ENOSPC';
  throw e;
}

/** JOINERY_INJECT_FAULTS=slow-drain:MS → MS (0 when unset): a pause a worker takes before each drain. */
export function injectedDelayMs(point: 'slow-drain'): number {
  return remaining.get(point)?.fail ?? 0;
}
