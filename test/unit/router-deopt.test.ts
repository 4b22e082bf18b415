import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';

// The router's record loop ran inside the async routeBatch; its OSR code, compiled during the first
// batch before the code after the loop had run, deoptimized there ("insufficient type feedback") at
// the end of each following batch until routeBatch was optimized as a whole: 60–71 times in this
// run (the default 2M-event bench; 1–3 at 1M events, where routeBatch gets optimized sooner). With the loop in the synchronous routeRun, nothing after a loop needs
// feedback that the first batch did not give. V8 prints every deoptimization (--trace-deopt).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('routing a bench run does not deoptimize the router\'s batch loop batch after batch', () => {
  const r = spawnSync(process.execPath, ['--trace-deopt', path.join(root, 'bin', 'joinery.js'), 'bench', '--workers', '2', '--state', 'lmdb', '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const bench = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.ok(bench.pairs > 0);
  const deopts = r.stdout.split('\n').filter((l) => l.startsWith('[bailout') && /<JSFunction (routeBatch|routeRun) /.test(l));
  assert.ok(deopts.length <= 5, `${deopts.length} deoptimizations of the batch loop:\n${deopts.slice(0, 5).join('\n')}`);
});
