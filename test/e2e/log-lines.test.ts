// Without a terminal, stderr is a log stream: every line one JSON object from the logger (level,
// msg, and the code of an error or warning), the summary one `finished` record. Real CLI, stderr a pipe.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-loglines-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Rec { level: string; msg: string; code?: string; [k: string]: unknown }

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '', stderr = '';
    c.stdout!.on('data', (d: Buffer) => { stdout += d; });
    c.stderr!.on('data', (d: Buffer) => { stderr += d; });
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every stderr line parsed as a log record; fails naming the first line that is not one. */
function records(stderr: string): Rec[] {
  const lines = stderr.split('\n');
  assert.equal(lines.pop(), '', 'stderr ends with a newline');
  return lines.map((l) => {
    let r: Rec;
    try { r = JSON.parse(l); } catch { assert.fail(`not a JSON log line: ${JSON.stringify(l)}\nstderr:\n${stderr}`); }
    assert.ok(['error', 'warn', 'info', 'debug'].includes(r.level) && typeof r.msg === 'string' && typeof r.time === 'string', `a log record: ${l}`);
    return r;
  });
}

test('a failed checkpoint is a JSON warning with code E_CHECKPOINT; the summary is one finished record', async () => {
  const args = ['run', '--left', 'gen:', '--right', 'gen:', '--events', '300000', '--workers', '1', '--state-dir', path.join(tmp, 'st'),
    '--out', `file:${path.join(tmp, 'out.ndjson')}`, '--checkpoint-dir', path.join(tmp, 'ck'), '--checkpoint-interval', '100ms'];
  const a = await run(args, { ...process.env, JOINERY_INJECT_FAULTS: 'checkpoint-write:1' });
  assert.equal(a.code, 0, a.stderr);
  const recs = records(a.stderr);
  const failed = recs.filter((r) => /checkpoint \d+ failed .*ENOSPC/.test(r.msg));
  assert.equal(failed.length, 1, a.stderr);
  assert.equal(failed[0].code, 'E_CHECKPOINT');
  assert.equal(failed[0].level, 'warn');
  const finished = recs.filter((r) => r.msg === 'finished');
  assert.equal(finished.length, 1, `one summary: ${a.stderr}`);
  assert.equal((finished[0].checkpoints as { failed: number }).failed, 1);
  assert.equal(a.stdout, '', 'nothing on stdout without --json');

  // The restart resumes: its lines too are records.
  const b = await run(args);
  assert.equal(b.code, 0, b.stderr);
  const again = records(b.stderr);
  assert.ok(again.some((r) => /^joinery: resuming from checkpoint \d+/.test(r.msg)), b.stderr);
  assert.equal(again.filter((r) => r.msg === 'finished').length, 1);
});

test('demo without a terminal: its lines and the summary are records, --json keeps the summary on stdout', async () => {
  const r = await run(['demo', '--events', '20000', '--workers', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const recs = records(r.stderr);
  assert.match(recs[0].msg, /^joinery demo: 20,000 generated/);
  assert.ok(recs.some((x) => /^joinery demo: expect about \d+ s/.test(x.msg)), r.stderr);
  const finished = recs.filter((x) => x.msg === 'finished');
  assert.equal(finished.length, 1);
  const stdout = JSON.parse(r.stdout.trim()) as { pairs: number };
  assert.equal(finished[0].pairs, stdout.pairs);
});

test('a malformed input record and an unknown command are records with their codes', async () => {
  const l = path.join(tmp, 'l.ndjson'), rr = path.join(tmp, 'r.ndjson');
  fs.writeFileSync(l, '{"profileId":1,"titleId":2,"ts":1000,"eventId":"a"}\nnot json\n');
  fs.writeFileSync(rr, '{"profileId":1,"titleId":2,"ts":2000,"eventId":"b"}\n');
  const r = await run(['run', '--left', `file:${l}`, '--right', `file:${rr}`, '--format', 'json', '--state', 'memory', '--out', 'null']);
  assert.equal(r.code, 0, r.stderr);
  const bad = records(r.stderr).filter((x) => /malformed left record/.test(x.msg));
  assert.equal(bad.length, 1, r.stderr);
  assert.equal(bad[0].code, 'E_INPUT');

  const u = await run(['nope']);
  assert.equal(u.code, 2);
  const [only, ...rest] = records(u.stderr);
  assert.deepEqual(rest, []);
  assert.equal(only.code, 'E_USAGE');
  assert.match(only.msg, /unknown command "nope"/);
});
