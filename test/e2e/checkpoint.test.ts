// Checkpoints and recovery, end to end through the real CLI: kill -9 at random moments, graceful
// stops and restores onto other worker counts, corrupt checkpoints, failing checkpoint writes, a
// crashing worker. The final output must equal an independent batch join exactly: nothing
// missing, nothing duplicated.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkHeader, forEachChange } from '../../src/checkpoint/delta.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import { BIN, joinery, lastJson } from './cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from './reference-join.js';

const outputLines = (f: string): string[] => readNdjson(f).map((o) => canonical(o as never));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-ckpt-'));
const L = path.join(tmp, 'impressions.ndjson'), R = path.join(tmp, 'plays.ndjson');
const GEN = ['--events', '200000', '--seed', '11', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02', '--gen-orphan-plays', '0.05'];
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--join', 'full'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000, kind: 'full' as const };
let expected: string[];

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function runArgs(name: string, workers: number, extra: string[] = []): string[] {
  return ['run', '--left', `file:${L}`, '--right', `file:${R}`, '--format', 'json', ...JOIN, '--workers', String(workers),
    '--state-dir', path.join(tmp, `state-${name}`), '--out', `file:${path.join(tmp, `out-${name}.ndjson`)}`,
    '--checkpoint-dir', path.join(tmp, `ckpt-${name}`), '--checkpoint-interval', '200ms',
    // Small rings: a barrier waits behind what is queued, so 16 MiB rings made checkpoints take
    // seconds and runs ended after two or three of them, fewer than the tests below need.
    '--ring-size', '256k', '--json', ...extra];
}

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Start the CLI; `act` gets the child once it runs (to kill or signal it). */
function start(args: string[], act?: (child: ReturnType<typeof spawn>, stderrSoFar: () => string) => void, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => { stderr += d; });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    act?.(child, () => stderr);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Send SIGTERM `ms` after a checkpoint newer than the newest one present now is on disk. */
function termAfterNewCheckpoint(name: string, c: ReturnType<typeof spawn>, ms: number): void {
  const newest = () => { try { return manifests(name).pop() ?? ''; } catch { return ''; } };
  const had = newest();
  const t = setInterval(() => { if (newest() > had) { clearInterval(t); setTimeout(() => c.kill('SIGTERM'), ms); } }, 20);
  c.on('close', () => clearInterval(t));
}

const manifests = (name: string) => fs.readdirSync(path.join(tmp, `ckpt-${name}`, 'manifests')).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort();

describe('checkpoints and recovery (files → file)', () => {
  before(async () => {
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
    expected = referenceJoin(readNdjson(L), readNdjson(R), ref);
    assert.ok(expected.length > 20_000);
  });

  test('kill -9 at random moments, five times, then a run to the end: output equals the batch join exactly', async () => {
    const name = 'kill';
    let resumed = 0;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const delay = 700 + Math.floor(Math.random() * 1300);
      delays.push(delay);
      // Even runs: killed at a random time after the start (startup and restore included). Odd
      // runs: at a random time after their first checkpoint is on disk, so that some run resumes
      // however slow a loaded machine makes the startup.
      const newest = () => { try { return manifests(name).pop() ?? ''; } catch { return ''; } };
      const had = newest();
      const r = await start(runArgs(name, 2), (c) => {
        if (i % 2 === 0) { setTimeout(() => c.kill('SIGKILL'), delay); return; }
        const t = setInterval(() => { if (newest() > had) { clearInterval(t); setTimeout(() => c.kill('SIGKILL'), delay - 700); } }, 20);
        c.on('close', () => clearInterval(t));
      });
      if (r.code === 0) break; // finished before the kill: fine, later runs resume at the end
      assert.equal(r.signal, 'SIGKILL', `run ${i} failed rather than being killed: ${r.stderr}`);
      if (/resuming from checkpoint/.test(r.stderr)) resumed++;
    }
    const r = await start(runArgs(name, 2));
    assert.equal(r.code, 0, r.stderr);
    if (/resuming from checkpoint/.test(r.stderr)) resumed++;
    assert.ok(resumed >= 1, `at least one run resumed from a checkpoint (kill delays ${delays.join(', ')} ms)`);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', `kill delays ${delays.join(', ')} ms\n${diff}`);
  });

  for (const kind of ['left', 'inner'] as const) {
    test(`${kind} join, buffer in memory: an inner side's events reach the change files at the barrier (only those still live) or ahead of it; kill -9 three times, then to the end, equals the batch join`, async () => {
      // The first test's join is full: both sides outer, every event logged as it comes. Here the
      // inner sides' events are deferred (src/state/pending-log.ts); with event time ~400× the
      // clock most of them expire before the next barrier and are never written.
      const name = `defer-${kind}`;
      const args = () => runArgs(name, 2).map((a) => (a === 'full' ? kind : a));
      const newest = () => { try { return Number(/\d+/.exec(manifests(name).pop() ?? '')?.[0] ?? 0); } catch { return 0; } };
      let killed = 0;
      for (let i = 0; i < 3; i++) {
        const had = newest();
        const r = await start(args(), (c) => {
          const t = setInterval(() => { if (newest() >= had + 2) { clearInterval(t); setTimeout(() => c.kill('SIGKILL'), Math.floor(Math.random() * 150)); } }, 5);
          c.on('close', () => clearInterval(t));
        });
        if (r.signal === 'SIGKILL') killed++; else { assert.equal(r.code, 0, r.stderr); break; }
      }
      assert.ok(killed >= 1, 'a run was killed');
      const last = await start(args());
      assert.equal(last.code, 0, last.stderr);
      assert.match(last.stderr, /resuming from checkpoint/);
      const want = referenceJoin(readNdjson(L), readNdjson(R), { ...ref, kind });
      const diff = multisetDiff(want, outputLines(path.join(tmp, `out-${name}.ndjson`)));
      assert.equal(diff, '', diff);
    });
  }

  test('an inner join drops whole change files once every event in them expired (unread, not compacted); kill -9 and resume still equal the batch join', async () => {
    // Inner: no side is outer, so a file expires with its events (src/checkpoint/file-expiry.ts). The data's
    // event time runs about 400 times faster than the wall clock, so a file of a 100 ms checkpoint interval
    // outlives its 103 s window plus delay within a few checkpoints.
    const name = 'expire';
    // Every bucket sealed into LMDB (--state-memory 0): the restore refills a store that seals (the
    // first test keeps the default, everything in memory).
    const args = () => runArgs(name, 2, ['--log-level', 'debug', '--state-memory', '0']).map((a) => (a === 'full' ? 'inner' : a === '200ms' ? '100ms' : a));
    const newest = () => { try { return Number(/\d+/.exec(manifests(name).pop() ?? '')?.[0] ?? 0); } catch { return 0; } };
    const dropped = (r: Run) => (r.stderr.match(/left the checkpoint chain: every event in them has expired/g) ?? []).length;
    let drops = 0, killed = 0;
    // kill -9 twice, each once the run has taken three checkpoints (files expire two or three checkpoints
    // after they were written): the restore then reads a chain that files left.
    for (let i = 0; i < 2; i++) {
      const had = newest();
      const r = await start(args(), (c) => {
        const t = setInterval(() => { if (newest() >= had + 3) { clearInterval(t); setTimeout(() => c.kill('SIGKILL'), 30 * i); } }, 5);
        c.on('close', () => clearInterval(t));
      });
      drops += dropped(r);
      if (r.signal === 'SIGKILL') killed++; else assert.equal(r.code, 0, r.stderr);
    }
    assert.ok(killed >= 1, 'a run was killed');
    const last = await start(args());
    assert.equal(last.code, 0, last.stderr);
    drops += dropped(last);
    assert.ok(drops > 0, 'some checkpoint dropped expired files');
    // Dropped change files are recycled (the next ones were written over them: test/contract's
    // checkpoint-storage.test.ts shows the inode is reused), at most one waiting per worker.
    const pool = path.join(tmp, `ckpt-${name}`, 'recycle');
    assert.ok(fs.existsSync(pool), 'dropped change files went to the recycle pool');
    assert.ok(fs.readdirSync(pool).length <= 2, `at most one per worker waits: ${fs.readdirSync(pool)}`);
    const m = JSON.parse(fs.readFileSync(path.join(tmp, `ckpt-${name}`, 'manifests', manifests(name).pop()!), 'utf8')).manifest;
    assert.ok(m.files.every((f: { expireAtMaxMs?: unknown }) => Array.isArray(f.expireAtMaxMs)), 'inner files carry their expiry bound');
    const innerExpected = referenceJoin(readNdjson(L), readNdjson(R), { ...ref, kind: 'inner' });
    const diff = multisetDiff(innerExpected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  test('SIGTERM stops gracefully with a final checkpoint; restores onto 2 then 4 workers from one taken with 3', async () => {
    const name = 'rescale';
    // SIGTERM once the run has taken a checkpoint of its own (its signal handlers are in by then,
    // however slow a loaded machine makes the startup), plus a little.
    const stopAfter = (ms: number) => (c: ReturnType<typeof spawn>) => { termAfterNewCheckpoint(name, c, ms); };
    const a = await start(runArgs(name, 3), stopAfter(300));
    assert.equal(a.code, 0, a.stderr);
    const sa = lastJson(a.stdout) as { stopped?: boolean; workers: number; checkpoints: { completed: number } };
    assert.equal(sa.stopped, true, 'the signal arrived before the end of input');
    assert.equal(sa.workers, 3);
    assert.ok(sa.checkpoints.completed >= 1);
    const b = await start(runArgs(name, 2), stopAfter(200));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from checkpoint \d+/);
    const c = await start(runArgs(name, 4));
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /resuming from checkpoint \d+/);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  test('a torn newest manifest and a corrupt state file are skipped for the previous checkpoint', async () => {
    const name = 'corrupt';
    const a = await start(runArgs(name, 2, ['--checkpoint-retain', '5']));
    assert.equal(a.code, 0, a.stderr);
    const ms = manifests(name);
    assert.ok(ms.length >= 3, `several checkpoints kept (${ms.join(', ')})`);
    const dir = path.join(tmp, `ckpt-${name}`);
    // Newest manifest torn in half.
    const newest = path.join(dir, 'manifests', ms[ms.length - 1]);
    const text = fs.readFileSync(newest, 'utf8');
    fs.writeFileSync(newest, text.slice(0, text.length >> 1));
    // The one before: a state file only it names gets a flipped byte.
    const prev = JSON.parse(fs.readFileSync(path.join(dir, 'manifests', ms[ms.length - 2]), 'utf8')).manifest;
    const older = JSON.parse(fs.readFileSync(path.join(dir, 'manifests', ms[ms.length - 3]), 'utf8')).manifest;
    const onlyPrev = (prev.files as Array<{ name: string; bytes: number }>).find((f) => f.bytes > 16 && !older.files.some((o: { name: string }) => o.name === f.name));
    assert.ok(onlyPrev, 'the second newest checkpoint added a state file');
    const fp = path.join(dir, 'data', onlyPrev!.name);
    const bytes = fs.readFileSync(fp);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(fp, bytes);
    const b = await start(runArgs(name, 2));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /skipped checkpoint \d+: .*torn or corrupt/);
    assert.match(b.stderr, /skipped checkpoint \d+: state file .* fails its checksum/);
    assert.match(b.stderr, /resuming from checkpoint \d+/);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  /** Rewrites every manifest of `name` through `edit`, as an older joinery would have written it (its own SHA-256 recomputed). */
  function rewriteManifests(name: string, edit: (m: Record<string, any>) => void): void {
    const dir = path.join(tmp, `ckpt-${name}`);
    for (const n of manifests(name)) {
      const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifests', n), 'utf8')).manifest;
      edit(m);
      const body = JSON.stringify(m);
      fs.writeFileSync(path.join(dir, 'manifests', n), `{"sha256":"${createHash('sha256').update(body).digest('hex')}","manifest":${body}}\n`);
    }
  }
  /** Restarts `name` on `workers` workers: it must resume from the newest checkpoint, skip none, and its output equal the batch join. Returns the newest manifest after the run. */
  async function resumesFromNewest(name: string, workers: number): Promise<Record<string, any>> {
    const dir = path.join(tmp, `ckpt-${name}`);
    const newest = manifests(name).pop()!;
    const b = await start(runArgs(name, workers, ['--checkpoint-retain', '5']));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, new RegExp(`resuming from checkpoint ${Number(newest.replace(/\D/g, ''))}\\b`));
    assert.doesNotMatch(b.stderr, /skipped checkpoint/);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
    return JSON.parse(fs.readFileSync(path.join(dir, 'manifests', manifests(name).pop()!), 'utf8')).manifest;
  }

  test('a checkpoint written before format 3 (SHA-256 per file) resumes, verified; the next checkpoints add CRC-32 files to its chain', async () => {
    const name = 'oldformat';
    const a = await start(runArgs(name, 2, ['--checkpoint-retain', '5']), (c) => { termAfterNewCheckpoint(name, c, 300); });
    assert.equal(a.code, 0, a.stderr);
    const dir = path.join(tmp, `ckpt-${name}`);
    // Rewrite every manifest as the previous joinery wrote it: format 1 (2 with in-flight files), a
    // `sha256` per file, the manifest's own SHA-256 recomputed.
    let rewritten = 0;
    rewriteManifests(name, (m) => {
      assert.equal(m.format, 4);
      for (const f of [...m.files, ...(m.inflight ?? [])]) {
        assert.match(f.checksum, /^crc32:[0-9a-f]{8}$/);
        delete f.checksum;
        f.sha256 = createHash('sha256').update(fs.readFileSync(path.join(dir, 'data', f.name))).digest('hex');
      }
      m.format = m.inflight ? 2 : 1;
      rewritten++;
    });
    assert.ok(rewritten >= 1);
    // Checkpoints after the resume are format 4; files of the old chain still named keep their SHA-256.
    const last = await resumesFromNewest(name, 2);
    assert.equal(last.format, 4);
    assert.ok((last.files as Array<{ checksum: string }>).every((f) => /^(crc32:[0-9a-f]{8}|sha256:[0-9a-f]{64})$/.test(f.checksum)));
  });

  test('a checkpoint whose change files hold version-1 records (format 3, as the previous joinery wrote) resumes; later checkpoints add version-2 files', async () => {
    const name = 'v1records';
    const a = await start(runArgs(name, 2, ['--checkpoint-retain', '5']), (c) => { termAfterNewCheckpoint(name, c, 300); });
    assert.equal(a.code, 0, a.stderr);
    const dir = path.join(tmp, `ckpt-${name}`);
    // Rewrite every change file as version 1 and every manifest as format 3 naming it (its length,
    // CRC-32), the manifest's own SHA-256 recomputed.
    const rewritten = new Map<string, { bytes: number; checksum: string }>();
    for (const n of fs.readdirSync(path.join(dir, 'data')).filter((f) => /\.(delta|base)$/.test(f))) {
      const p = path.join(dir, 'data', n), buf = fs.readFileSync(p);
      assert.equal(buf[7], 2, `${n} is written in version 2`);
      const w = new ChangeWriter(`${p}.v1`, checkHeader(buf, n), { format: 1, checksum: true });
      forEachChange(buf, n, 0, 65536, (r) => w.copy(r));
      assert.equal(w.close(), true);
      fs.renameSync(`${p}.v1`, p);
      rewritten.set(n, { bytes: w.bytes, checksum: w.digest() });
    }
    assert.ok(rewritten.size >= 2);
    rewriteManifests(name, (m) => {
      m.format = 3;
      for (const f of m.files) Object.assign(f, rewritten.get(f.name));
    });
    const last = await resumesFromNewest(name, 3);
    assert.equal(last.format, 4);
    const versions = new Set((last.files as Array<{ name: string }>).map((f) => fs.readFileSync(path.join(dir, 'data', f.name))[7]));
    assert.ok(versions.has(2), 'the files this run wrote are version 2');
  });

  test('no usable checkpoint: refuses to start (exit 4) and says what to do; so does another join', async () => {
    const name = 'refuse';
    const a = await start(runArgs(name, 2), (c) => { termAfterNewCheckpoint(name, c, 200); });
    assert.equal(a.code, 0, a.stderr);
    const other = await joinery(runArgs(name, 2).map((a) => (a === '90s' ? '60s' : a)));
    assert.equal(other.code, 4, other.stderr);
    assert.match(other.stderr, /different join \(bounds/);
    for (const m of manifests(name)) fs.writeFileSync(path.join(tmp, `ckpt-${name}`, 'manifests', m), '{"sha256":"00');
    const b = await joinery(runArgs(name, 2));
    assert.equal(b.code, 4, b.stderr);
    assert.match(b.stderr, /no usable checkpoint in .*move the directory/);
  });

  test('a restore onto another output file refuses (exit 4) rather than cut a file the checkpoint never measured', async () => {
    const name = 'other-out';
    const a = await start(runArgs(name, 2).map((x) => (x.startsWith('file:') && x.includes('out-') ? 'null' : x)));
    assert.equal(a.code, 0, a.stderr);
    const other = path.join(tmp, `out-${name}.ndjson`);
    fs.writeFileSync(other, 'a file of the user\'s\n');
    const b = await start(runArgs(name, 2));
    assert.equal(b.code, 4, b.stderr);
    assert.match(b.stderr, /checkpoint \d+ was taken with --out null/);
    assert.equal(fs.readFileSync(other, 'utf8'), 'a file of the user\'s\n', 'the file is left alone');
  });

  test('a final checkpoint that fails ends the run with E_FINAL_CHECKPOINT (exit 5) and its summary; the next start finishes: nothing lost or doubled', async () => {
    const name = 'final-fails';
    // every checkpoint after the first fails, the final one included (a slow drain: the run outlasts the first)
    const env = { ...process.env, JOINERY_INJECT_FAULTS: 'checkpoint-write:100000@1,slow-drain:2' };
    const a = await start(runArgs(name, 2), undefined, env);
    assert.equal(a.code, 5, a.stderr);
    assert.match(a.stderr, /the final checkpoint failed \(ENOSPC[^)]*\)[^"]*start again to finish, it resumes from checkpoint 1 and redoes the rest","code":"E_FINAL_CHECKPOINT","exitCode":5/);
    const s = lastJson(a.stdout) as { checkpoints: { completed: number; failed: number; finalFailed?: boolean } };
    assert.equal(s.checkpoints.completed, 1, JSON.stringify(s.checkpoints));
    assert.equal(s.checkpoints.finalFailed, true);
    const b = await start(runArgs(name, 2));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from checkpoint 1 /);
    assert.equal((lastJson(b.stdout) as { checkpoints: { finalFailed?: boolean } }).checkpoints.finalFailed, undefined);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  test('checkpoint writes that fail (disk full) are reported and retried at the next interval; nothing is lost', async () => {
    const name = 'enospc';
    const env = { ...process.env, JOINERY_INJECT_FAULTS: 'checkpoint-write:2,delta-write:2' };
    const a = await start(runArgs(name, 2), undefined, env);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stderr, /checkpoint \d+ failed .*ENOSPC/);
    const s = lastJson(a.stdout) as { checkpoints: { completed: number; failed: number } };
    assert.ok(s.checkpoints.failed >= 1 && s.checkpoints.completed >= 1, JSON.stringify(s.checkpoints));
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  test('after failed checkpoint writes, a kill -9 resumes from the last good one; nothing is lost', async () => {
    const name = 'enospc-kill';
    const env = { ...process.env, JOINERY_INJECT_FAULTS: 'checkpoint-write:2,delta-write:3' };
    const a = await start(runArgs(name, 2), (c, err) => {
      const t = setInterval(() => { if (/checkpoint \d+ failed/.test(err())) { clearInterval(t); setTimeout(() => c.kill('SIGKILL'), 300); } }, 20);
      c.on('close', () => clearInterval(t));
    }, env);
    assert.match(a.stderr, /checkpoint \d+ failed .*ENOSPC/);
    const b = await start(runArgs(name, 2));
    assert.equal(b.code, 0, b.stderr);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  test('gen: source: checkpoints store the generator state; kill -9 resumes from it (or, its file corrupt, regenerates); output equals the batch join', async () => {
    const name = 'gen-state';
    const args = () => runArgs(name, 2).map((a) => (a === `file:${L}` || a === `file:${R}` ? 'gen:' : a)).filter((a) => a !== '--format' && a !== 'json').concat(GEN);
    const newest = () => { try { return Number(/\d+/.exec(manifests(name).pop() ?? '')?.[0] ?? 0); } catch { return 0; } };
    const killAfter = (checkpoints: number) => (c: ReturnType<typeof spawn>) => {
      const had = newest();
      const t = setInterval(() => { if (newest() >= had + checkpoints) { clearInterval(t); c.kill('SIGKILL'); } }, 5);
      c.on('close', () => clearInterval(t));
    };
    const a = await start(args(), killAfter(2));
    assert.equal(a.signal, 'SIGKILL', a.stderr);
    const stateOf = () => {
      const text = fs.readFileSync(path.join(tmp, `ckpt-${name}`, 'manifests', manifests(name).pop()!), 'utf8');
      return (JSON.parse(/"manifest":(.*)\}\n?$/s.exec(text)![1]) as { sources: Array<{ name: string; gen?: unknown; state?: { name: string; bytes: number } }> }).sources.find((x) => x.name === 'gen:')!;
    };
    const st = stateOf();
    assert.ok(st.gen && st.state, `the manifest names the generator state: ${JSON.stringify(st)}`);
    assert.equal(fs.statSync(path.join(tmp, `ckpt-${name}`, 'data', st.state.name)).size, st.state.bytes);
    // Resumed from the state: nothing regenerated, nothing set aside.
    const b = await start(args(), killAfter(2));
    assert.match(b.stderr, /resuming from checkpoint/);
    assert.doesNotMatch(b.stderr, /regenerat|state file/, b.stderr);
    // Its state file corrupt: the checkpoint stays usable, the generator regenerates its position.
    const bad = stateOf().state!;
    const f = path.join(tmp, `ckpt-${name}`, 'data', bad.name);
    const bytes = fs.readFileSync(f);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(f, bytes);
    const c = await start(args());
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, new RegExp(`state file ${bad.name} fails its checksum: it resumes from its position alone`));
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });

  test('gen: source: the state file of a checkpoint that failed is deleted with the others no kept checkpoint names', async () => {
    const name = 'gen-state-fail';
    const args = runArgs(name, 2).map((a) => (a === `file:${L}` || a === `file:${R}` ? 'gen:' : a)).filter((a) => a !== '--format' && a !== 'json').concat(GEN);
    const r = await start(args, undefined, { ...process.env, JOINERY_INJECT_FAULTS: 'checkpoint-write:1' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /checkpoint \d+ failed .*ENOSPC/);
    const dir = path.join(tmp, `ckpt-${name}`);
    const named = new Set(manifests(name).map((m) => {
      const text = fs.readFileSync(path.join(dir, 'manifests', m), 'utf8');
      return (JSON.parse(/"manifest":(.*)\}\n?$/s.exec(text)![1]) as { sources: Array<{ state?: { name: string } }> }).sources.find((x) => x.state)?.state?.name;
    }));
    const files = fs.readdirSync(path.join(dir, 'data')).filter((f) => f.endsWith('.state'));
    assert.ok(files.length > 0);
    assert.deepEqual(files.filter((f) => !named.has(f)), [], `kept manifests name ${[...named].join(', ')}`);
  });

  test('a crashing worker thread stops the node with the cause (exit 1); the next start resumes', async () => {
    const name = 'crash';
    const env = { ...process.env, JOINERY_INJECT_FAULTS: 'worker-crash:1@1' };
    const a = await start(runArgs(name, 2), undefined, env);
    assert.equal(a.code, 1, a.stderr);
    assert.match(a.stderr, /worker \d+.*injected crash/);
    const b = await start(runArgs(name, 2));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from checkpoint \d+/);
    const diff = multisetDiff(expected, outputLines(path.join(tmp, `out-${name}.ndjson`)));
    assert.equal(diff, '', diff);
  });
});
