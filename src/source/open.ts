/**
 * A `file:PATH` input: NDJSON, size-prefixed FlatBuffers or Parquet. Parquet follows from the
 * name (`*.parquet`) or `--format parquet`; the others from `--format` (default NDJSON).
 */
import type { FileIdentity } from '../checkpoint/manifest.js';
import type { FileSourceEndpoint } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import type { Side } from '../state/store.js';
import { FileSource } from './file.js';
import { ParquetSource } from './parquet.js';

export type FileFormat = 'json' | 'flatbuffers' | 'parquet';

export function fileFormatOf(filePath: string, format: Config['format']): FileFormat {
  if ((format as FileFormat | undefined) === 'parquet' || /\.parquet$/i.test(filePath)) return 'parquet';
  return format ?? 'json';
}

/** The key, time and id fields of one side (per-side flags override the common ones). */
export function sideFieldsOf(cfg: Config, side: Side): { key: string[]; time: string; id: string } {
  return {
    key: (side === 0 ? cfg.leftKey : cfg.rightKey) ?? cfg.key,
    time: (side === 0 ? cfg.leftTime : cfg.rightTime) ?? cfg.time,
    id: (side === 0 ? cfg.leftId : cfg.rightId) ?? cfg.id,
  };
}

/**
 * Open a file input for `side`; `start` resumes at a checkpoint position (a row index for
 * Parquet). Returns the source and the format its records reach the workers in (Parquet rows
 * travel as JSON text).
 */
export function openFileInput(cfg: Config, input: FileSourceEndpoint, side: Side, start?: { byte: number; line: number; identity?: FileIdentity }): { source: FileSource | ParquetSource; format: 'json' | 'flatbuffers'; fileFormat: FileFormat } {
  const file = input.path;
  const fileFormat = fileFormatOf(file, cfg.format);
  if (fileFormat === 'parquet') return { source: new ParquetSource(file, side, sideFieldsOf(cfg, side), start), format: 'json', fileFormat };
  return { source: new FileSource(file, side, fileFormat, start), format: fileFormat, fileFormat };
}
