// The checkpoint coordinator (src/checkpoint/coordinator.ts) over MemoryStorage, with a scripted
// router (barriers answered by fake workers) and a fake side pool.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointCoordinator, type CompactThresholds } from '../../src/checkpoint/coordinator.js';
import { checksummer } from '../../src/checkpoint/checksum.js';
import { decodeManifest, MANIFEST_FORMAT, type Manifest } from '../../src/checkpoint/manifest.js';
import type { SidePool } from '../../src/checkpoint/pool.js';
import { MemoryStorage } from '../../src/checkpoint/storage.js';
import type { CompactTask } from '../../src/checkpoint/tasks.js';
import type { ExpireAtMax } from '../../src/checkpoint/file-expiry.js';
import type { BarrierCut, Router } from '../../src/router/router.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-coord-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const RUN = 'r2';
const ranges: Array<[number, number]> = [[0, 512], [512, 1024]];
const job: Manifest['job'] = { join: 'left', lowerMs: 0, upperMs: 10, keys: [['k'], ['k']] };

function harness(opts: { outputFile?: string; retain?: number; fileBytes?: number; compact?: Partial<CompactThresholds>;
  /** The live state bytes a worker reports at barrier `id` (default 0). */
  stateBytes?: (id: number) => number;
  /** What worker `w`'s change file at barrier `id` reports of its events' expiry (default: nothing). */
  expire?: (id: number, w: number) => ExpireAtMax | undefined; outer?: [boolean, boolean];
  /** Compactions finish only once this resolves. */
  compactGate?: Promise<void>; restoredWatermarkMs?: number } = {}) {
  // Data in memory, staged files in its local scratch directory (the workers' change files, the coordinator's in-flight files).
  const storage = new MemoryStorage();
  after(() => storage.dispose());
  /** A worker closing a change file: staged locally, handed to the coordinator to publish. */
  const stageChange = (name: string, text: string, expireAtMaxMs?: ExpireAtMax) => {
    const f = storage.stage(name);
    fs.writeFileSync(f.localPath, text);
    return { ...f, bytes: 10, records: 1, ...(expireAtMaxMs ? { expireAtMaxMs } : {}) };
  };
  const released: number[] = [];
  const compactions: CompactTask[] = [];
  let seq = 0;
  const fileBytes = opts.fileBytes ?? 100;
  let coord!: CheckpointCoordinator;
  const router = {
    barrier: async (id: number): Promise<BarrierCut> => {
      // Each worker closes a change file and answers.
      setImmediate(() => ranges.forEach((_, w) => {
        const name = `${RUN}-w${w}-${String(++seq).padStart(6, '0')}.delta`;
        coord.onAck(w, { id, file: stageChange(name, `changes ${seq}`, opts.expire?.(id, w)), watermarkMs: id * 100, stateBytes: opts.stateBytes?.(id) ?? 0 });
      }));
      return { id, positions: [], watermarkMs: id * 100, partitions: [] };
    },
  } as unknown as Router;
  const seal = (paths: string[]) => paths.map((p) => {
    const b = fs.readFileSync(p);
    const c = checksummer();
    c.update(b);
    return { path: p, bytes: fileBytes, checksum: c.digest() };
  });
  const pool = {
    seal: async (t: { paths: string[] }) => seal(t.paths),
    compact: async (t: CompactTask) => {
      compactions.push(t);
      if (opts.compactGate) await opts.compactGate;
      return t.ranges.map(([from, to], i) => {
        fs.writeFileSync(t.outPaths[i], `base ${from}`);
        return { ...seal([t.outPaths[i]])[0], bytes: 1, keyGroups: [from, to] as [number, number] };
      });
    },
  } as unknown as SidePool;
  const logs: string[] = [];
  coord = new CheckpointCoordinator({
    storage, pool, router, ranges, job, outer: opts.outer ?? [true, false], runId: RUN, outputFile: opts.outputFile, outputSpec: opts.outputFile ? `file:${opts.outputFile}` : 'null',
    chain: [], lastId: 0, restoredWatermarkMs: opts.restoredWatermarkMs, retain: opts.retain ?? 3, compact: opts.compact, release: (id) => released.push(id), log: (m) => logs.push(m),
  });
  const manifest = async (id: number) => decodeManifest(await storage.readManifest(id), `m${id}`);
  return { storage, coord, released, compactions, logs, manifest, router: router as unknown as Record<string, unknown>, change: (w: number) => {
    return stageChange(`${RUN}-w${w}-${String(++seq).padStart(6, '0')}.delta`, `changes ${seq}`);
  } };
}

