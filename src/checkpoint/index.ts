/**
 * Opening the checkpoint directory at start: storage, side pool, and the restore point (if any).
 * Called before the sources are built, because a restore decides where they start.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Manifest, SourcePosition } from './manifest.js';
import { SidePool } from './pool.js';
import { findRestorePoint, setAsideNewer, type RestorePoint } from './restore.js';
import { storageAt, type CheckpointStorage } from './storage.js';

export interface CheckpointContext {
  storage: CheckpointStorage;
  pool: SidePool;
  job: Manifest['job'];
  runId: string;
  restored: RestorePoint | null;
}

export function jobOf(cfg: Config): Manifest['job'] {
  return {
    join: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs,
    keys: [cfg.leftKey ?? cfg.key, cfg.rightKey ?? cfg.key],
  };
}

/** Hold --checkpoint-dir for this process (a group member holds its own member storage instead). */
export function lockCheckpoints(dir: string): void {
  storageAt(dir, false).lock('--checkpoint-dir');
}

/**
 * `committedId`: with transactional output, the checkpoint whose transaction the output system
 * committed last (0 = none): only that one can be resumed, newer ones never became visible. With 0,
 * no output of this job was ever committed, so starting over is exact: older manifests are set aside.
 */
export async function openCheckpoints(cfg: Config, committedId?: number): Promise<CheckpointContext | null> {
  if (!cfg.checkpointDir) return null;
  const storage = storageAt(cfg.checkpointDir);
  const pool = new SidePool();
  try {
    const job = jobOf(cfg);
    if (committedId === 0 && (await storage.listManifests()).length > 0) {
      log.say('warn', `joinery: no checkpoint of this job was ever committed with its output (consumer group ${cfg.group}): starting over; the checkpoints in ${cfg.checkpointDir} are set aside`, { code: 'E_CHECKPOINT' });
      await setAsideNewer(storage, 0);
    }
    let restored: RestorePoint | null;
    try {
      restored = await findRestorePoint(storage, job, pool, committedId === undefined ? undefined : (id) => id === committedId);
    } catch (e) {
      // Rebuilding is what to do when the checkpoints are gone: set the unusable ones aside.
      if (cfg.rebuildFrom === undefined || !(e as { noUsableCheckpoint?: boolean }).noUsableCheckpoint) throw e;
      log.say('warn', `joinery: ${(e as Error).message.split('. ')[0]}: set aside for the rebuild`, { code: 'E_CHECKPOINT' });
      await setAsideNewer(storage, 0);
      restored = null;
    }
    if (restored && cfg.rebuildFrom !== undefined) {
      throw new JoineryError('E_USAGE', `--rebuild-from: ${cfg.checkpointDir} holds usable checkpoint ${restored.manifest.id}: resume from it (leave out --rebuild-from and --resume-at), which is exact and faster`);
    }
    if (restored) await setAsideNewer(storage, restored.manifest.id);
    // Time-ordered run ids keep file names sortable by run.
    const runId = `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    return { storage, pool, job, runId, restored };
  } catch (e) {
    await pool.close();
    throw e;
  }
}

/**
 * Where file input `spec` (side 0 = --left) resumes. A checkpoint of file inputs always names
 * both: a file given under another name is taken only if it holds the same bytes before the
 * position (a moved file; checked by FileSource against the recorded identity). Otherwise it is
 * refused, because starting another file from byte 0 over the restored state and watermark would
 * turn its events late and join nothing.
 */
export function fileStartOf(ctx: CheckpointContext | null, spec: string, side: 0 | 1): NonNullable<SourcePosition['file']> | undefined {
  const m = ctx?.restored?.manifest;
  if (!m) return undefined;
  const byName = m.sources.find((s) => s.name === spec)?.file;
  if (byName) return byName;
  const files = m.sources.filter((s) => s.kind === 'file' && s.file);
  if (files.length === 0) return undefined; // a checkpoint of other inputs: other checks refuse it
  const same = files.find((s) => s.file!.side === side) ?? (files.every((s) => s.file!.side === undefined) ? files[side] : undefined);
  const flag = side === 0 ? '--left' : '--right';
  if (!same?.file?.identity) {
    throw new JoineryError('E_CHECKPOINT', `checkpoint ${m.id} in ${ctx!.storage.location} was taken with ${flag} ${same?.name ?? '(another input)'}, not ${spec}: ` +
      `resume with the same ${flag}, or start over with a new --checkpoint-dir (and a new output)`);
  }
  log.say('info', `joinery: ${flag} ${spec} was ${same.name} when checkpoint ${m.id} was taken: resuming it if it holds the same bytes`);
  return same.file;
}

/** The restored position of the source with this name, if any. */
export function startOf(ctx: CheckpointContext | null, name: string): SourcePosition | undefined {
  return ctx?.restored?.manifest.sources.find((s) => s.name === name);
}

/** Where the generator resumes: its position and, when the checkpoint stored one, a reader of its state. */
export function genStartOf(ctx: CheckpointContext | null): { delivered: [number, number]; baseMs: number; state?: () => Promise<Uint8Array> } | undefined {
  const p = startOf(ctx, 'gen:');
  if (!p?.gen) return undefined;
  const ref = p.state, storage = ctx!.storage;
  return { delivered: p.gen.delivered, baseMs: p.gen.baseMs, state: ref ? () => storage.readFile(ref.name) : undefined };
}
