/**
 * State that moves with Kafka partitions: several joinery members in one consumer group share a
 * checkpoint directory, each writing its checkpoints under `DIR/members/<member>/`. Every commit
 * of a member's offsets carries `joinery-checkpoint:<member>/<id>` as offset metadata, so the
 * group's committed offsets say, per partition, which checkpoint holds that partition's share of
 * the join buffer, exactly as of the committed offset (offsets are committed only at checkpoints,
 * and a member checkpoints before it re-joins on a rebalance).
 *
 * On every assignment (start, and after each rebalance) a member plans its state from there
 * (planHandoff): per checkpoint named by its partitions' committed offsets, the state files are
 * verified and folded, filtered to those partitions (events carry their Kafka partition), into new
 * base files of this member; the router's per-partition event-time state comes along. The plan is
 * a restore point the engine resumes from like any other. Base files are written rather than
 * pointing at the other member's files so that each member's retention only ever deals with its
 * own files. When a member's own newest committed checkpoint covers exactly what it is assigned
 * (the common restart), its chain is reused as it is.
 */
import { JoineryError } from '../core/errors.js';
import { decodeManifest, MANIFEST_FORMAT, type Manifest, type StateFileRef } from './manifest.js';
import { compactInto, type SidePool } from './pool.js';
import { sameJob, setAsideNewer, verifyFiles, type RestorePoint } from './restore.js';
import { manifestName, memberStorage, type CheckpointStorage } from './storage.js';

/** Offset metadata naming a checkpoint: `joinery-checkpoint:<id>` (one node, DIR itself) or `…:<member>/<id>`. */
export function checkpointMetadata(member: string | null, id: number): string {
  return member === null ? `joinery-checkpoint:${id}` : `joinery-checkpoint:${member}/${id}`;
}

export interface CheckpointRef { member: string | null; id: number }

export function parseCheckpointRef(metadata: string | null | undefined): CheckpointRef | null {
  const m = /^joinery-checkpoint:(?:([^/]+)\/)?(\d+)$/.exec(metadata ?? '');
  if (!m || Number(m[2]) <= 0) return null;
  return { member: m[1] ?? null, id: Number(m[2]) };
}

export interface CommittedOffset { topic: string; partition: number; offset: string; metadata: string | null }

export interface HandoffOptions {
  /** The --checkpoint-dir storage every member shares. */
  root: CheckpointStorage;
  member: string;
  /** This member's storage (memberStorage(root, member)). */
  storage: CheckpointStorage;
  pool: SidePool;
  job: Manifest['job'];
  /** Key-group ranges of this run's workers (the base files written are cut along them). */
  ranges: Array<[number, number]>;
  outer: [boolean, boolean];
  runId: string;
  leftTopic: string;
  rightTopic: string;
  /** Kafka partitions assigned to this member. */
  assigned: number[];
  /** The group's committed offsets for both topics (with metadata). */
  committed: CommittedOffset[];
  sourceName: string;
  outputSpec: string;
  log: (msg: string) => void;
  /**
   * Set aside (`*.uncommitted`) this member's manifests newer than every checkpoint of it that the
   * group's offsets name: at a start, once the output sink has fenced the previous incarnation's
   * transaction, those can never commit (killed between manifest and commit).
   */
  setAsideUncommitted?: boolean;
}

export interface HandoffPlan {
  restored: RestorePoint | null;
  /** Next offsets to start the assigned partitions at (those with a checkpoint). */
  startOffsets: Array<{ topic: string; partition: number; offset: string }>;
  /** The checkpoints used, for the log: `member/id ← partitions`. */
  used: string[];
  /** Partitions that start without state (no checkpoint names them). */
  fresh: number[];
}

interface Source { ref: CheckpointRef; storage: CheckpointStorage; manifest: Manifest; partitions: number[] }

const refKey = (r: CheckpointRef) => `${r.member ?? ''}/${r.id}`;