test('checkpoints name every change file once, in order, with the output cut', async () => {
  const out = path.join(tmp, 'out-1.ndjson');
  fs.writeFileSync(out, 'x\n');
  const h = harness({ outputFile: out });
  assert.equal(await h.coord.checkpoint(), true);
  fs.appendFileSync(out, 'yy\n');
  assert.equal(await h.coord.checkpoint(), true);
  assert.deepEqual(await h.storage.listManifests(), [2, 1]);
  const m2 = await h.manifest(2);
  assert.deepEqual(m2.files.map((f) => f.name), [`${RUN}-w0-000001.delta`, `${RUN}-w1-000002.delta`, `${RUN}-w0-000003.delta`, `${RUN}-w1-000004.delta`]);
  assert.deepEqual(m2.files.map((f) => f.keyGroups), [ranges[0], ranges[1], ranges[0], ranges[1]]);
  assert.equal((await h.manifest(1)).output.lengthBytes, 2);
  assert.equal(m2.output.lengthBytes, 5);
  assert.deepEqual(h.released, [1, 2]);
});

test('an output file that cannot be measured fails that checkpoint only (no rejection); its files carry to the next', async () => {
  const out = path.join(tmp, 'out-2.ndjson');
  const h = harness({ outputFile: out });
  // The output file is missing at the cut (moved away by hand).
  assert.equal(await h.coord.checkpoint(), false);
  assert.equal(h.coord.stats.failed, 1);
  assert.match(h.coord.stats.lastError ?? '', /ENOENT/);
  assert.deepEqual(h.released, [1], 'the workers are released anyway');
  assert.deepEqual(await h.storage.listManifests(), []);
  fs.writeFileSync(out, 'ok\n');
  assert.equal(await h.coord.checkpoint(), true);
  assert.deepEqual((await h.manifest(2)).files.map((f) => f.name), [`${RUN}-w0-000001.delta`, `${RUN}-w1-000002.delta`, `${RUN}-w0-000003.delta`, `${RUN}-w1-000004.delta`]);
});

test('a failed manifest write fails that checkpoint; the next one includes its files', async () => {
  const h = harness();
  h.storage.failWrites = 1;
  assert.equal(await h.coord.checkpoint(), false);
  assert.match(h.logs.join('\n'), /checkpoint 1 failed .*ENOSPC/);
  assert.equal(await h.coord.checkpoint(), true);
  assert.deepEqual(await h.storage.listManifests(), [2]);
  assert.equal((await h.manifest(2)).files.length, 4);
});

test('retention keeps the newest manifests and every file one of them names; removes files of earlier runs nothing names', async () => {
  const h = harness({ retain: 2 });
  h.storage.putFile('r1-w0-000009.delta', Buffer.from('an earlier run, in no manifest'));
  h.storage.putFile('r1-w0-000010.delta.tmp', Buffer.from('something half written'));
  for (let i = 0; i < 4; i++) assert.equal(await h.coord.checkpoint(), true);
  assert.deepEqual(await h.storage.listManifests(), [4, 3]);
  const files = await h.storage.listFiles();
  assert.ok(!files.includes('r1-w0-000009.delta'));
  assert.ok(files.includes('r1-w0-000010.delta.tmp'));
  for (const id of [4, 3]) for (const f of (await h.manifest(id)).files) assert.ok(files.includes(f.name), `${f.name} of manifest ${id} is kept`);
});

