/** The sources under src/, read once for the tests that check the code's shape (boundaries, log path, module graph). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/unit/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** A path relative to the repository root, with forward slashes (`src/core/log.ts`). */
export const repoRel = (p: string): string => path.relative(repoRoot, p).split(path.sep).join('/');

export interface SrcFile { file: string; abs: string; text: string }

/** Every .ts file under src/. */
export function srcFiles(): SrcFile[] {
  return tsFiles(path.join(repoRoot, 'src')).map((p) => ({ file: repoRel(p), abs: p, text: fs.readFileSync(p, 'utf8') }));
}
