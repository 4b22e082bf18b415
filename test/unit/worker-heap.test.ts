import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WORKER_MIN_OLD_SPACE_MB } from '../../src/engine/worker-heap.js';

// A child process configures the worker heaps as the engine does, then runs a worker that keeps
// ~8 MB live and promotes ~30 MB of garbage (the shape of a join worker's heap). V8's trace of
// incremental marking prints each start with the old generation's size and limit: no start may
// come under the floor. Without the floor V8 starts marking at a limit of ~20–25 MB here.
const child = `
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
const { configureWorkerHeaps } = await import(process.argv[1]);
setFlagsFromString('--trace-incremental-marking');
configureWorkerHeaps();
const code = \`
const live = []; for (let i = 0; i < 80000; i++) live.push({ a: i, b: 'x' + i, c: [i] });
let keep = [];
for (let r = 0; r < 4000; r++) {
  const tmp = []; for (let i = 0; i < 2000; i++) tmp.push({ r, i, s: [i, r] });
  for (let k = 0; k < 2000; k += 40) keep.push(tmp[k]);
  if (keep.length > 100000) keep = [];
}
globalThis.kept = live.length + keep.length;
\`;
new Worker(code, { eval: true });
`;

test('worker threads get an old-generation limit of at least WORKER_MIN_OLD_SPACE_MB (no mark-compacts started below it)', () => {
  const mod = new URL('../../src/engine/worker-heap.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child, mod], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const starts = r.stdout.split('\n').filter((l) => l.includes('[IncrementalMarking] Start'));
  for (const l of starts) {
    const m = /v8: (\d+)MB \/ (\d+)MB/.exec(l);
    assert.ok(m, `unexpected trace line: ${l}`);
    assert.ok(Number(m[2]) >= WORKER_MIN_OLD_SPACE_MB, `incremental marking started at an old-generation limit of ${m[2]} MB: ${l}`);
  }
});
