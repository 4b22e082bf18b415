// `--progress on` without a terminal: one JSON record per stats interval carrying running totals
// (events in, pairs, process CPU, elapsed), which tools take rates from over any span.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-progress-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('progress records carry running totals that only grow and end near the summary\'s', async () => {
  // Paced, so that the run spans several 1-second stats intervals on any machine.
  const r = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '200000', '--rate', '50000', '--workers', '2',
    '--out', 'null', '--state-dir', path.join(tmp, 'st'), '--progress', 'on', '--json']);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const recs = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((j) => j.progress === true);
  assert.ok(recs.length >= 2, `several progress records: ${r.stderr.slice(-2000)}`);
  for (const j of recs) for (const f of ['elapsedMs', 'eventsIn', 'pairs', 'cpuMs']) assert.equal(typeof j[f], 'number', `${f} in ${JSON.stringify(j)}`);
  for (let i = 1; i < recs.length; i++) {
    assert.ok(recs[i].elapsedMs > recs[i - 1].elapsedMs, 'time advances');
    for (const f of ['eventsIn', 'pairs', 'cpuMs']) assert.ok(recs[i][f] >= recs[i - 1][f], `${f} never goes back`);
  }
  const last = recs[recs.length - 1], s = lastJson(r.stdout) as { eventsIn: number[]; pairs: number };
  assert.ok(last.eventsIn > 0 && last.eventsIn <= s.eventsIn[0] + s.eventsIn[1], `${last.eventsIn} of ${s.eventsIn}`);
  assert.ok(last.pairs <= s.pairs);
  assert.ok(last.cpuMs > 0);
});
