/**
 * V8 heap settings for the worker threads. A worker keeps ~8–9 MB of old generation live (code,
 * the store's small objects) and promotes a little all the time; V8 then sets its old-generation
 * limit to a small multiple of that (19–24 MB), and once the room left under the limit is no more
 * than the young generation's capacity (up to 16 MB), every check starts incremental marking:
 * `--trace-incremental-marking` showed each worker of `bench --workers 2 --state lmdb` start ~18
 * mark-compacts per run, nearly all "task" or "allocation limit" starts at 8 MB of 19–24 MB, only
 * 1–2 set off by external memory (ArrayBuffers). Each one costs a pause in the worker and
 * concurrent marking on V8's helper threads ("other" in the CPU split).
 *
 * A floor of WORKER_MIN_OLD_SPACE_MB under the limit (V8's `--initial-old-space-size`, which also
 * serves as the minimum the limit is recomputed to) leaves ~5 per worker. Measured (three sets of
 * 6–8 interleaved pairs, docs/architecture.md §5 "Worker heap and the rest of the per-event work"):
 * "other" −17 to −27 %, total CPU per event −5 to −8 %, workers −1 to −3 %; a worker's committed
 * heap went from ~18 to ~27 MB. V8 flags are per process and are read when an isolate is made: set before the first
 * worker starts, they apply to every isolate made afterwards (the workers), not to the main
 * thread's, which exists already.
 */
import { setFlagsFromString } from 'node:v8';

export const WORKER_MIN_OLD_SPACE_MB = 64;

let done = false;

/** Sets the workers' V8 heap flags (once per process; before the first worker starts). */
export function configureWorkerHeaps(): void {
  if (done) return;
  done = true;
  setFlagsFromString(`--initial-old-space-size=${WORKER_MIN_OLD_SPACE_MB}`);
}
