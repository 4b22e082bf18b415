// --router-priority: the main thread's nice value against the workers' (src/engine/priority.ts),
// read from /proc while a real run is busy; and the auto rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { routerNiceSteps } from '../../src/engine/priority.js';
import { BIN } from './cli.js';

/** A thread's nice value (field 19 of /proc/PID/task/TID/stat). */
function niceOf(pid: number, tid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Runs a paced generator run; at its first progress record, the nice values of its main thread and of all its threads; then stops it. */
function nicesWhileRunning(extra: string[]): Promise<{ main: number; all: number[]; code: number | null }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-priority-'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', '--left', 'gen:', '--right', 'gen:', '--rate', '20000', '--events', '2000000', '--workers', '1',
      '--state-dir', path.join(dir, 'st'), '--out', 'null', '--progress', 'on', '--log-level', 'info', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '', seen: { main: number; all: number[] } | null = null;
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      if (seen === null && /"progress":true/.test(stderr)) {
        const pid = child.pid!;
        seen = { main: niceOf(pid, pid), all: fs.readdirSync(`/proc/${pid}/task`).map((t) => niceOf(pid, Number(t))) };
        child.kill('SIGTERM');
      }
    });
    child.on('close', (code) => {
      clearTimeout(kill);
      fs.rmSync(dir, { recursive: true, force: true });
      if (seen === null) reject(new Error(`no progress record:\n${stderr}`));
      else resolve({ ...seen, code });
    });
  });
}

test('auto lowers the main thread only with fewer workers than cores, and only on Linux', () => {
  assert.equal(routerNiceSteps('auto', 1, 2, 'linux'), 5);
  assert.equal(routerNiceSteps('auto', 2, 2, 'linux'), 0);
  assert.equal(routerNiceSteps('auto', 4, 2, 'linux'), 0);
  assert.equal(routerNiceSteps('lower', 4, 2, 'linux'), 5);
  assert.equal(routerNiceSteps('normal', 1, 8, 'linux'), 0);
  assert.equal(routerNiceSteps('lower', 1, 8, 'darwin'), 0);
});

test('--router-priority lower: the main thread runs 5 nice steps below its workers; normal: level with them', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
  const base = os.getPriority(process.pid);
  const lower = await nicesWhileRunning(['--router-priority', 'lower']);
  assert.equal(lower.code, 0);
  assert.equal(lower.main, Math.min(19, base + 5));
  assert.ok(lower.all.filter((n) => n === base).length >= 1, `threads at the process's own priority (the worker among them): ${lower.all}`);
  const normal = await nicesWhileRunning(['--router-priority', 'normal']);
  assert.equal(normal.code, 0);
  assert.equal(normal.main, base);
});
