// Partition handoff between group members (src/checkpoint/handoff.ts) on real files: checkpoint
// references in offset metadata, the per-partition filter of change files, and planHandoff taking
// a partition's events out of another member's checkpoint into this member's own base files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChangeType, forEachChange, FILE_HEADER_BYTES } from '../../src/checkpoint/delta.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import { foldChain } from '../../src/checkpoint/fold.js';
import { checkpointMetadata, parseCheckpointRef, planHandoff, type CommittedOffset } from '../../src/checkpoint/handoff.js';
import { encodeManifest, MANIFEST_FORMAT, type Manifest } from '../../src/checkpoint/manifest.js';
import { SidePool } from '../../src/checkpoint/pool.js';
import { LocalDirStorage } from '../../src/checkpoint/storage.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-handoff-'));
let pool: SidePool;
before(() => { pool = new SidePool(); });
after(async () => { await pool.close(); fs.rmSync(tmp, { recursive: true, force: true }); });
const b = (s: string) => Buffer.from(s, 'utf8');
const job: Manifest['job'] = { join: 'inner', lowerMs: 0, upperMs: 1000, keys: [['k'], ['k']] };
const L = 'left-t', R = 'right-t';
/** LocalDirStorage's layout: a member's checkpoints under DIR/members/<name>. */
const memberDir = (root: string, member: string) => path.join(root, 'members', member);
const storageOf = (root: string) => new LocalDirStorage(root, { create: false });

/** Events of one key per partition: key `p<P>-<i>`, read from Kafka partition P (stored as P + 1). */
function writeEvents(file: string, parts: number[], perPartition: number, kind: 'delta' | 'base' = 'delta'): void {
  const w = new ChangeWriter(file, kind);
  for (const p of parts) {
    for (let i = 0; i < perPartition; i++) w.event((i % 2) as 0 | 1, (p * 100 + i) % 4096, 7, b(`p${p}-${i}`), 1000 + i, b(`id${i}`), b(`{"p":${p}}`), false, 5000 + i, p + 1);
  }
  assert.equal(w.close(), true);
}

/** A member's checkpoint on disk: its change files and a manifest naming them with checksums. */
function writeCheckpoint(root: string, member: string, id: number, files: Array<{ name: string; parts: number[]; n: number }>, positions: number[]): void {
  const st = new LocalDirStorage(memberDir(root, member));
  const refs = files.map((f) => {
    const p = path.join(st.dataDir, f.name);
    writeEvents(p, f.parts, f.n);
    const bytes = fs.readFileSync(p);
    return { name: f.name, kind: 'delta' as const, keyGroups: [0, 4096] as [number, number], bytes: bytes.length, checksum: 'sha256:' + createHash('sha256').update(bytes).digest('hex') };
  });
  const m: Manifest = {
    format: MANIFEST_FORMAT, id, createdAtMs: Date.now(), job,
    sources: [{ kind: 'log', name: 'kafka:x', log: positions.flatMap((p) => [{ topic: L, partition: p, offset: '10' }, { topic: R, partition: p, offset: '20' }]) }],
    router: { watermarkMs: 900, partitions: positions.flatMap((p) => [{ side: 0, partition: p, maxTsMs: 1500 + p, ended: false }, { side: 1, partition: p, maxTsMs: 1600 + p, ended: false }]) },
    output: { spec: 'null' }, workers: [{ keyGroups: [0, 4096], watermarkMs: 900 }], files: refs,
    stats: { stateBytes: 0, newBytes: 0, durationMs: 0 },
  };
  fs.writeFileSync(path.join(st.location, 'manifests', `ckpt-${String(id).padStart(9, '0')}.json`), encodeManifest(m));
}

/** Keys of the live events a chain of base/delta files holds, with their recorded partition. */
function keysIn(dataDir: string, files: Manifest['files']): Array<{ key: string; partition: number }> {
  const out: Array<{ key: string; partition: number }> = [];
  foldChain(files.map((f) => ({ path: path.join(dataDir, f.name), keyGroups: f.keyGroups })), () => {}, 0, 4096, [false, false], -Infinity,
    (r) => out.push({ key: Buffer.from(r.key).toString(), partition: r.sourcePartition - 1 }));
  return out;
}

const committed = (entries: Array<[string, number, string, string | null]>): CommittedOffset[] =>
  entries.map(([topic, partition, offset, metadata]) => ({ topic, partition, offset, metadata }));

describe('checkpoint references in offset metadata', () => {
  test('member/id and the single-node form round-trip; anything else is no reference', () => {
    assert.deepEqual(parseCheckpointRef(checkpointMetadata('node-1', 42)), { member: 'node-1', id: 42 });
    assert.deepEqual(parseCheckpointRef(checkpointMetadata(null, 7)), { member: null, id: 7 });
    for (const m of [null, '', 'joinery-checkpoint:', 'joinery-checkpoint:a/', 'joinery-checkpoint:a/b/3', 'joinery-checkpoint:0', 'other:3']) {
      assert.equal(parseCheckpointRef(m), null, String(m));
    }
  });
});

