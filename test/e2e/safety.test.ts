// Guards against destroying data by mistake, through the real CLI: outputs that are inputs (also
// through symlinks and hard links), two processes on one directory (and kill -9 of the holder),
// a file read in the wrong format, and dead letters that must keep their original bytes.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, joinery, lastJson } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-safety-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const imp = (id: string, ts: number, p = 1, t = 2) => JSON.stringify({ eventId: id, profileId: p, titleId: t, ts });
const play = (id: string, ts: number, p = 1, t = 2) => JSON.stringify({ eventId: id, profileId: p, titleId: t, ts, durationMs: 5 });
const L = path.join(tmp, 'left.ndjson'), R = path.join(tmp, 'right.ndjson');
fs.writeFileSync(L, [imp('i1', 1000), imp('i2', 2000)].join('\n') + '\n');
fs.writeFileSync(R, [play('p1', 1500), play('p2', 2500)].join('\n') + '\n');
const inputBytes = fs.readFileSync(L);
const base = ['run', '--left', `file:${L}`, '--right', `file:${R}`, '--state-dir', path.join(tmp, 'state')];

describe('outputs never resolve to an input, to each other, or into a managed directory', () => {
  const cases: Array<[string, () => string[]]> = [
    ['--out is the left input', () => ['--out', `file:${L}`]],
    ['--out is the left input spelled otherwise', () => ['--out', `file:${path.join(tmp, 'x', '..', 'left.ndjson')}`]],
    ['--out is a symlink to the left input', () => { const s = path.join(tmp, 'link.ndjson'); fs.rmSync(s, { force: true }); fs.symlinkSync(L, s); return ['--out', `file:${s}`]; }],
    ['--dead-letter is a hard link of the left input', () => { const h = path.join(tmp, 'hard.ndjson'); fs.rmSync(h, { force: true }); fs.linkSync(L, h); return ['--out', 'null', '--dead-letter', `file:${h}`]; }],
    ['--late-out is the right input through a symlinked directory', () => { const d = path.join(tmp, 'dirlink'); fs.rmSync(d, { force: true }); fs.symlinkSync(tmp, d); return ['--out', 'null', '--late-out', `file:${path.join(d, 'right.ndjson')}`]; }],
  ];
  for (const [name, args] of cases) {
    test(`${name}: refused with E_USAGE (exit 2), the input untouched`, async () => {
      const r = await joinery([...base, ...args()]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /E_USAGE/);
      assert.match(r.stderr, /is the --(left|right) input .*would destroy the input/);
      assert.deepEqual(fs.readFileSync(L), inputBytes, 'the left input keeps its bytes');
      assert.equal(fs.readFileSync(R, 'utf8').split('\n').length, 3, 'the right input keeps its lines');
    });
  }

  test('two outputs that are one file (through a symlink) are refused', async () => {
    const o = path.join(tmp, 'o.ndjson'), s = path.join(tmp, 'o-link.ndjson');
    fs.writeFileSync(o, 'earlier output\n');
    fs.rmSync(s, { force: true });
    fs.symlinkSync(o, s);
    const r = await joinery([...base, '--out', `file:${o}`, '--dead-letter', `file:${s}`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--dead-letter .* and --out .* are the same file/);
    assert.equal(fs.readFileSync(o, 'utf8'), 'earlier output\n');
  });

  test('an output inside --checkpoint-dir or --state-dir is refused', async () => {
    const ck = path.join(tmp, 'ck-paths');
    const r = await joinery([...base, '--checkpoint-dir', ck, '--out', `file:${path.join(ck, 'out.ndjson')}`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /lies inside --checkpoint-dir/);
    const r2 = await joinery([...base, '--out', `file:${path.join(tmp, 'state', 'worker-0', 'out.ndjson')}`]);
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /lies inside --state-dir/);
  });
});

/** A joinery run that goes on until killed (the live generator, paced), with its stderr so far. */
function startForever(args: string[]): { child: ChildProcess; stderr: () => string; closed: Promise<number | null> } {
  const out = args.includes('--out') ? [] : ['--out', 'null'];
  const child = spawn(process.execPath, [BIN, 'run', '--left', 'gen:', '--right', 'gen:', '--rate', '500', ...out, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stderr: () => err, closed };
}

async function until(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('one process per state and checkpoint directory', () => {
  test('a second instance on the same --state-dir or --checkpoint-dir is refused naming the holder; after kill -9 of the holder a start succeeds', async () => {
    const state = path.join(tmp, 'lock-state'), ck = path.join(tmp, 'lock-ck');
    const a = startForever(['--state-dir', state, '--checkpoint-dir', ck, '--checkpoint-interval', '300ms']);
    try {
      await until('the first instance to run', () => /sources opened/.test(a.stderr()));
      const pid = String(a.child.pid);
      const sameState = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', 'null', '--state-dir', state, '--checkpoint-dir', path.join(tmp, 'lock-ck-other')]);
      assert.equal(sameState.code, 3, sameState.stderr);
      assert.match(sameState.stderr, new RegExp(`--state-dir .*lock-state is in use by another joinery process \\(pid ${pid}\\b.*E_LOCKED`));
      const sameCk = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', 'null', '--state-dir', path.join(tmp, 'lock-state-other'), '--checkpoint-dir', ck]);
      assert.equal(sameCk.code, 3, sameCk.stderr);
      assert.match(sameCk.stderr, new RegExp(`--checkpoint-dir .*lock-ck is in use by another joinery process \\(pid ${pid}\\b`));
      assert.ok(fs.readdirSync(path.join(ck, 'manifests')).length > 0 || /sources opened/.test(a.stderr()), 'the holder kept running');
      assert.equal(a.child.exitCode, null, 'the holder is still running');
    } finally {
      a.child.kill('SIGKILL');
    }
    await a.closed;
    assert.ok(fs.existsSync(path.join(state, '.joinery.lock')), 'kill -9 leaves the lock file behind');
    // The restart keeps the holder's generator options: whether the holder got to take a
    // checkpoint before kill -9 is a race, and a checkpointed gen run refuses other options.
    // It is stopped once it has taken a checkpoint of its own, so it is past start-up (a signal
    // before the engine is up ends the process as Node's default does).
    const manifests = () => fs.existsSync(path.join(ck, 'manifests')) ? fs.readdirSync(path.join(ck, 'manifests')) : [];
    const before = new Set(manifests());
    const b = startForever(['--state-dir', state, '--checkpoint-dir', ck, '--checkpoint-interval', '300ms']);
    try {
      await until('the restart to take a checkpoint', () => manifests().some((m) => !before.has(m)));
    } finally {
      b.child.kill('SIGTERM');
    }
    assert.equal(await b.closed, 0, b.stderr());
    assert.ok(!fs.existsSync(path.join(state, '.joinery.lock')), 'released at exit');
    assert.ok(!fs.existsSync(path.join(ck, '.joinery.lock')), 'released at exit');
  });

  test('a second run writing the same output file (even through a symlink) is refused naming the holder; after kill -9 the file can be written again', async () => {
    const out = path.join(tmp, 'shared-out.ndjson'), link = path.join(tmp, 'shared-out-link.ndjson');
    fs.writeFileSync(out, '');
    fs.symlinkSync(out, link);
    const a = startForever(['--out', `file:${out}`, '--state-dir', path.join(tmp, 'out-lock-a')]);
    try {
      await until('the first instance to run', () => /sources opened/.test(a.stderr()));
      const pid = String(a.child.pid);
      for (const name of [out, link]) {
        const b = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', `file:${name}`, '--state-dir', path.join(tmp, 'out-lock-b')]);
        assert.equal(b.code, 3, b.stderr);
        assert.match(b.stderr, new RegExp(`--out file:.*shared-out(-link)?\\.ndjson is in use by another joinery process \\(pid ${pid}\\b.*E_LOCKED`));
      }
      const other = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', `file:${path.join(tmp, 'other-out.ndjson')}`, '--state-dir', path.join(tmp, 'out-lock-b')]);
      assert.equal(other.code, 0, other.stderr);
      assert.equal(a.child.exitCode, null, 'the holder is still running');
    } finally {
      a.child.kill('SIGKILL');
    }
    await a.closed;
    assert.ok(fs.existsSync(path.join(tmp, '.shared-out.ndjson.joinery.lock')), 'kill -9 leaves the lock file behind');
    const c = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', `file:${link}`, '--state-dir', path.join(tmp, 'out-lock-b'), '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(!fs.existsSync(path.join(tmp, '.shared-out.ndjson.joinery.lock')), 'released at exit');
  });

  test('a lock whose pid is alive but started at another time (a reused pid) is taken over', async () => {
    const state = path.join(tmp, 'reused-state');
    fs.mkdirSync(state, { recursive: true });
    // our own pid is certainly alive; its recorded start time is not ours
    fs.writeFileSync(path.join(state, '.joinery.lock'), JSON.stringify({ pid: process.pid, startTicks: '1', bootId: null, host: os.hostname(), since: '2020-01-01T00:00:00Z', command: 'run' }));
    const r = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', 'null', '--state-dir', state]);
    assert.equal(r.code, 0, r.stderr);
    fs.writeFileSync(path.join(state, '.joinery.lock'), JSON.stringify({ pid: process.pid, startTicks: null, bootId: null, host: os.hostname(), since: '2020-01-01T00:00:00Z', command: 'run' }));
    const r2 = await joinery(['run', '--left', 'gen:', '--right', 'gen:', '--events', '2000', '--out', 'null', '--state-dir', state]);
    assert.equal(r2.code, 3, 'a live pid without a start time to compare holds the lock');
    assert.match(r2.stderr, new RegExp(`pid ${process.pid}\\b`));
  });

  test('three instances started at once over a stale lock (its pid is dead): exactly one runs, the others are refused', async () => {
    const state = path.join(tmp, 'race-state');
    fs.mkdirSync(state, { recursive: true });
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('close', r));
    fs.writeFileSync(path.join(state, '.joinery.lock'), JSON.stringify({ pid: dead.pid, startTicks: '1', bootId: null, host: os.hostname(), since: '2020-01-01T00:00:00Z', command: 'run' }));
    const runs = [0, 1, 2].map(() => startForever(['--state-dir', state]));
    try {
      const outcome = await Promise.all(runs.map(async (r) => {
        await until('each instance to run or be refused', () => /sources opened/.test(r.stderr()) || r.child.exitCode !== null);
        return r.child.exitCode === null ? 'running' : r.child.exitCode;
      }));
      assert.deepEqual([...outcome].sort(), [3, 3, 'running'].sort(), runs.map((r) => r.stderr()).join('\n'));
      const holder = runs[outcome.indexOf('running')].child.pid;
      for (const r of runs.filter((_, i) => outcome[i] !== 'running')) assert.match(r.stderr(), new RegExp(`in use by another joinery process \\(pid ${holder}\\b`));
    } finally {
      for (const r of runs) r.child.kill('SIGKILL');
    }
    await Promise.all(runs.map((r) => r.closed));
  });

  test('two group members under one --member name on one --checkpoint-dir: the second is refused before it joins the group', async () => {
    const ck = path.join(tmp, 'members-ck');
    // No broker is needed: the member directory is locked before Kafka is contacted (the first one
    // keeps retrying an address where nothing listens meanwhile).
    const member = (state: string) => ['run', '--left', 'kafka:impressions', '--right', 'kafka:plays', '--brokers', '127.0.0.1:9', '--checkpoint-dir', ck,
      '--member', 'm1', '--out', 'null', '--state-dir', path.join(tmp, state), '--connect-timeout', '60s'];
    const a = spawn(process.execPath, [BIN, ...member('m-state-a')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let errA = '';
    a.stderr!.on('data', (d: Buffer) => { errA += d; });
    const closedA = new Promise((r) => a.on('close', r));
    try {
      await until('the first member to lock its directory', () => fs.existsSync(path.join(ck, 'members', 'm1', '.joinery.lock')));
      const b = await joinery(member('m-state-b'));
      assert.equal(b.code, 3, b.stderr);
      assert.match(b.stderr, new RegExp(`--checkpoint-dir .*members/m1 is in use by another joinery process \\(pid ${a.pid}\\b`));
      assert.equal(a.exitCode, null, `the first member is still running: ${errA}`);
    } finally {
      a.kill('SIGKILL');
    }
    await closedA;
  });
});

describe('the input format is sniffed before any work', () => {
  test('NDJSON read as --format flatbuffers, and FlatBuffers read as NDJSON: E_INPUT naming the file and the format it looks like', async () => {
    const r = await joinery([...base, '--format', 'flatbuffers', '--out', 'null']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /left input .*left\.ndjson does not look like size-prefixed FlatBuffers \(--format flatbuffers\): it looks like NDJSON; use --format json/);
    const fl = path.join(tmp, 'fl.bin'), fr = path.join(tmp, 'fr.bin');
    const g = await joinery(['gen', '--events', '500', '--format', 'flatbuffers', '--left-out', fl, '--right-out', fr]);
    assert.equal(g.code, 0, g.stderr);
    const r2 = await joinery(['run', '--left', `file:${fl}`, '--right', `file:${fr}`, '--state-dir', path.join(tmp, 'state'), '--out', 'null']);
    assert.equal(r2.code, 3, r2.stderr);
    assert.match(r2.stderr, /left input .*fl\.bin does not look like NDJSON \(--format json\): it looks like size-prefixed FlatBuffers; use --format flatbuffers/);
    const ok = await joinery(['run', '--left', `file:${fl}`, '--right', `file:${fr}`, '--format', 'flatbuffers', '--state-dir', path.join(tmp, 'state'), '--out', 'null', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(lastJson(ok.stdout).deadLettered, 0);
  });
});

describe('dead letters keep the original bytes', () => {
  test('a line that is not UTF-8 is kept as base64 (encoding "base64"); a UTF-8 one as text', async () => {
    const bad = Buffer.concat([Buffer.from([0xff, 0xfe, 0x7b]), Buffer.from('"x":1, latin-1 caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
    const utf8Bad = 'not json: café ☕';
    const l = path.join(tmp, 'bytes.ndjson');
    fs.writeFileSync(l, Buffer.concat([Buffer.from(imp('i1', 1000) + '\n'), bad, Buffer.from(utf8Bad + '\n'), Buffer.from(imp('i2', 1100) + '\n')]));
    const dead = path.join(tmp, 'dead-bytes.ndjson');
    const r = await joinery(['run', '--left', `file:${l}`, '--right', `file:${R}`, '--state-dir', path.join(tmp, 'state'), '--out', 'null', '--dead-letter', `file:${dead}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const d = fs.readFileSync(dead, 'utf8').trim().split('\n').map((x) => JSON.parse(x));
    assert.deepEqual(d.map((x) => x.position), [2, 3]);
    assert.equal(d[0].encoding, 'base64');
    assert.deepEqual(Buffer.from(d[0].record, 'base64'), bad.subarray(0, bad.length - 1), 'the exact bytes of the line (without its newline)');
    assert.equal(d[1].encoding, 'utf8');
    assert.equal(d[1].record, utf8Bad);
  });
});

test('bench refuses a non-empty --checkpoint-dir (a job\'s checkpoints, any file) and deletes nothing; an empty one is used', async () => {
  const ck = path.join(tmp, 'ck-held');
  const first = await joinery([...base, '--out', 'null', '--checkpoint-dir', ck]);
  assert.equal(first.code, 0, first.stderr);
  const kept = fs.readdirSync(ck).sort();
  assert.ok(kept.some((n) => n.startsWith('manifest') || n.includes('manifest')), `a run left its checkpoint: ${kept.join(' ')}`);
  fs.writeFileSync(path.join(ck, 'notes.txt'), 'mine');
  const r = await joinery(['bench', '--events', '20000', '--workers', '1', '--progress', 'off', '--checkpoint-dir', ck, '--state-dir', path.join(tmp, 'bench-st')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /E_USAGE/);
  assert.match(r.stderr, /--checkpoint-dir .*ck-held is not empty \(\d+ entries/);
  assert.deepEqual(fs.readdirSync(ck).sort().filter((n) => n !== 'notes.txt'), kept, 'every checkpoint file is still there');
  assert.equal(fs.readFileSync(path.join(ck, 'notes.txt'), 'utf8'), 'mine');
  const fresh = path.join(tmp, 'ck-fresh');
  const ok = await joinery(['bench', '--events', '20000', '--workers', '1', '--progress', 'off', '--checkpoint-dir', fresh, '--state-dir', path.join(tmp, 'bench-st')]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('bench --events 0 (no limit) with the replay, which is generated into memory first, is refused rather than generating forever', async () => {
  const r = await joinery(['bench', '--events', '0', '--progress', 'off']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /E_USAGE/);
  assert.match(r.stderr, /--source replay needs --events N > 0 .*use --source gen/);
});
