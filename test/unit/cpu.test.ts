import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CpuMeter, currentTid, formatCpu } from '../../src/metrics/cpu.js';

const linux = process.platform === 'linux';

/** A thread that reports its tid, spins for `ms` of its own CPU when told, and exits when told. */
function spinner(): { worker: Worker; tid: Promise<number | null>; spin: (busyMs: number) => Promise<void> } {
  const src = `
    const { parentPort } = require('node:worker_threads');
    const fs = require('node:fs');
    let tid = null; try { tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop()); } catch {}
    parentPort.postMessage({ tid });
    parentPort.on('message', (m) => {
      if (m === 'exit') { parentPort.close(); return; }
      // Spin until this thread has had m ms of CPU (a crowded machine stretches the wall time).
      const cpuMs = () => { try { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e6; } catch { return Date.now(); } };
      let x = 0;
      const until = cpuMs() + m; while (cpuMs() < until) for (let i = 0; i < 10000; i++) x += Math.sqrt(x + i);
      parentPort.postMessage({ spun: x });
    });`;
  const worker = new Worker(src, { eval: true });
  const queue: Array<(m: { tid?: number | null }) => void> = [];
  worker.on('message', (m) => queue.shift()?.(m));
  const next = () => new Promise<{ tid?: number | null }>((r) => queue.push(r));
  const tid = next().then((m) => m.tid ?? null);
  return { worker, tid, spin: async (ms) => { const p = next(); worker.postMessage(ms); await p; } };
}

test('CpuMeter: a busy thread\'s CPU is attributed to it, and the parts add up to the process total', async () => {
  const s = spinner();
  const tid = await s.tid;
  const meter = new CpuMeter();
  meter.add('busy', tid);
  meter.start();
  await s.spin(400);
  const sum = meter.summary(1000);
  s.worker.postMessage('exit');
  await new Promise((r) => s.worker.once('exit', r));
  assert.ok(sum.totalMs >= 400, `process CPU ${sum.totalMs} ms for a 400 ms spin`);
  assert.ok(Math.abs(sum.usPerEvent - (sum.totalMs * 1000) / 1000) < 1e-6);
  if (!linux) { assert.equal(sum.threads, undefined); return; }
  assert.ok(tid !== null && tid !== currentTid(), 'the worker has a tid of its own');
  const names = sum.threads!.map((t) => t.name);
  assert.deepEqual(names, ['router', 'busy', 'other']);
  const busy = sum.threads!.find((t) => t.name === 'busy')!, router = sum.threads!.find((t) => t.name === 'router')!;
  // The spin ran on the worker: its 400 ms are its own, not main's.
  assert.ok(busy.ms >= 400, `busy thread ${busy.ms} ms`);
  assert.ok(router.ms < busy.ms / 2, `main ${router.ms} ms while the worker spun ${busy.ms} ms`);
  const parts = sum.threads!.reduce((a, t) => a + t.ms, 0);
  assert.ok(Math.abs(parts - sum.totalMs) <= Math.max(20, sum.totalMs * 0.05), `parts ${parts} ms vs total ${sum.totalMs} ms`);
  assert.match(formatCpu(sum), /µs\/event, [\d.]+ s CPU \(router [\d.]+, busy [\d.]+, other [\d.]+\)/);
});

test('CpuMeter: a thread that has exited keeps its last sampled reading', async () => {
  if (!linux) return;
  const s = spinner();
  const tid = await s.tid;
  const meter = new CpuMeter();
  meter.add('gone', tid);
  meter.start();
  await s.spin(200);
  meter.sample();
  s.worker.postMessage('exit');
  await new Promise((r) => s.worker.once('exit', r));
  const gone = meter.summary(1).threads!.find((t) => t.name === 'gone')!;
  assert.ok(gone.ms >= 200, `exited thread kept ${gone.ms} ms`);
});
