/**
 * Output files must never be an input, another output, or live inside the state or checkpoint
 * directory: opening a sink truncates its file, so `--out file:X` with X an input (directly,
 * through a symlink or a hard link) would destroy the input and then "succeed" on nothing.
 * Checked before anything is opened for writing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { endpointsOf } from './endpoints.js';
import type { Config } from './schema.js';
import { lockOutputFile } from '../core/dirlock.js';
import { usageError } from '../core/errors.js';

/** Where a path really is: the real path of its nearest existing ancestor joined with the rest (dangling symlinks followed). */
export function canonicalPath(p: string, depth = 0): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch { /* missing (or a dangling symlink): resolve what exists */ }
  if (depth < 32) {
    try {
      if (fs.lstatSync(abs).isSymbolicLink()) return canonicalPath(path.resolve(path.dirname(abs), fs.readlinkSync(abs)), depth + 1);
    } catch { /* does not exist */ }
  }
  const parent = path.dirname(abs);
  if (parent === abs) return abs;
  return path.join(canonicalPath(parent, depth + 1), path.basename(abs));
}

/** Device and inode of an existing file (hard links share them), else null. */
function fileId(p: string): string | null {
  try {
    const s = fs.statSync(p);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

function inside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

interface Named { flag: string; path: string; canonical: string; id: string | null }

function named(flag: string, p: string): Named {
  return { flag, path: p, canonical: canonicalPath(p), id: fileId(p) };
}

function same(a: Named, b: Named): boolean {
  return a.canonical === b.canonical || (a.id !== null && a.id === b.id);
}

/** Whether two paths name one file: the same real path (symlinks followed, missing files too) or, existing, the same inode (hard links). */
export function sameFile(a: string, b: string): boolean {
  return same(named('', a), named('', b));
}

/** Refuse (E_USAGE) outputs that resolve to an input, to each other, or into the state/checkpoint directory. */
export function checkOutputPaths(cfg: Config): void {
  const outputs: Named[] = [];
  const ep = endpointsOf(cfg);
  for (const [flag, e] of [['out', ep.out], ['late-out', ep.lateOut], ['dead-letter', ep.deadLetter]] as const) {
    if (e?.kind === 'file') outputs.push(named(`--${flag}`, e.path));
  }
  if (outputs.length === 0) return;
  const inputs: Named[] = [];
  for (const [flag, e] of [['left', ep.left], ['right', ep.right]] as const) {
    if (e?.kind === 'file') inputs.push(named(`--${flag}`, e.path));
  }
  if (cfg.config) inputs.push(named('--config', cfg.config));
  if (cfg.resumeAt && !/^\d+,\d+$/.test(cfg.resumeAt)) inputs.push(named('--resume-at', cfg.resumeAt));
  for (let i = 0; i < outputs.length; i++) {
    const o = outputs[i];
    for (const inp of inputs) {
      if (same(o, inp)) {
        throw usageError(`${o.flag} file:${o.path} is the ${inp.flag} input ${inp.path}${o.canonical === path.resolve(o.path) && o.canonical === path.resolve(inp.path) ? '' : ` (both resolve to ${o.canonical === inp.canonical ? o.canonical : 'the same file'})`}: writing it would destroy the input; choose another output file`);
      }
    }
    for (const other of outputs.slice(0, i)) {
      if (same(o, other)) throw usageError(`${o.flag} file:${o.path} and ${other.flag} file:${other.path} are the same file (${o.canonical}): give each output its own file`);
    }
    const dirs: Array<[string, string | undefined]> = [['--checkpoint-dir', cfg.checkpointDir], ['--state-dir', cfg.state === 'memory' ? undefined : cfg.stateDir]];
    for (const [flag, d] of dirs) {
      if (d && inside(canonicalPath(d), o.canonical)) {
        throw usageError(`${o.flag} file:${o.path} lies inside ${flag} ${d}, which joinery manages (it clears and rewrites files there): put the output elsewhere`);
      }
    }
  }
}

/**
 * What every command that writes outputs does before it starts: checkOutputPaths, then a lock on
 * every file output (--out, --late-out, --dead-letter) for this process, so that a second run
 * writing the same file stops with E_LOCKED instead of truncating and interleaving the first
 * one's output (core/dirlock.ts).
 */
export function claimOutputPaths(cfg: Config): void {
  checkOutputPaths(cfg);
  lockOutputPaths(cfg);
}

function lockOutputPaths(cfg: Config): void {
  const ep = endpointsOf(cfg);
  for (const [flag, e] of [['--out', ep.out], ['--late-out', ep.lateOut], ['--dead-letter', ep.deadLetter]] as const) {
    if (e?.kind === 'file') lockOutputFile(e.path, flag);
  }
}
