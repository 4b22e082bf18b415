// Resuming must not silently go wrong, through the real CLI: a checkpoint resumed with another
// input file (or the same one edited) is refused; older manifests without the file identity still
// load; a full disk under --state-dir stops the run with E_STATE, and the next start resumes with
// nothing lost (a real, small tmpfs: this test needs root to mount it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeManifest, encodeManifest } from '../../src/checkpoint/manifest.js';
import { BIN, joinery, lastJson } from './cli.js';
import { canonical, multisetDiff, readNdjson, referenceJoin } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-resume-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const L = path.join(tmp, 'impressions.ndjson'), R = path.join(tmp, 'plays.ndjson');
const JOIN = ['--lower', '0', '--upper', '2m', '--max-delay', '3s'];

function args(name: string, left = L, extra: string[] = []): string[] {
  return ['run', '--left', `file:${left}`, '--right', `file:${R}`, ...JOIN, '--state-dir', path.join(tmp, `state-${name}`),
    '--out', `file:${path.join(tmp, `out-${name}.ndjson`)}`, '--checkpoint-dir', path.join(tmp, `ckpt-${name}`), '--json', ...extra];
}

const manifestFiles = (name: string) => fs.readdirSync(path.join(tmp, `ckpt-${name}`, 'manifests')).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort();

describe('resuming checks that the inputs are the files the checkpoint read', () => {
  before(async () => {
    const g = await joinery(['gen', '--events', '20000', '--seed', '5', '--format', 'json', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
  });

  test('another --left file is refused with exit 4 (E_CHECKPOINT) and says what to do', async () => {
    const a = await joinery(args('other'));
    assert.equal(a.code, 0, a.stderr);
    const other = path.join(tmp, 'other-impressions.ndjson');
    const g = await joinery(['gen', '--events', '20000', '--seed', '6', '--format', 'json', '--left-out', other, '--right-out', path.join(tmp, 'other-plays.ndjson')]);
    assert.equal(g.code, 0, g.stderr);
    const b = await joinery(args('other', other));
    assert.equal(b.code, 4, `exit 4, not a "resume" of another file:\n${b.stderr}`);
    assert.match(b.stderr, /left input .*other-impressions\.ndjson is not the file the checkpoint read: .*differ.*new --checkpoint-dir.*--rebuild-from/);
  });

  test('a line prepended to the input is refused with exit 4 rather than resuming mid-line', async () => {
    const copy = path.join(tmp, 'prepended.ndjson');
    fs.copyFileSync(L, copy);
    const a = await joinery(args('prepend', copy));
    assert.equal(a.code, 0, a.stderr);
    fs.writeFileSync(copy, Buffer.concat([Buffer.from(JSON.stringify({ eventId: 'new', profileId: 1, titleId: 1, ts: 1 }) + '\n'), fs.readFileSync(L)]));
    const b = await joinery(args('prepend', copy));
    assert.equal(b.code, 4, b.stderr);
    assert.match(b.stderr, /left input .*prepended\.ndjson is not the file the checkpoint read: its bytes before the resume position \(byte \d+\) differ/);
  });

  test('the same bytes under another name (a moved file) resume; appending to the input is fine', async () => {
    const a = await joinery(args('moved'));
    assert.equal(a.code, 0, a.stderr);
    const moved = path.join(tmp, 'moved-impressions.ndjson');
    fs.copyFileSync(L, moved);
    fs.appendFileSync(moved, JSON.stringify({ eventId: 'appended', profileId: 1, titleId: 1, ts: 9e12 }) + '\n');
    const b = await joinery(args('moved', moved));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from checkpoint \d+/);
    assert.deepEqual(lastJson(b.stdout).eventsIn, [1, 0], 'only the appended record is read');
  });

  test('a manifest written before file identities existed still loads and resumes; under another name it is refused', async () => {
    const copy = path.join(tmp, 'old-format.ndjson');
    fs.copyFileSync(L, copy);
    const a = await joinery(args('old', copy));
    assert.equal(a.code, 0, a.stderr);
    for (const f of manifestFiles('old')) {
      const p = path.join(tmp, 'ckpt-old', 'manifests', f);
      const m = decodeManifest(fs.readFileSync(p, 'utf8'), f);
      for (const s of m.sources) if (s.file) { delete s.file.identity; delete s.file.side; }
      fs.writeFileSync(p, encodeManifest(m));
      assert.ok(!fs.readFileSync(p, 'utf8').includes('identity'));
    }
    // without an identity, a file under another name cannot be told from another file
    const c = await joinery(args('old', L));
    assert.equal(c.code, 4, c.stderr);
    assert.match(c.stderr, /was taken with --left file:.*old-format\.ndjson, not file:.*impressions\.ndjson/);
    fs.appendFileSync(copy, JSON.stringify({ eventId: 'appended', profileId: 1, titleId: 1, ts: 9e12 }) + '\n');
    const b = await joinery(args('old', copy));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from checkpoint \d+/);
    assert.deepEqual(lastJson(b.stdout).eventsIn, [1, 0]);
  });
});

