// Ending a run through the real CLI: a reader that goes away (`| head`), a second stop signal
// while workers are busy inside LMDB transactions, and a graceful stop that cannot drain in time
// (a hot key). Each must end the process promptly with its documented exit code; a hang here is
// killed with SIGKILL after a deadline and fails the test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, joinery } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-exit-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Ended { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; atMs: number }
interface Child { child: ChildProcess; ended: Promise<Ended>; stderr: () => string; waitFor: (re: RegExp, timeoutMs?: number) => Promise<void> }

/** Spawn the CLI; a child still alive after `deadlineMs` is killed (SIGKILL) so a hang fails instead of blocking the suite. */
function run(args: string[], opts: { deadlineMs?: number; readStdout?: boolean; env?: NodeJS.ProcessEnv } = {}): Child {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let stdout = '', stderr = '';
  if (opts.readStdout !== false) child.stdout!.on('data', (d: Buffer) => { stdout += d; });
  child.stderr!.on('data', (d: Buffer) => { stderr += d; });
  const kill = setTimeout(() => child.kill('SIGKILL'), opts.deadlineMs ?? 60_000);
  const ended = new Promise<Ended>((resolve) => child.on('close', (code, signal) => { clearTimeout(kill); resolve({ code, signal, stdout, stderr, atMs: Date.now() }); }));
  const waitFor = async (re: RegExp, timeoutMs = 30_000) => {
    const t0 = Date.now();
    while (!re.test(stderr)) {
      if (Date.now() - t0 > timeoutMs || child.exitCode !== null) throw new Error(`no ${re} on stderr:\n${stderr}`);
      await sleep(20);
    }
  };
  return { child, ended, stderr: () => stderr, waitFor };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Every event on one key, all within the window: each play joins every impression before it, so
// the workers are busy for seconds after the router has put everything into the rings.
const HOT_L = path.join(tmp, 'hot-impressions.ndjson'), HOT_R = path.join(tmp, 'hot-plays.ndjson');
const HOT_N = 4000;
const T0 = 1_767_225_600_000;
function writeHotKey(): void {
  const line = (id: string, ts: number) => `{"eventId":"${id}","profileId":1,"titleId":1,"ts":${ts}}\n`;
  fs.writeFileSync(HOT_L, Array.from({ length: HOT_N }, (_, i) => line(`i-${i}`, T0 + i * 10)).join(''));
  fs.writeFileSync(HOT_R, Array.from({ length: HOT_N }, (_, i) => line(`p-${i}`, T0 + HOT_N * 10 + i * 10)).join(''));
}
const hotArgs = (name: string, extra: string[] = []) => ['run', '--left', `file:${HOT_L}`, '--right', `file:${HOT_R}`, '--upper', '3h',
  '--out', 'null', '--state-dir', path.join(tmp, `state-${name}`), '--checkpoint-dir', path.join(tmp, `ckpt-${name}`), '--checkpoint-interval', '200ms', ...extra];

describe('a closed stdout ends the run quietly (exit 141)', () => {
  const L = path.join(tmp, 'impressions.ndjson'), R = path.join(tmp, 'plays.ndjson');
  before(async () => {
    const g = await joinery(['gen', '--events', '60000', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
  });

  test('joined output to stdout, reader gone after the first line', async () => {
    const c = run(['run', '--left', `file:${L}`, '--right', `file:${R}`, '--state-dir', path.join(tmp, 'state-pipe')], { deadlineMs: 30_000, readStdout: false });
    let closedAt = 0;
    c.child.stdout!.once('data', () => { closedAt = Date.now(); c.child.stdout!.destroy(); });
    const r = await c.ended;
    assert.equal(r.signal, null, `killed (hung): ${r.stderr.slice(-2000)}`);
    assert.equal(r.code, 141, r.stderr.slice(-2000));
    assert.ok(closedAt > 0, 'some output came before the reader left');
    assert.ok(r.atMs - closedAt < 5_000, `ended ${r.atMs - closedAt}ms after the reader left`);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|at .*\.js:\d+/, 'no stack trace, no raw EPIPE');
  });

  test('the --json summary to a closed stdout', async () => {
    const c = run(['run', '--left', `file:${L}`, '--right', `file:${R}`, '--out', 'null', '--json', '--state', 'memory'], { deadlineMs: 30_000, readStdout: false });
    c.child.stdout!.destroy();
    const r = await c.ended;
    assert.equal(r.signal, null, 'killed (hung)');
    assert.equal(r.code, 141, r.stderr.slice(-2000));
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|at .*\.js:\d+/);
  });
});

describe('stop signals', () => {
  before(writeHotKey);

  /** Two signals 1 s apart once the run is well under way: the process must end within 2 s of the second, with 130. */
  async function secondSignal(c: Child, sig: NodeJS.Signals): Promise<void> {
    await c.waitFor(/\[2s\] in /); // the progress line: the workers have been busy for 2 s
    c.child.kill(sig);
    await sleep(1_000);
    const second = Date.now();
    c.child.kill(sig);
    const r = await c.ended;
    assert.equal(r.signal, null, `killed (hung after the second ${sig}): ${r.stderr.slice(-2000)}`);
    assert.equal(r.code, 130, r.stderr.slice(-2000));
    assert.ok(r.atMs - second < 2_000, `ended ${r.atMs - second}ms after the second ${sig}`);
    assert.match(r.stderr, new RegExp(`second ${sig}: exiting now`));
  }
  // The generator with one member and one title: a single hot key, unbounded input, a 3h window.
  const hotGen = (name: string) => ['run', '--left', 'gen:', '--right', 'gen:', '--gen-profiles', '1', '--gen-titles', '1', '--upper', '3h',
    '--out', 'null', '--state-dir', path.join(tmp, `state-${name}`), '--checkpoint-dir', path.join(tmp, `ckpt-${name}`), '--checkpoint-interval', '1s', '--progress', 'on'];

  // The first signal's stop must still be under way: the workers are made to ignore its cut (injected), so they stay busy.
  const busyStop = { ...process.env, JOINERY_INJECT_FAULTS: 'stop-stall:1' };
  test('a second SIGTERM during a checkpointed hot-key generator run ends the process within 2 s (130)', async () => {
    await secondSignal(run(hotGen('sig2-term'), { deadlineMs: 25_000, env: busyStop }), 'SIGTERM');
  });

  test('a second SIGINT likewise', async () => {
    await secondSignal(run(hotGen('sig2-int'), { deadlineMs: 25_000, env: busyStop }), 'SIGINT');
  });

  test('bench stopped by SIGINT reports what it measured and takes its stop checkpoint (exit 0)', async () => {
    const ck = path.join(tmp, 'ckpt-bench-sigint');
    const c = run(['bench', '--source', 'gen', '--events', '0', '--rate', '5000', '--checkpoint-dir', ck, '--progress', 'on', '--json'], { deadlineMs: 30_000 });
    await c.waitFor(/\[1s\] in /);
    c.child.kill('SIGINT');
    const r = await c.ended;
    assert.equal(r.signal, null, r.stderr.slice(-2000));
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as { stopped: boolean; eventsIn: [number, number]; checkpoints: { completed: number } };
    assert.equal(s.stopped, true);
    assert.ok(s.eventsIn[0] + s.eventsIn[1] > 0);
    assert.ok(s.checkpoints.completed >= 1);
    assert.ok(fs.readdirSync(path.join(ck, 'manifests')).length >= 1);
    // nothing resumes a benchmark: its stop lines must not promise a next start
    assert.match(r.stderr, /SIGINT: stopping .*a benchmark is never resumed/);
    assert.doesNotMatch(r.stderr, /next start/);
  });

  test('a graceful stop is bounded by --stop-timeout (E_STOP_TIMEOUT, exit 5) and the next start completes the job', async () => {
    // A stop takes about as long as the current record and the checkpoint's file writes: workers
    // made to ignore the cut (injected) stand for one that cannot finish.
    // The progress line starts once the workers are up; the router has put all input into the rings by then.
    // slow-drain keeps the workers joining when SIGTERM comes: the hot key alone (16M pairs) is
    // joined in about 1.5 s now, and a run already done has no stop left to overrun.
    const c = run(hotArgs('stop-timeout', ['--stop-timeout', '500ms', '--progress', 'on']), { deadlineMs: 30_000, env: { ...process.env, JOINERY_INJECT_FAULTS: 'stop-stall:1,slow-drain:20' } });
    await c.waitFor(/\[1s\] in /);
    const sent = Date.now();
    c.child.kill('SIGTERM');
    const r = await c.ended;
    assert.equal(r.signal, null, `killed (hung): ${r.stderr.slice(-2000)}`);
    assert.equal(r.code, 5, r.stderr.slice(-2000));
    assert.ok(r.atMs - sent < 500 + 2_500, `ended ${r.atMs - sent}ms after SIGTERM`);
    assert.match(r.stderr, /"code":"E_STOP_TIMEOUT"/);
    assert.match(r.stderr, /did not finish within --stop-timeout 500ms/);
    assert.match(r.stderr, /next start (resumes from checkpoint \d+|begins from the start of the input)/);

    const again = await joinery([...hotArgs('stop-timeout'), '--json'], { timeoutMs: 120_000 });
    assert.equal(again.code, 0, again.stderr.slice(-2000));
    assert.match(again.stdout, /"pairs":\d+/);
  });
});
