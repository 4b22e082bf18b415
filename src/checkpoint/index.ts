/**
 * Opening the checkpoint directory at start: storage, side pool, and the restore point (if any).
 * Called before the sources are built, because a restore decides where they start.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import type { Manifest, SourcePosition } from './manifest.js';
import { SidePool } from './pool.js';
import { findRestorePoint, setAsideNewer, type RestorePoint } from './restore.js';
import { LocalDirStorage, type CheckpointStorage } from './storage.js';

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

/**
 * `committedId`: with transactional output, the checkpoint whose transaction the output system
 * committed last (0 = none): only that one can be resumed, newer ones never became visible. With 0,
 * no output of this job was ever committed, so starting over is exact: older manifests are set aside.
 */
export async function openCheckpoints(cfg: Config, committedId?: number): Promise<CheckpointContext | null> {
  if (!cfg.checkpointDir) return null;
  const storage = new LocalDirStorage(cfg.checkpointDir);
  const pool = new SidePool();
  try {
    const job = jobOf(cfg);
    if (committedId === 0 && storage.listManifests().length > 0) {
      process.stderr.write(`joinery: no checkpoint of this job was ever committed with its output (consumer group ${cfg.group}): starting over; the checkpoints in ${cfg.checkpointDir} are set aside\n`);
      setAsideNewer(storage, 0);
    }
    let restored: RestorePoint | null;
    try {
      restored = await findRestorePoint(storage, job, pool, committedId === undefined ? undefined : (id) => id === committedId);
    } catch (e) {
      // Rebuilding is what to do when the checkpoints are gone: set the unusable ones aside.
      if (cfg.rebuildFrom === undefined || !(e as { noUsableCheckpoint?: boolean }).noUsableCheckpoint) throw e;
      process.stderr.write(`joinery: ${(e as Error).message.split('. ')[0]}: set aside for the rebuild\n`);
      setAsideNewer(storage, 0);
      restored = null;
    }
    if (restored && cfg.rebuildFrom !== undefined) {
      throw new JoineryError('E_USAGE', `--rebuild-from: ${cfg.checkpointDir} holds usable checkpoint ${restored.manifest.id}: resume from it (leave out --rebuild-from and --resume-at), which is exact and faster`);
    }
    if (restored) setAsideNewer(storage, restored.manifest.id);
    // Time-ordered run ids keep file names sortable by run.
    const runId = `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    return { storage, pool, job, runId, restored };
  } catch (e) {
    await pool.close();
    throw e;
  }
}

/** The restored position of the source with this name, if any. */
export function startOf(ctx: CheckpointContext | null, name: string): SourcePosition | undefined {
  return ctx?.restored?.manifest.sources.find((s) => s.name === name);
}
