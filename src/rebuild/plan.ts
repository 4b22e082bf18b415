/**
 * Building a rebuild's replay plan from the command line (--rebuild-from, --resume-at): where each
 * partition starts (a log: offsets-for-times of TIME) and where the replay ends (the resume
 * position: --resume-at bytes or manifest, or the log's committed offsets). A partitioned log is
 * reached through its RebuildLog (Kafka's: src/kafka/rebuild.ts); nothing here imports it.
 */
import * as fs from 'node:fs';
import { parseCheckpointRef } from '../checkpoint/handoff.js';
import { manifestName, memberStorage, storageAt } from '../checkpoint/storage.js';
import { endpointsOf, filePath } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import { JoineryError, usageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { decodeManifest, type Manifest } from '../checkpoint/manifest.js';
import { parseTime } from '../core/units.js';
import type { LogPosition } from '../source/source.js';
import { parseByteResume, readResumeManifest, refuseStopCheckpoint, type ReplayPlan, type ResumePoint } from './replay.js';

/** File inputs: the replay reads both files from their start; returns the plan (and cuts --out back when resuming at a manifest). */
export function filePlan(cfg: Config): ReplayPlan {
  const fromMs = parseTime(cfg.rebuildFrom!);
  const ep = endpointsOf(cfg);
  const L = filePath(ep.left)!, R = filePath(ep.right)!;
  let bytes = parseByteResume(cfg.resumeAt!);
  let m: Manifest | null = null;
  if (!bytes) {
    m = readResumeManifest(cfg.resumeAt!);
    const at = (name: string) => m!.sources.find((s) => s.kind === 'file' && s.name === name)?.file?.byte;
    const l = at(cfg.left!), r = at(cfg.right!);
    if (l === undefined || r === undefined) {
      throw usageError(`--resume-at ${cfg.resumeAt}: the manifest has no positions of ${cfg.left} and ${cfg.right} (it names ${m.sources.map((s) => s.name).join(', ') || 'no sources'})`);
    }
    bytes = [l, r];
    cutOutputTo(cfg, m);
  }
  for (const [i, f] of [L, R].entries()) {
    let size = -1;
    try { size = fs.statSync(f).size; } catch { /* the source reports a missing file */ }
    if (size >= 0 && bytes[i] > size) throw usageError(`--resume-at: byte ${bytes[i]} is beyond the end of ${f} (${size} bytes)`);
  }
  return {
    fromMs, watermarkFloorMs: m ? m.router.watermarkMs : undefined,
    resume: [{ side: 0, partition: 0, position: bytes[0] }, { side: 1, partition: 0, position: bytes[1] }],
    describe: `byte ${bytes[0]} of ${L} and byte ${bytes[1]} of ${R}${m ? ` (checkpoint ${m.id})` : ''}`,
  };
}

/** The output file holds what the lost run emitted up to the manifest's cut, possibly more: cut it there. */
function cutOutputTo(cfg: Config, m: Manifest): void {
  const file = filePath(endpointsOf(cfg).out);
  if (file === null || m.output.spec !== cfg.out || m.output.lengthBytes === undefined) return;
  const want = m.output.lengthBytes;
  let size = -1;
  try { size = fs.statSync(file).size; } catch { /* gone */ }
  if (size < want) throw new JoineryError('E_OUTPUT', `output ${file} has ${size < 0 ? 'gone' : `${size} bytes`} but checkpoint ${m.id} had written ${want} bytes of it: rebuilding would leave a gap`);
  if (size > want) fs.truncateSync(file, want);
}

/** What a rebuild needs of a partitioned log input (the only one, Kafka: src/kafka/rebuild.ts; its words are in the messages). */
export interface RebuildLog {
  /** The left and right sides' logs (Kafka: topics). */
  readonly topics: readonly [string, string];
  /** Next offsets committed for the job (Kafka: the group's, stable), with the metadata of each; offset < 0: none. */
  committed(): Promise<Array<LogPosition & { metadata: string | null }>>;
  /** Per partition of a log: the first offset whose timestamp is ≥ timeMs (else the end), and the first retained one. */
  offsetsForTime(topic: string, timeMs: number): Promise<Array<{ partition: number; offset: number; low: number }>>;
}

/**
 * Log inputs: resume at the manifest's positions or the committed offsets (Kafka: the group's);
 * start each such partition at the first record with a timestamp ≥ TIME (never after its resume
 * position, so nothing is skipped). Partitions without a resume position start as a normal run
 * would (--from) and are not replayed. Returns the plan and the explicit start offsets for the source.
 */
export async function logPlan(cfg: Config, input: RebuildLog): Promise<{ plan: ReplayPlan; startOffsets: Array<{ topic: string; partition: number; offset: number }> }> {
  const fromMs = parseTime(cfg.rebuildFrom!);
  const topics = input.topics;
  let resumeOf: Array<{ topic: string; partition: number; offset: number }>;
  let m: Manifest | null = null;
  if (cfg.resumeAt !== undefined) {
    if (parseByteResume(cfg.resumeAt)) throw usageError('--resume-at LEFT_BYTE,RIGHT_BYTE is for file inputs; with Kafka give a manifest, or leave it out to resume at the group\'s committed offsets');
    m = readResumeManifest(cfg.resumeAt);
    const k = m.sources.find((s) => s.kind === 'log')?.log;
    if (!k) throw usageError(`--resume-at ${cfg.resumeAt}: the manifest has no Kafka positions`);
    resumeOf = k.map((p) => ({ topic: p.topic, partition: p.partition, offset: Number(p.offset) }));
  } else {
    const c = await input.committed(); // stable: not the offsets a commit in flight replaces
    if (cfg.checkpointDir) await refuseCommittedStop(cfg.checkpointDir, c);
    resumeOf = c.map((p) => ({ topic: p.topic, partition: p.partition, offset: Number(p.offset) })).filter((p) => p.offset >= 0);
    if (resumeOf.length === 0) {
      throw usageError(`--rebuild-from: consumer group ${cfg.group} has no committed offsets on ${topics.join(', ')}: no output was confirmed, so there is no resume position (run without --rebuild-from to start over, or give --resume-at MANIFEST)`);
    }
  }
  const resume: ResumePoint[] = [];
  const startOffsets: Array<{ topic: string; partition: number; offset: number }> = [];
  const early: string[] = [];
  for (const [side, topic] of topics.entries()) {
    for (const p of await input.offsetsForTime(topic, fromMs)) {
      const r = resumeOf.find((x) => x.topic === topic && x.partition === p.partition);
      if (!r) continue;
      if (r.offset < p.low) {
        throw new JoineryError('E_INPUT', `${topic}/${p.partition}: records before the resume offset ${r.offset} were deleted (the partition starts at ${p.low}): the join buffer cannot be rebuilt`);
      }
      const start = Math.min(p.offset, r.offset);
      if (p.offset === p.low && p.low > 0 && start < r.offset) early.push(`${topic}/${p.partition}`);
      startOffsets.push({ topic, partition: p.partition, offset: start });
      if (start < r.offset) resume.push({ side, partition: p.partition, position: r.offset });
    }
  }
  if (early.length > 0) log.say('warn', `joinery: warning: --rebuild-from is older than the earliest retained record of ${early.join(', ')}: the replay starts there, later than asked`);
  return {
    plan: {
      fromMs, resume, watermarkFloorMs: m ? m.router.watermarkMs : undefined,
      describe: m ? `the positions of checkpoint ${m.id}` : `the committed offsets of group ${cfg.group} (${resumeOf.map((p) => `${p.topic}/${p.partition}@${p.offset}`).join(' ')})`,
    },
    startOffsets,
  };
}

/** The committed offsets name a stop checkpoint (in-flight events after its positions' records): refuse, if its manifest is still there to tell. */
async function refuseCommittedStop(root: string, committed: Array<{ metadata: string | null }>): Promise<void> {
  for (const c of committed) {
    const ref = parseCheckpointRef(c.metadata);
    if (!ref) continue;
    const st = memberStorage(storageAt(root, false), ref.member);
    for (const suffix of ['', '.corrupt']) {
      const f = `${manifestName(ref.id)}${suffix} in ${st.location}`;
      let m: Manifest;
      try { m = decodeManifest(await st.readManifest(ref.id, suffix), f); } catch { continue; }
      refuseStopCheckpoint(m, `--rebuild-from: the group's committed offsets name ${f}`,
        `restore its in-flight files (data/${m.inflight![0].name} …): an earlier checkpoint would write output again that the group has committed`);
    }
  }
}
