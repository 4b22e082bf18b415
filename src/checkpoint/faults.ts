/**
 * Fault injection for the checkpoint tests (a disk that fills up, then frees space): the
 * environment variable JOINERY_INJECT_FAULTS=point:N[,point:N] makes the first N operations at
 * that point fail with ENOSPC, per thread. Points: delta-write (a worker appending state changes),
 * checkpoint-write (the coordinator writing a manifest). Unset in production: one map lookup.
 */
const spec = process.env.JOINERY_INJECT_FAULTS ?? '';
const remaining = new Map<string, number>();
for (const part of spec.split(',')) {
  const m = /^([a-z-]+):(\d+)$/.exec(part.trim());
  if (m) remaining.set(m[1], Number(m[2]));
}

export function injectedFault(point: 'delta-write' | 'checkpoint-write', what: string): void {
  if (remaining.size === 0) return;
  const n = remaining.get(point) ?? 0;
  if (n <= 0) return;
  remaining.set(point, n - 1);
  const e = new Error(`ENOSPC: no space left on device (injected by JOINERY_INJECT_FAULTS), write '${what}'`) as NodeJS.ErrnoException;
  e.code = 'ENOSPC';
  throw e;
}