describe('a full disk under --state-dir', () => {
  const mnt = path.join(tmp, 'small-disk');
  let mounted = false;
  after(() => { if (mounted) execFileSync('umount', ['-l', mnt]); });

  test('stops with E_STATE naming the directory and its free space, no stack trace; the next start resumes and loses nothing', async () => {
    // Precondition, not a skip: mounting a small tmpfs needs root.
    assert.equal(process.getuid?.(), 0, 'this test mounts a 24 MiB tmpfs and must run as root (CI does)');
    fs.mkdirSync(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
    mounted = true;
    const bl = path.join(tmp, 'big-l.ndjson'), br = path.join(tmp, 'big-r.ndjson');
    const g = await joinery(['gen', '--events', '200000', '--seed', '7', '--format', 'json', '--gen-event-time-rate', '400', '--gen-disorder', '2s', '--left-out', bl, '--right-out', br]);
    assert.equal(g.code, 0, g.stderr);
    // A 3-hour window: nothing expires, so the state only grows, past what the disk holds.
    const run = (state: string) => ['run', '--left', `file:${bl}`, '--right', `file:${br}`, '--lower', '0', '--upper', '3h', '--max-delay', '3s', '--state-dir', state,
      '--out', `file:${path.join(tmp, 'out-full.ndjson')}`, '--checkpoint-dir', path.join(tmp, 'ckpt-full'), '--checkpoint-interval', '200ms',
      // Small rings: a barrier waits behind what is queued, and behind 16 MiB rings a fast machine
      // filled the disk (in under a second) before the first checkpoint was done.
      '--ring-size', '256k',
      // Every complete bucket goes to LMDB (the default memory budget would hold this state in memory).
      '--state-memory', '0', '--json'];
    const a = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [BIN, ...run(mnt)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr!.on('data', (d: Buffer) => { err += d; });
      c.on('close', (code) => resolve({ code, stderr: err }));
    });
    assert.equal(a.code, 1, a.stderr);
    const lines = a.stderr.trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]);
    assert.equal(last.code, 'E_STATE', a.stderr);
    assert.match(last.msg, new RegExp(`--state-dir ${mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is full \\([\\d.]+ MiB free of 24\\.0 MiB`));
    assert.ok(!/\n\s+at /.test(last.msg), `no stack trace: ${last.msg}`);
    assert.ok(!/Write error/.test(a.stderr), `no raw LMDB line: ${a.stderr}`);
    assert.ok(lines.every((l) => l.startsWith('{')), `every stderr line is a JSON log line:\n${a.stderr}`);
    assert.ok(manifestFiles('full').length > 0, 'checkpoints were taken before the disk filled');
    execFileSync('umount', [mnt]);
    mounted = false;
    const b = await joinery(run(path.join(tmp, 'state-after-full')));
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resuming from checkpoint \d+/);
    const expected = referenceJoin(readNdjson(bl), readNdjson(br), { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: 0, upperMs: 3 * 3600_000, kind: 'inner' });
    const diff = multisetDiff(expected, readNdjson(path.join(tmp, 'out-full.ndjson')).map((o) => canonical(o as never)));
    assert.equal(diff, '', diff);
  });
});