describe('foldChain partition filter', () => {
  test('keeps only events read from the given Kafka partitions', () => {
    const f = path.join(tmp, 'filter.delta');
    writeEvents(f, [0, 1, 2], 5);
    const seen: number[] = [];
    foldChain([{ path: f, keyGroups: [0, 4096] }], (p) => fs.readFileSync(p), 0, 4096, [false, false], -Infinity,
      (r) => seen.push(r.sourcePartition - 1), undefined, undefined, new Set([0, 2]));
    assert.deepEqual(seen.sort(), [0, 0, 0, 0, 0, 2, 2, 2, 2, 2]);
    let all = 0;
    forEachChange(fs.readFileSync(f), f, 0, 4096, (r) => { if (r.type === ChangeType.Event) all++; }, FILE_HEADER_BYTES);
    assert.equal(all, 15);
  });
});

describe('planHandoff', () => {
  const ranges: Array<[number, number]> = [[0, 2048], [2048, 4096]];
  const base = { job, ranges, outer: [false, false] as [boolean, boolean], leftTopic: L, rightTopic: R, sourceName: 'kafka:x', outputSpec: 'null', log: () => {} };

  test("a partition moving from member a to b: b's base files hold exactly a's events of that partition", async () => {
    const root = path.join(tmp, 'move');
    writeCheckpoint(root, 'a', 3, [{ name: 'a1.delta', parts: [0, 1], n: 6 }, { name: 'a2.delta', parts: [1], n: 4 }], [0, 1]);
    const storage = new LocalDirStorage(memberDir(root, 'b'));
    const meta = checkpointMetadata('a', 3);
    const plan = await planHandoff({
      ...base, root: storageOf(root), member: 'b', storage, pool, runId: 'rtest', assigned: [1, 2],
      committed: committed([[L, 0, '10', meta], [R, 0, '20', meta], [L, 1, '11', meta], [R, 1, '21', meta]]),
    });
    assert.deepEqual(plan.fresh, [2]);
    assert.deepEqual(plan.startOffsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`).sort(), [`${L}/1@11`, `${R}/1@21`]);
    const m = plan.restored!.manifest;
    assert.ok(m.files.every((f) => f.kind === 'base' && fs.existsSync(path.join(storage.dataDir, f.name))), 'own base files');
    const keys = keysIn(storage.dataDir, m.files);
    assert.equal(keys.length, 6 + 4, 'a1 holds 6 events of partition 1, a2 holds 4');
    assert.ok(keys.every((k) => k.partition === 1), 'nothing of partition 0');
    assert.deepEqual(m.router.partitions.map((p) => `${p.side}:${p.partition}`).sort(), ['0:1', '1:1']);
    assert.ok(m.id >= 0);
  });

  test("a member's own checkpoint covering only what it keeps is reused as it is (no copy)", async () => {
    const root = path.join(tmp, 'own');
    writeCheckpoint(root, 'a', 5, [{ name: 'own.delta', parts: [0, 1], n: 3 }], [0, 1]);
    const storage = new LocalDirStorage(memberDir(root, 'a'));
    const meta = checkpointMetadata('a', 5);
    const plan = await planHandoff({
      ...base, root: storageOf(root), member: 'a', storage, pool, runId: 'rtest2', assigned: [0, 1],
      committed: committed([[L, 0, '10', meta], [R, 0, '20', meta], [L, 1, '10', meta], [R, 1, '20', meta]]),
    });
    assert.deepEqual(plan.restored!.manifest.files.map((f) => f.name), ['own.delta']);
    assert.equal(plan.restored!.manifest.id, 5, 'ids continue after its own manifests');
    // losing partition 1: the own chain must be filtered, so it is folded into new bases
    const plan2 = await planHandoff({
      ...base, root: storageOf(root), member: 'a', storage, pool, runId: 'rtest3', assigned: [0],
      committed: committed([[L, 0, '10', meta], [R, 0, '20', meta], [L, 1, '10', meta], [R, 1, '20', meta]]),
    });
    const keys = keysIn(storage.dataDir, plan2.restored!.manifest.files);
    assert.equal(keys.length, 3);
    assert.ok(keys.every((k) => k.partition === 0));
    // nothing committed for what it is assigned now: no state, but ids still continue after its own
    const none = await planHandoff({ ...base, root: storageOf(root), member: 'a', storage, pool, runId: 'rtest4', assigned: [3], committed: [] });
    assert.deepEqual(none.fresh, [3]);
    assert.equal(none.restored!.manifest.files.length, 0);
    assert.equal(none.restored!.manifest.id, 5);
  });

  test('one side committed only (the other had nothing yet): resumes from that side; different checkpoints per side or a missing manifest refuse (E_CHECKPOINT)', async () => {
    const root = path.join(tmp, 'edge');
    writeCheckpoint(root, 'a', 2, [{ name: 'e.delta', parts: [0], n: 2 }], [0]);
    writeCheckpoint(root, 'c', 9, [{ name: 'c.delta', parts: [0], n: 2 }], [0]);
    const storage = new LocalDirStorage(memberDir(root, 'b'));
    const one = await planHandoff({ ...base, root: storageOf(root), member: 'b', storage, pool, runId: 'r4', assigned: [0], committed: committed([[L, 0, '10', checkpointMetadata('a', 2)], [R, 0, '3', null]]) });
    assert.deepEqual(one.startOffsets, [{ topic: L, partition: 0, offset: '10' }]);
    assert.equal(keysIn(storage.dataDir, one.restored!.manifest.files).length, 2);
    await assert.rejects(planHandoff({ ...base, root: storageOf(root), member: 'b', storage, pool, runId: 'r5', assigned: [0],
      committed: committed([[L, 0, '10', checkpointMetadata('a', 2)], [R, 0, '20', checkpointMetadata('c', 9)]]) }), (e: Error & { code?: string }) => e.code === 'E_CHECKPOINT' && /different checkpoints/.test(e.message));
    await assert.rejects(planHandoff({ ...base, root: storageOf(root), member: 'b', storage, pool, runId: 'r6', assigned: [0],
      committed: committed([[L, 0, '10', checkpointMetadata('zz', 4)], [R, 0, '20', checkpointMetadata('zz', 4)]]) }), (e: Error & { code?: string }) => e.code === 'E_CHECKPOINT' && /same --checkpoint-dir/.test(e.message));
    // a corrupt state file of the named checkpoint is refused, not restored
    fs.appendFileSync(path.join(memberDir(root, 'a'), 'data', 'e.delta'), 'x');
    await assert.rejects(planHandoff({ ...base, root: storageOf(root), member: 'b', storage, pool, runId: 'r7', assigned: [0],
      committed: committed([[L, 0, '10', checkpointMetadata('a', 2)], [R, 0, '20', checkpointMetadata('a', 2)]]) }), /fails its checksum/);
  });
  test('at a start, own manifests newer than every checkpoint of it the group names are set aside (never resumed from, ids go on after the committed one)', async () => {
    const root = path.join(tmp, 'uncommitted');
    // a: 3 committed; 4 landed but its transaction never committed (killed in between)
    writeCheckpoint(root, 'a', 3, [{ name: 'c3.delta', parts: [0, 1], n: 3 }], [0, 1]);
    writeCheckpoint(root, 'a', 4, [{ name: 'c4.delta', parts: [0, 1], n: 5 }], [0, 1]);
    const storage = new LocalDirStorage(memberDir(root, 'a'));
    const meta = checkpointMetadata('a', 3);
    const logs: string[] = [];
    const plan = await planHandoff({
      ...base, log: (m: string) => logs.push(m), root: storageOf(root), member: 'a', storage, pool, runId: 'rtest6', assigned: [0, 1], setAsideUncommitted: true,
      committed: committed([[L, 0, '10', meta], [R, 0, '20', meta], [L, 1, '10', meta], [R, 1, '20', meta]]),
    });
    assert.equal(plan.restored!.manifest.id, 3, 'resumes from the committed checkpoint, and the next one is 4');
    assert.deepEqual(plan.restored!.manifest.files.map((f) => f.name), ['c3.delta']);
    assert.deepEqual(await storage.listManifests(), [3]);
    assert.ok(fs.existsSync(`${storage.manifestPathOf(4)}.uncommitted`), 'set aside, kept for a look');
    assert.match(logs.join('\n'), /checkpoint\(s\) 4 of a never committed/);

    // another member's offsets naming a's newer checkpoint (a's partition moved there): kept
    writeCheckpoint(root, 'a', 6, [{ name: 'c6.delta', parts: [2], n: 2 }], [2]);
    const meta6 = checkpointMetadata('a', 6);
    await planHandoff({
      ...base, root: storageOf(root), member: 'a', storage, pool, runId: 'rtest7', assigned: [0, 1], setAsideUncommitted: true,
      committed: committed([[L, 0, '10', meta], [R, 0, '20', meta], [L, 1, '10', meta], [R, 1, '20', meta], [L, 2, '5', meta6], [R, 2, '5', meta6]]),
    });
    assert.deepEqual(await storage.listManifests(), [6, 3], 'a checkpoint the group still names stays');
  });
});