test('compaction: bases replace the folded prefix; files only older manifests name go with them', async () => {
  // Each file "is" 150 MB: two deltas outgrow the 256 MB threshold at once. A new job's first
  // checkpoint only measures the watermark's pace (its files may well expire by themselves).
  const h = harness({ retain: 1, fileBytes: 150 << 20 });
  assert.equal(await h.coord.checkpoint(), true);
  await h.coord.compactionIdle();
  assert.equal(h.compactions.length, 0, 'no compaction at a new job\'s first checkpoint');
  assert.equal(await h.coord.checkpoint(), true);
  await h.coord.compactionIdle(); // compaction (started after checkpoint 2) finishes
  assert.equal(h.compactions.length, 1);
  assert.equal(h.compactions[0].dropBeforeMs, 200);
  assert.deepEqual(h.compactions[0].ranges, ranges);
  assert.equal(await h.coord.checkpoint(), true);
  const m3 = await h.manifest(3);
  assert.deepEqual(m3.files.map((f) => [f.kind, f.name]), [
    ['base', `${RUN}-c2-kg0-512.base`], ['base', `${RUN}-c2-kg512-1024.base`],
    ['delta', `${RUN}-w0-000005.delta`], ['delta', `${RUN}-w1-000006.delta`],
  ]);
  assert.deepEqual(await h.storage.listManifests(), [3]);
  const files = await h.storage.listFiles();
  for (const f of m3.files) assert.ok(files.includes(f.name), `${f.name} is kept`);
  // The deltas the bases replaced are named by no manifest kept: a long run must not keep them forever.
  assert.deepEqual(files.filter((n) => n.endsWith('.delta')).sort(), [`${RUN}-w0-000005.delta`, `${RUN}-w1-000006.delta`]);
  // A restored job knows the pace from its checkpoint's watermark: its first checkpoint may compact.
  const r = harness({ retain: 1, fileBytes: 150 << 20, restoredWatermarkMs: 0 });
  assert.equal(await r.coord.checkpoint(), true);
  await r.coord.compactionIdle();
  assert.equal(r.compactions.length, 1);
});

test('compaction waits until the chain holds much more than the live state: all-live deltas are not rewritten, mostly expired ones are', async () => {
  // Thresholds scaled down: each checkpoint adds two 100-byte deltas; compaction needs a chain of at least 1000 bytes.
  const compact = { minChainBytes: 1000, maxDeltaFiles: 1000 };
  // A growing state nothing expires from yet: each worker's live state is all its deltas (the chain is the live state).
  const live = harness({ compact, stateBytes: (id) => id * 100 });
  for (let i = 0; i < 10; i++) assert.equal(await live.coord.checkpoint(), true);
  await live.coord.compactionIdle();
  assert.equal((await live.manifest(10)).stats.stateBytes, 2000, 'the chain is past the size threshold');
  assert.equal(live.compactions.length, 0, 'rewriting a chain that is all live state reclaims nothing');
  // The same chain when the state stays at 150 bytes per worker (the rest expired): compacted once 3 × 300 is passed.
  const expired = harness({ compact, stateBytes: () => 150 });
  for (let i = 0; i < 4; i++) assert.equal(await expired.coord.checkpoint(), true);
  await expired.coord.compactionIdle();
  assert.equal(expired.compactions.length, 0, 'an 800-byte chain is under the size threshold');
  assert.equal(await expired.coord.checkpoint(), true);
  await expired.coord.compactionIdle();
  assert.equal(expired.compactions.length, 1, 'a 1000-byte chain over 300 live bytes is compacted');
  assert.equal(expired.compactions[0].dropBeforeMs, 500);
});

test('a change file whose every event has expired leaves the chain unread; retention deletes it once no kept manifest names it', async () => {
  // Watermark at barrier id is id × 100. Worker 0's file at barrier id holds events expiring by id × 100 + 150
  // (so it is dead two checkpoints later); worker 1's file at barrier 1 holds one event that never expires
  // within the test, later ones none of side 0 and side-1 events like worker 0's.
  const h = harness({ retain: 1, outer: [false, false], expire: (id, w) => (w === 1 && id === 1 ? [null, 10_000] : w === 1 ? [null, id * 100 + 150] : [id * 100 + 150, null]) });
  for (let i = 0; i < 4; i++) assert.equal(await h.coord.checkpoint(), true);
  const m4 = await h.manifest(4);
  // At checkpoint 4 (watermark 400): files of barriers 1 (250) and 2 (350) are dead, except worker 1's at barrier 1.
  assert.deepEqual(m4.files.map((f) => f.name), [`${RUN}-w1-000002.delta`, `${RUN}-w0-000005.delta`, `${RUN}-w1-000006.delta`, `${RUN}-w0-000007.delta`, `${RUN}-w1-000008.delta`]);
  assert.deepEqual(m4.files[0].expireAtMaxMs, [null, 10_000], 'the bound travels in the manifest');
  assert.equal(m4.stats.stateBytes, 5 * 100);
  assert.equal(h.coord.stats.expiredFiles, 3);
  const files = await h.storage.listFiles();
  for (const gone of [`${RUN}-w0-000001.delta`, `${RUN}-w0-000003.delta`, `${RUN}-w1-000004.delta`]) assert.ok(!files.includes(gone), `${gone} deleted`);
  assert.equal(h.compactions.length, 0);
});

