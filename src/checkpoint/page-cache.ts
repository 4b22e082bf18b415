/**
 * Takes checkpoint files out of the page cache once they are durable.
 *
 * Why: a change file is written once and read again only by a restore, yet after its checkpoint its
 * pages stay in the page cache until the kernel ages them out, in the place of the join buffer's
 * LMDB pages, which probes read at random. With the state larger than memory that is the cost that
 * matters: in a 3 GiB cgroup at 2.3–2.6 GiB buffered, a checkpoint's files held 250–300 MB of the
 * ~2.2 GB of page cache, and dropping them (docs/architecture.md §5, "State larger than memory")
 * cut the major faults per event by about a third there.
 *
 * How: Node has no posix_fadvise, and coreutils `dd if=FILE iflag=nocache count=0` is documented
 * to call posix_fadvise(POSIX_FADV_DONTNEED) on the whole file. Spawning dd per file would fork
 * the whole node process each time (measured: ~28 ms of CPU and 60 ms with 2.4 GB resident, every
 * thread's page faults held meanwhile), so each thread that asks starts one small `sh` once, which
 * reads paths on its stdin and runs dd for each. Advisory and best effort: on a platform other than
 * Linux, or where sh or a dd with `iflag=nocache` is missing (busybox), it turns itself off and the
 * kernel evicts the pages as before. A path goes to it only once its file is durable (fsynced), or
 * the part of it written so far is (a worker's delta after each early fdatasync: change-writer.ts);
 * the kernel leaves dirty pages in place.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

// The first command checks that this dd knows iflag=nocache (on a file it makes): exit 3 if not.
// dd's failures later (a file removed meanwhile) are ignored.
const SCRIPT = 't=$(mktemp) || exit 3; dd if="$t" iflag=nocache count=0 status=none 2>/dev/null; r=$?; rm -f "$t"; [ "$r" = 0 ] || exit 3; '
  + 'while IFS= read -r f; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done';

/** This thread's helper: undefined until first used, null once off. */
let helper: ChildProcess | null | undefined;

/** Whether dropping is on in this thread (false once the helper failed or exited, or off Linux). */
export function pageCacheDropActive(): boolean {
  return helper !== null && process.platform === 'linux';
}

/**
 * Asks the kernel to drop `path`'s cached pages (clean pages only: call it once the file, or the
 * part to drop, is on disk). Returns at once; the drop happens shortly after, in the helper.
 */
export function dropCachedPages(path: string): void {
  if (helper === null || process.platform !== 'linux' || path.includes('\n')) return;
  if (helper === undefined) {
    try {
      helper = spawn('sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'] });
    } catch {
      helper = null;
      return;
    }
    const h = helper;
    const off = (): void => { if (helper === h) helper = null; };
    h.on('error', off);
    h.on('exit', off);
    h.stdin!.on('error', off);
    // Neither keeps the thread's event loop alive: the helper ends when its stdin closes with us.
    h.unref();
    (h.stdin as unknown as Socket).unref();
  }
  helper.stdin!.write(`${path}\n`);
}
