// A worker's drain ends after a few ms (src/worker/worker.ts, DRAIN_BUDGET_MS), not only after
// 4096 frames: a drain's output is written and its latency taken at its end, so every event in it
// waits for its last one. Seen through the per-drain trace (JOINERY_TRACE) of a real run whose
// ring always holds a backlog (the unpaced generator outruns the worker).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { joinery, lastJson } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-drain-budget-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('with a backlog in the ring, drains end at their time budget rather than at 4096 frames', async () => {
  const trace = path.join(tmp, 'trace');
  const r = await joinery(['bench', '--source', 'gen', '--events', '300000', '--workers', '1', '--state-dir', path.join(tmp, 'st'),
    '--progress', 'off', '--json'], { env: { ...process.env, JOINERY_TRACE: trace } });
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson(r.stdout) as { eventsIn: [number, number] };
  const rows = fs.readFileSync(path.join(trace, 'worker-0.tsv'), 'utf8').trim().split('\n');
  const cols = rows[0].split('\t');
  const drains = rows.slice(1).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i], Number(v)])));
  assert.equal(drains.reduce((n, d) => n + d.events, 0), s.eventsIn[0] + s.eventsIn[1], 'every event in some drain');
  const backlogged = drains.filter((d) => d.ringBytes > 4096 * 300); // more than a full drain waiting
  assert.ok(backlogged.length >= 20, `only ${backlogged.length} of ${drains.length} drains began with a backlog`);
  // 4096 frames take 12 ms and more here: a drain that ran to the frame limit was not cut by time,
  // unless it was fast anyway (a faster machine).
  const long = backlogged.filter((d) => d.frames >= 4096 && d.wallMs > 8);
  assert.ok(long.length <= backlogged.length / 10, `${long.length} of ${backlogged.length} backlogged drains ran to 4096 frames over 8 ms`);
});
