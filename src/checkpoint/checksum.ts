/**
 * Checksums of checkpoint state files (change, base and in-flight files), recorded in the manifest
 * as `<algorithm>:<hex>` next to the file's length. They guard against torn and corrupt files, not
 * against an adversary: CRC-32 over the whole file plus its length catches every burst error up to
 * 32 bits and any truncation, at ~3x the speed of SHA-256 (zlib.crc32, no dependency) — the side
 * pool that computes it shares the cores with the join (docs/architecture.md §3). Manifests
 * written before format 3 name SHA-256 files; they are still verified with SHA-256.
 */
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';

export type ChecksumAlgo = 'crc32' | 'sha256';
/** The algorithm new checkpoints use. */
export const CHECKSUM_ALGO: ChecksumAlgo = 'crc32';

export interface Checksummer {
  update(b: Uint8Array): void;
  /** `<algorithm>:<hex>`, as recorded in the manifest. */
  digest(): string;
}

export function checksummer(algo: ChecksumAlgo = CHECKSUM_ALGO): Checksummer {
  if (algo === 'sha256') {
    const h = createHash('sha256');
    return { update: (b) => { h.update(b); }, digest: () => `sha256:${h.digest('hex')}` };
  }
  // engines says >=20.15; an older Node would otherwise fail each checkpoint with a bare TypeError.
  if (typeof zlib.crc32 !== 'function') throw new Error(`checkpoint checksums need Node >= 20.15 (zlib.crc32); this is Node ${process.version}`);
  let crc = 0;
  return {
    update: (b) => { crc = zlib.crc32(b, crc); },
    digest: () => `crc32:${(crc >>> 0).toString(16).padStart(8, '0')}`,
  };
}

const FORMS: Record<ChecksumAlgo, RegExp> = { crc32: /^crc32:[0-9a-f]{8}$/, sha256: /^sha256:[0-9a-f]{64}$/ };

/** The algorithm of a recorded checksum; null when it is not one this joinery can verify. */
export function algoOf(checksum: unknown): ChecksumAlgo | null {
  if (typeof checksum !== 'string') return null;
  for (const a of Object.keys(FORMS) as ChecksumAlgo[]) if (FORMS[a].test(checksum)) return a;
  return null;
}
