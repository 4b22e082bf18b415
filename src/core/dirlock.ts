/**
 * One joinery process per state or checkpoint directory. Two processes on one directory clear
 * each other's LMDB environments and delete each other's checkpoint files, and their outputs
 * duplicate each other; so each directory gets a lock file, DIR/.joinery.lock, holding the owner's
 * pid, its start time (from /proc/PID/stat, so a reused pid is not mistaken for the owner) and
 * the boot id. Node has no flock, so the file is created atomically (written under a temporary
 * name, then hard-linked into place, which fails if the lock exists) and is removed at exit. A
 * process killed with -9 leaves it behind: the next start finds its owner dead (no such pid, or a
 * pid with another start time, or another boot) and takes the lock over.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JoineryError } from './errors.js';
import { mkdirs } from './mkdirs.js';

export const LOCK_FILE = '.joinery.lock';

interface Owner { pid: number; startTicks: string | null; bootId: string | null; host: string; since: string; command: string }

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or null where /proc is not there. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function bootId(): string | null {
  try { return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { return null; }
}

function alive(o: Owner): boolean {
  if (o.host !== os.hostname()) return true; // cannot tell: another machine on shared storage
  const boot = bootId();
  if (o.bootId && boot && o.bootId !== boot) return false;
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = processStartTicks(o.pid);
  return !(o.startTicks && ticks && ticks !== o.startTicks);
}

function readOwner(file: string): Owner | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as Owner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null;
  }
}

const held = new Map<string, { file: string; count: number; created: boolean }>();
let exitHook = false;

function releaseAll(): void {
  for (const { file, created } of held.values()) {
    const o = readOwner(file);
    if (o && o.pid === process.pid) { try { fs.rmSync(file, { force: true }); } catch { /* best effort */ } }
    // a run that failed before using the directory it created leaves nothing behind
    if (created) { try { fs.rmdirSync(path.dirname(file)); } catch { /* not empty: in use */ } }
  }
  held.clear();
}

/**
 * Take DIR's lock for this process (creating DIR), or throw E_LOCKED naming the holder. Taking a
 * lock this process already holds is allowed (one directory may serve as state and checkpoint
 * directory). Released when the process exits, however it exits short of kill -9.
 */
export function lockDir(dir: string, flag: string): void {
  let created: boolean;
  try {
    created = mkdirs(dir) !== undefined;
  } catch (e) {
    throw new JoineryError('E_OUTPUT', `${flag} ${dir} is not writable: ${(e as Error).message}`);
  }
  const real = fs.realpathSync(dir);
  takeLock(real, path.join(real, LOCK_FILE), `${flag} ${dir}`, created, true);
}

/**
 * Take the lock of an output file, the hidden FILE's-directory/.NAME.joinery.lock beside it, or
 * throw E_LOCKED naming the holder: two runs writing one file truncate it under each other and
 * interleave their lines, and both report success. Nothing is locked for what is not a regular
 * file (a pipe, /dev/stdout), nor where the lock cannot be made (a directory this process may
 * not write in: the sink's own open then reports the output).
 */
export function lockOutputFile(file: string, flag: string): void {
  let real: string;
  try {
    real = fs.realpathSync(file);
    if (!fs.statSync(real).isFile()) return;
  } catch {
    try { real = path.join(fs.realpathSync(path.dirname(path.resolve(file))), path.basename(file)); } catch { return; }
  }
  takeLock(real, path.join(path.dirname(real), `.${path.basename(real)}${LOCK_FILE}`), `${flag} file:${file}`, false, false);
}

/**
 * The lock file `file` for what `key` names (`what`: its flag and path, for messages). `required`
 * (a directory): fail when the lock file cannot be made; else (an output file) go without it.
 */
function takeLock(key: string, file: string, what: string, created: boolean, required: boolean): void {
  const mine = held.get(key);
  if (mine) { mine.count++; return; }
  const me: Owner = { pid: process.pid, startTicks: processStartTicks(process.pid), bootId: bootId(), host: os.hostname(), since: new Date().toISOString(), command: process.argv.slice(2).join(' ').slice(0, 500) };
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(me) + '\n');
  } catch (e) {
    if (!required) return;
    throw new JoineryError('E_OUTPUT', `${what} is not writable: ${(e as Error).message}`);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          if (!required) return; // e.g. a file system without hard links: the output goes unlocked, as before
          throw new JoineryError('E_OUTPUT', `${what}: cannot create ${path.basename(file)}: ${(e as Error).message}`);
        }
      }
      const owner = readOwner(file);
      if (owner && alive(owner)) {
        throw new JoineryError('E_LOCKED', `${what} is in use by another joinery process (pid ${owner.pid}${owner.host !== os.hostname() ? ` on ${owner.host}` : ''}, since ${owner.since}): ` +
          `stop it first, or give this run its own ${required ? 'directory' : 'file'}${owner.host !== os.hostname() ? `; if that process is gone, remove ${file}` : ''}`);
      }
      if (attempt >= 5) throw new JoineryError('E_LOCKED', `${what}: could not take ${file} (it keeps changing); another joinery process is starting on it`);
      // Stale (its owner died) or unreadable: move it aside under a name of our own, and make
      // sure what we moved is what we judged, so two starters cannot both break it.
      const aside = `${file}.stale-${process.pid}`;
      try { fs.renameSync(file, aside); } catch { continue; }
      const moved = readOwner(aside);
      if (moved && alive(moved)) { // not the dead one we judged: another starter's fresh lock, put it back
        try { fs.linkSync(aside, file); } catch { /* someone else holds it now: the next round says who */ }
      }
      fs.rmSync(aside, { force: true });
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  held.set(key, { file, count: 1, created });
  if (!exitHook) { exitHook = true; process.on('exit', releaseAll); }
}