test('files of an outer side, with MARK or EXPIRED records, or without a bound are never dropped as expired', async () => {
  for (const [what, outer, expire] of [
    ['an outer side', [true, false], () => [50, null]],
    ['no bound (MARK/EXPIRED records, or an older writer)', [false, false], () => undefined],
    ['events expiring at the watermark (300 at checkpoint 3), not before it', [false, false], () => [null, 300]],
  ] as Array<[string, [boolean, boolean], (id: number) => ExpireAtMax | undefined]>) {
    const h = harness({ outer, expire });
    for (let i = 0; i < 3; i++) assert.equal(await h.coord.checkpoint(), true);
    assert.equal((await h.manifest(3)).files.length, 6, what);
    assert.equal(h.coord.stats.expiredFiles, 0, what);
  }
});

test('a compaction that finishes after some of the files it read were dropped as expired still replaces the rest', async () => {
  // 150 MB files. Worker 0's file of barrier k expires at k × 100 + 350 (three and a half checkpoints on: not soon
  // enough to be left out of a compaction); worker 1's carry no bound. The compaction starts after checkpoint 2
  // and finishes only after checkpoint 5, which dropped w0-000001 (450 < 500).
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const h = harness({ retain: 1, fileBytes: 150 << 20, outer: [false, false], compactGate: gate, expire: (id, w) => (w === 0 ? [id * 100 + 350, null] : undefined) });
  for (let i = 0; i < 5; i++) assert.equal(await h.coord.checkpoint(), true);
  assert.equal(h.compactions.length, 1);
  // (Fetched copies are named `<n>-<name>`.)
  assert.deepEqual(h.compactions[0].files.map((f) => path.basename(f.path).replace(/^\d+-/, '')), [`${RUN}-w0-000001.delta`, `${RUN}-w1-000002.delta`, `${RUN}-w0-000003.delta`, `${RUN}-w1-000004.delta`]);
  assert.ok(!(await h.manifest(5)).files.some((f) => f.name === `${RUN}-w0-000001.delta`), 'dropped while the compaction ran');
  assert.deepEqual(await h.storage.listManifests(), [5]);
  assert.ok((await h.storage.listFiles()).includes(`${RUN}-w0-000001.delta`), 'no kept manifest names it, but the running compaction reads it: not deleted');
  open();
  await h.coord.compactionIdle();
  assert.equal(await h.coord.checkpoint(), true);
  // At checkpoint 6 (watermark 600) w0-000003 (550) is dropped too; the bases stand for what was left of the four.
  const m6 = await h.manifest(6);
  assert.deepEqual(m6.files.map((f) => f.name), [
    `${RUN}-c2-kg0-512.base`, `${RUN}-c2-kg512-1024.base`,
    ...[5, 6, 7, 8, 9, 10, 11, 12].map((n) => `${RUN}-w${(n + 1) % 2}-${String(n).padStart(6, '0')}.delta`),
  ]);
  assert.ok(!(await h.storage.listFiles()).includes(`${RUN}-w0-000001.delta`), 'deleted once the compaction is over');
});

test('compaction leaves out files that will expire whole within two checkpoints at the watermark\'s pace, and counts only the others', async () => {
  const compact = { minChainBytes: 1000, maxDeltaFiles: 1000 };
  // Watermark +100 per checkpoint; every file's events expire 150 after its barrier: each file leaves the chain by
  // itself two checkpoints later, so the chain never holds more than 4 files and is never rewritten.
  const short = harness({ compact, stateBytes: () => 10, outer: [false, false], expire: (id) => [id * 100 + 150, id * 100 + 150] });
  for (let i = 0; i < 10; i++) assert.equal(await short.coord.checkpoint(), true);
  await short.coord.compactionIdle();
  assert.equal(short.compactions.length, 0, 'nothing compacted');
  assert.equal((await short.manifest(10)).files.length, 4);
  // Worker 1's files last (a long window); worker 0's expire as above. Only worker 1's are folded, once they
  // pass the threshold alone (5 × 2 × 100 bytes at checkpoint 10, as both workers' files were at checkpoint 5).
  const mixed = harness({ compact, stateBytes: () => 10, outer: [false, false], expire: (id, w) => (w === 0 ? [id * 100 + 150, null] : [null, 1e9]) });
  for (let i = 0; i < 9; i++) assert.equal(await mixed.coord.checkpoint(), true);
  await mixed.coord.compactionIdle();
  assert.equal(mixed.compactions.length, 0, 'nine lasting files are 900 bytes');
  assert.equal(await mixed.coord.checkpoint(), true);
  await mixed.coord.compactionIdle();
  assert.equal(mixed.compactions.length, 1);
  assert.ok(mixed.compactions[0].files.every((f) => /-w1-/.test(f.path)), 'only the lasting files are read');
  assert.equal(mixed.compactions[0].files.length, 10);
  assert.equal(await mixed.coord.checkpoint(), true);
  const m = await mixed.manifest(11);
  // At watermark 1100: worker 0's files of barriers 10 (expiring at 1150, left out of the compaction) and 11 are live.
  assert.deepEqual(m.files.map((f) => f.name), [`${RUN}-c10-kg0-512.base`, `${RUN}-c10-kg512-1024.base`, `${RUN}-w0-000019.delta`, `${RUN}-w0-000021.delta`, `${RUN}-w1-000022.delta`],
    'bases first, then the short-lived file older than them, then the new ones');
});

