// CPU per input event, per thread, in the summary of a real run (src/metrics/cpu.ts).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { formatSummary, type Summary } from '../../src/engine.js';
import { joinery, lastJson } from './cli.js';

/** The `finished` log record (the summary when stderr is not a terminal). */
function finished(stderr: string): { cpu: Cpu } {
  const recs = stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; cpu: Cpu }).filter((r) => r.msg === 'finished');
  assert.equal(recs.length, 1, stderr);
  return recs[0];
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-cpu-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Cpu { totalMs: number; usPerEvent: number; threads?: Array<{ name: string; ms: number; usPerEvent: number }> }

test('run --json: CPU µs per event for the router, each worker, the checkpoint side pool and the rest, adding up to the process', async () => {
  const r = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '150000', '--workers', '2', '--out', 'null',
    '--state-dir', path.join(tmp, 'st'), '--checkpoint-dir', path.join(tmp, 'ck'), '--checkpoint-interval', '1s', '--progress', 'off', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson(r.stdout) as { eventsIn: [number, number]; cpu: Cpu };
  const events = s.eventsIn[0] + s.eventsIn[1];
  assert.ok(s.cpu.totalMs > 0);
  assert.ok(Math.abs(s.cpu.usPerEvent - (s.cpu.totalMs * 1000) / events) < 1e-6);
  // The summary on stderr (the finished record, stderr not being a terminal) carries the same figures.
  assert.deepEqual(finished(r.stderr).cpu, s.cpu);
  if (process.platform !== 'linux') { assert.equal(s.cpu.threads, undefined); return; }
  const threads = s.cpu.threads!;
  assert.deepEqual(threads.map((t) => t.name), ['router', 'worker-0', 'worker-1', 'side-pool', 'other']);
  // Every engine thread did work, and the router's share is not the workers' (they have tids of their own).
  for (const t of threads.slice(0, 3)) assert.ok(t.ms > 10, `${t.name}: ${t.ms} ms`);
  const parts = threads.reduce((a, t) => a + t.ms, 0);
  assert.ok(Math.abs(parts - s.cpu.totalMs) <= Math.max(30, s.cpu.totalMs * 0.05), `threads add up to ${parts} ms, process ${s.cpu.totalMs} ms`);
  // The summary on a terminal shows the same breakdown.
  const text = formatSummary(s as unknown as Summary);
  assert.match(text, /cpu +[\d.]+ µs\/event, [\d.]+ s CPU/);
  assert.match(text, /\(router [\d.]+, worker-0 [\d.]+, worker-1 [\d.]+, side-pool [\d.]+, other [\d.]+\)/);
});

test('bench --json: the same breakdown, without a side pool when there are no checkpoints', async () => {
  const r = await joinery(['bench', '--events', '100000', '--workers', '1', '--progress', 'off', '--json', '--state-dir', path.join(tmp, 'st2')]);
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson(r.stdout) as { cpu: Cpu };
  if (process.platform !== 'linux') { assert.equal(s.cpu.threads, undefined); return; }
  assert.deepEqual(s.cpu.threads!.map((t) => t.name), ['router', 'worker-0', 'other']);
  assert.deepEqual(finished(r.stderr).cpu, s.cpu);
});
