/**
 * The cache key of a data set the benches generate once with `joinery gen` and keep under $TMPDIR:
 * the gen flags plus the compiled code that decides the bytes (the generator, the gen command, the
 * FlatBuffers writer; Parquet is written in the gen command). Keyed by the flags alone, a cache made
 * by an older `gen` was used silently after a change to its output: when a `gen` that lost the last
 * events of one side was fixed, the caches made before the fix were still picked up.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
const GEN_CODE = ['gen-command.js', 'source/generator.js', 'source/gen-parts.js', 'codec/flat-writer.js', 'codec/flat-build.js'];

/** 12 hex digits naming a data set made by `joinery gen` with these flags and this build. */
export function genCacheKey(genFlags: readonly string[]): string {
  const h = createHash('sha256').update(JSON.stringify(genFlags));
  for (const f of GEN_CODE) h.update(f).update(fs.readFileSync(path.join(dist, f)));
  return h.digest('hex').slice(0, 12);
}