/** An in-flight stream of `events` event frames (8-byte header + 40-byte event body each). */
function frames(events: number): Uint8Array {
  const b = new Uint8Array(events * 48);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < events; i++) { dv.setUint32(i * 48, 40, true); b[i * 48 + 8] = 1; }
  return b;
}

test('the stop checkpoint overtakes one whose barrier a worker has not reached: its files and the in-flight frames are in it', async () => {
  const h = harness();
  const cut: BarrierCut = { id: 0, positions: [], watermarkMs: 50, partitions: [] };
  // Barrier 1: worker 0 answers, worker 1 (behind a hot key) never reaches it.
  h.router.barrier = async (id: number) => { setImmediate(() => h.coord.onAck(0, { id, file: h.change(0), watermarkMs: 10, stateBytes: 0 })); return { ...cut, id }; };
  h.router.cut = async (id: number) => {
    setImmediate(() => { h.coord.onAck(0, { id, file: h.change(0), watermarkMs: 20, stateBytes: 0, cut: true }); h.coord.onAck(1, { id, file: h.change(1), watermarkMs: 5, stateBytes: 0, cut: true }); });
    return { ...cut, id };
  };
  h.router.takeInflight = () => [new Uint8Array(0), frames(3)];
  const first = h.coord.checkpoint();
  await new Promise((r) => setTimeout(r, 20));
  const stop = h.coord.stopCheckpoint();
  assert.equal(await first, false);
  assert.equal(await stop, true);
  assert.deepEqual(await h.storage.listManifests(), [2]);
  const m = await h.manifest(2);
  assert.equal(m.format, MANIFEST_FORMAT);
  assert.ok(m.inflight?.every((f) => /^crc32:[0-9a-f]{8}$/.test(f.checksum)) && m.files.every((f) => /^crc32:[0-9a-f]{8}$/.test(f.checksum)), 'new files carry CRC-32s');
  assert.deepEqual(m.files.map((f) => f.name), [`${RUN}-w0-000001.delta`, `${RUN}-w0-000002.delta`, `${RUN}-w1-000003.delta`]);
  assert.deepEqual(m.inflight?.map((f) => [f.name, f.keyGroups, f.events]), [[`${RUN}-w1-000002.inflight`, ranges[1], 3]]);
  assert.deepEqual(m.workers.map((w) => w.watermarkMs), [20, 5]);
  assert.equal(h.coord.stats.failed, 0, 'an overtaken checkpoint is no failure');
  assert.deepEqual(h.released, [2], 'the output gate opens for everything before the cut');
});

test('a worker that had already ended (end of input) does not hold the stop checkpoint back', async () => {
  const h = harness();
  h.coord.onWorkerDone(1, 99);
  h.router.cut = async (id: number) => {
    setImmediate(() => h.coord.onAck(0, { id, file: h.change(0), watermarkMs: 20, stateBytes: 0, cut: true }));
    return { id, positions: [], watermarkMs: 50, partitions: [] };
  };
  h.router.takeInflight = () => [frames(1), new Uint8Array(0)];
  const stop = h.coord.stopCheckpoint();
  const inTime = await Promise.race([stop, new Promise((r) => setTimeout(() => r('hung'), 2000))]);
  assert.equal(inTime, true);
  assert.deepEqual((await h.manifest(1)).workers.map((w) => w.watermarkMs), [20, 99]);
});