export async function planHandoff(o: HandoffOptions): Promise<HandoffPlan> {
  if (o.setAsideUncommitted) {
    // Never resumed from, and out of the id sequence: the next checkpoint follows the committed one.
    const own = o.committed.map((c) => parseCheckpointRef(c.metadata)).filter((r): r is CheckpointRef => r !== null && r.member === o.member);
    const committedId = Math.max(0, ...own.map((r) => r.id));
    const moved = await setAsideNewer(o.storage, committedId, '.uncommitted');
    if (moved.length > 0) {
      o.log(`checkpoint(s) ${moved.join(', ')} of ${o.member} never committed with the output (the group's offsets name ` +
        `${committedId ? `checkpoint ${committedId}` : 'none of this member'}): set aside as *.uncommitted`);
    }
  }
  const committedOf = new Map(o.committed.map((c) => [`${c.topic}/${c.partition}`, c]));
  const groups = new Map<string, { ref: CheckpointRef; partitions: number[] }>();
  const startOffsets: HandoffPlan['startOffsets'] = [];
  const fresh: number[] = [];
  for (const p of o.assigned) {
    const l = committedOf.get(`${o.leftTopic}/${p}`), r = committedOf.get(`${o.rightTopic}/${p}`);
    const lr = parseCheckpointRef(l?.metadata), rr = parseCheckpointRef(r?.metadata);
    // A checkpoint commits both topics' partition p once each has delivered something (and from
    // then on at every checkpoint of its owner), so the two name the same checkpoint, or only one
    // does (the other side had nothing yet: it starts where the group or --from says).
    if (!lr && !rr) { fresh.push(p); continue; }
    const ref = lr ?? rr!;
    if (lr && rr && refKey(lr) !== refKey(rr)) {
      throw new JoineryError('E_CHECKPOINT', `partition ${p}: the group's committed offsets name different checkpoints for ${o.leftTopic} (${l?.metadata}) and ${o.rightTopic} (${r?.metadata}); joinery commits them together, so something else committed offsets for this group`);
    }
    const g = groups.get(refKey(ref)) ?? { ref, partitions: [] };
    g.partitions.push(p);
    groups.set(refKey(ref), g);
    if (lr) startOffsets.push({ topic: o.leftTopic, partition: p, offset: l!.offset });
    if (rr) startOffsets.push({ topic: o.rightTopic, partition: p, offset: r!.offset });
  }
  if (groups.size === 0) {
    // Nothing to take over; an empty restore point still carries the id to continue from, so a
    // member restarted without partitions never overwrites a manifest another member may need.
    const lastId = Math.max(0, ...await o.storage.listManifests());
    if (lastId === 0) return { restored: null, startOffsets, used: [], fresh };
    return { restored: { manifest: emptyManifest(o, lastId), skipped: [] }, startOffsets, used: [], fresh };
  }

  // Load and verify every checkpoint named.
  const sources: Source[] = [];
  const inflight: NonNullable<RestorePoint['inflight']> = [];
  for (const g of groups.values()) {
    const st = memberStorage(o.root, g.ref.member);
    const dir = st.location;
    const who = g.ref.member === null ? `checkpoint ${g.ref.id} in ${dir}` : `checkpoint ${g.ref.id} of member ${g.ref.member} (${dir})`;
    let text: string;
    try {
      text = await st.readManifest(g.ref.id);
    } catch (e) {
      throw new JoineryError('E_CHECKPOINT', `partitions ${g.partitions.join(',')} were committed at ${who}, but its manifest ${manifestName(g.ref.id)} cannot be read (${(e as Error).message}): every member needs the same --checkpoint-dir (shared storage)`);
    }
    let m: Manifest;
    try { m = decodeManifest(text, who); } catch (e) {
      throw new JoineryError('E_CHECKPOINT', `partitions ${g.partitions.join(',')} were committed at ${who}, which is unusable: ${(e as Error).message}`);
    }
    const diff = sameJob(m.job, o.job);
    if (diff) throw new JoineryError('E_CHECKPOINT', `${who} belongs to a different join (${diff}); use another --group or --checkpoint-dir`);
    const bad = await verifyFiles(st, o.pool, m.files).catch((e: Error) => {
      throw new JoineryError('E_CHECKPOINT', `${who}: a state file is missing or unreadable (${e.message})`);
    });
    if (bad) throw new JoineryError('E_CHECKPOINT', `${who}: state file ${bad.name} fails its checksum (torn or corrupt)`);
    // A stop checkpoint's unprocessed frames come along, filtered to the partitions taken (each event carries its partition).
    const inf = m.inflight ?? [];
    const badInf = await verifyFiles(st, o.pool, inf).catch((e: Error) => {
      throw new JoineryError('E_CHECKPOINT', `${who}: an in-flight file is missing or unreadable (${e.message})`);
    });
    if (badInf) throw new JoineryError('E_CHECKPOINT', `${who}: in-flight file ${badInf.name} fails its checksum (torn or corrupt)`);
    for (const f of inf) inflight.push({ storage: st, name: f.name, partitions: [...g.partitions], checkpoint: refKey(g.ref) });
    sources.push({ ref: g.ref, storage: st, manifest: m, partitions: g.partitions.sort((a, b) => a - b) });
  }

  // The chain: this member's own checkpoint as it is when every partition it covers resumes from
  // it (no filtering needed); everything else folded into new base files.
  const files: StateFileRef[] = [];
  const used: string[] = [];
  let reused = false;
  for (const [i, s] of sources.entries()) {
    const covered = new Set((s.manifest.sources.find((x) => x.kind === 'log')?.log ?? []).map((x) => x.partition));
    const dropBeforeMs = Math.min(...s.manifest.workers.map((w) => w.watermarkMs));
    const label = `${s.ref.member ?? '.'}/${s.ref.id} → partitions ${s.partitions.join(',')}`;
    // (covered: partitions the checkpoint has positions for, i.e. whose events its chain may hold)
    if (!reused && s.storage.location === o.storage.location && [...covered].every((p) => s.partitions.includes(p))) {
      files.unshift(...s.manifest.files); // a whole chain goes first: its bases precede its deltas
      reused = true;
      used.push(`${label} (own chain)`);
      continue;
    }
    const t0 = Date.now();
    const out = await compactInto(s.storage, o.pool, o.storage, s.manifest.files, {
      ranges: o.ranges, outer: o.outer, dropBeforeMs, prefix: `${o.runId}-h${i}`, partitions: s.partitions,
    });
    files.push(...out);
    used.push(`${label} (${fmtMb(out.reduce((n, f) => n + f.bytes, 0))} taken over in ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  }

  // Event-time state of the assigned partitions, from the checkpoint each comes from; the
  // watermark floor is the lowest of theirs (a member never turns records late that the
  // previous owner would have accepted).
  const routerParts: Manifest['router']['partitions'] = [];
  let floor = Infinity;
  for (const s of sources) {
    const mine = new Set(s.partitions);
    for (const p of s.manifest.router.partitions) if (mine.has(p.partition)) routerParts.push({ ...p, ended: false });
    if (Number.isFinite(s.manifest.router.watermarkMs) || s.manifest.router.watermarkMs === -Infinity) floor = Math.min(floor, s.manifest.router.watermarkMs);
  }
  if (floor === Infinity) floor = -Infinity;
  const dropBeforeMs = Math.min(...sources.map((s) => Math.min(...s.manifest.workers.map((w) => w.watermarkMs))));
  // Ids continue after every manifest this member has written, so none is ever overwritten.
  const lastId = Math.max(0, ...await o.storage.listManifests(), ...sources.filter((s) => s.storage.location === o.storage.location).map((s) => s.ref.id));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT, id: lastId, createdAtMs: Math.max(...sources.map((s) => s.manifest.createdAtMs)), job: o.job,
    sources: [{ kind: 'log', name: o.sourceName, log: startOffsets }],
    router: { watermarkMs: floor, partitions: routerParts },
    output: { spec: o.outputSpec },
    workers: o.ranges.map((r) => ({ keyGroups: r, watermarkMs: dropBeforeMs })),
    files,
    stats: { stateBytes: files.reduce((n, f) => n + f.bytes, 0), newBytes: 0, durationMs: 0 },
  };
  return { restored: { manifest, skipped: [], inflight }, startOffsets, used, fresh };
}

function emptyManifest(o: HandoffOptions, id: number): Manifest {
  return {
    format: MANIFEST_FORMAT, id, createdAtMs: Date.now(), job: o.job, sources: [{ kind: 'log', name: o.sourceName, log: [] }],
    router: { watermarkMs: -Infinity, partitions: [] }, output: { spec: o.outputSpec },
    workers: o.ranges.map((r) => ({ keyGroups: r, watermarkMs: -Infinity })), files: [], stats: { stateBytes: 0, newBytes: 0, durationMs: 0 },
  };
}

function fmtMb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`;
}
