/**
 * The one file importing piscina: a small pool for checkpoint side work (tasks.ts). One thread on
 * this 2-core box (the shard workers and the router own the cores), `atomics: 'disabled'` so the
 * pool thread's event loop is never frozen between tasks (measured: docs/architecture.md §1),
 * niceIncrement so the side work yields to the join.
 */
import { Piscina } from 'piscina';
import type { StateFileRef } from './manifest.js';
import { expiryOf } from './file-expiry.js';
import type { CheckpointStorage } from './storage.js';
import type { CompactedFile, CompactTask, SealedFile, SealTask } from './tasks.js';

export class SidePool {
  private readonly pool: Piscina;
  constructor(threads = 1) {
    this.pool = new Piscina({
      filename: new URL('./tasks.js', import.meta.url).href,
      minThreads: threads, maxThreads: threads, idleTimeout: Infinity, atomics: 'disabled', niceIncrement: 5,
    });
  }
  seal(task: SealTask): Promise<SealedFile[]> {
    return this.pool.run(task, { name: 'seal' }) as Promise<SealedFile[]>;
  }
  compact(task: CompactTask): Promise<CompactedFile[]> {
    return this.pool.run(task, { name: 'compact' }) as Promise<CompactedFile[]>;
  }
  /** The pool thread's kernel task id (Linux; null elsewhere), for per-thread CPU time. */
  tid(): Promise<number | null> {
    return this.pool.run(null, { name: 'tid' }) as Promise<number | null>;
  }
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/**
 * Fold `files` of storage `from` into one base file per key-group range, published in storage `to`
 * as `<prefix>-kg<from>-<to>.base` (a coordinator's compaction: from = to; a member taking
 * partitions over: from = the previous owner's storage). Resolves with the new chain's bases.
 */
export async function compactInto(from: CheckpointStorage, pool: SidePool, to: CheckpointStorage, files: readonly StateFileRef[],
  o: Pick<CompactTask, 'ranges' | 'outer' | 'dropBeforeMs' | 'partitions'> & { prefix: string }): Promise<StateFileRef[]> {
  const paths = await from.fetch(files.map((f) => f.name));
  const staged = o.ranges.map(([a, b]) => to.stage(`${o.prefix}-kg${a}-${b}.base`));
  const out = await pool.compact({
    files: files.map((f, i) => ({ path: paths[i], keyGroups: f.keyGroups })), ranges: o.ranges, outer: o.outer,
    dropBeforeMs: o.dropBeforeMs, partitions: o.partitions, outPaths: staged.map((s) => s.localPath),
  });
  // The compaction made them durable and checksummed them as it wrote: publishing needs no second read.
  const published = await to.publish(staged, async () => out);
  return published.map((p, i) => ({ name: p.name, kind: 'base' as const, keyGroups: out[i].keyGroups, bytes: p.bytes, checksum: p.checksum, ...expiryOf(out[i].expireAtMaxMs) }));
}
