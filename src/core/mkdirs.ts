/**
 * `mkdir -p` without `fs.mkdirSync(dir, { recursive: true })`: on a path under /proc (where
 * mkdir fails with ENOENT although the parent exists) Node 20's recursive mkdir retries forever at
 * 100 % CPU, so `--state-dir /proc/x` hung the node silently. This one walks up to the nearest
 * existing ancestor and creates each missing directory once; any failure is thrown as it is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Creates dir and its missing parents. Returns the first directory created, or undefined when dir existed (as mkdirSync recursive does). */
export function mkdirs(dir: string): string | undefined {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let st: fs.Stats | undefined;
    try { st = fs.statSync(d); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    if (st !== undefined) {
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: 'ENOTDIR', path: d });
      break;
    }
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(missing[i]).isDirectory()) throw e; // EEXIST: made meanwhile by another process
    }
  }
  return missing.length > 0 ? missing[missing.length - 1] : undefined;
}
