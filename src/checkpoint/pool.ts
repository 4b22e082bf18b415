/**
 * The one file importing piscina: a small pool for checkpoint side work (tasks.ts). One thread on
 * this 2-core box (the shard workers and the router own the cores), `atomics: 'disabled'` so the
 * pool thread's event loop is never frozen between tasks (measured: docs/architecture.md §1),
 * niceIncrement so the side work yields to the join.
 */
import { Piscina } from 'piscina';
import type { CompactTask, SealedFile, SealTask } from './tasks.js';

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
  compact(task: CompactTask): Promise<Array<SealedFile & { keyGroups: [number, number] }>> {
    return this.pool.run(task, { name: 'compact' }) as Promise<Array<SealedFile & { keyGroups: [number, number] }>>;
  }
  /** The pool thread's kernel task id (Linux; null elsewhere), for per-thread CPU time. */
  tid(): Promise<number | null> {
    return this.pool.run(null, { name: 'tid' }) as Promise<number | null>;
  }
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
