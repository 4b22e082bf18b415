/**
 * Key, time and id extraction from one NDJSON record. JSON has no random access, so this parses
 * the line; the record itself travels on as the original bytes and is written to the output
 * verbatim, so nothing is re-serialised.
 */
export interface Extractor {
  keyText: string;   // canonical key: JSON array text of the key values, e.g. [7,42] or ["a",3]
  ts: number;
  idText: string;    // canonical id: JSON text, e.g. "imp-9" or 17
  error: string;
  extract(bytes: Uint8Array, start: number, end: number): boolean;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function path(field: string): string[] {
  return field.split('.');
}

function lookup(obj: unknown, p: string[]): unknown {
  let v = obj;
  for (let i = 0; i < p.length; i++) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p[i]];
  }
  return v;
}

/** Canonical text of a key or id value; undefined when the value cannot serve as one. */
export function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

export class JsonExtractor implements Extractor {
  keyText = '';
  ts = 0;
  idText = '';
  error = '';
  private readonly keyPaths: string[][];
  private readonly timePath: string[];
  private readonly idPath: string[];
  constructor(private readonly keyFields: string[], private readonly timeField: string, private readonly idField: string) {
    this.keyPaths = keyFields.map(path);
    this.timePath = path(timeField);
    this.idPath = path(idField);
  }

  extract(bytes: Uint8Array, start: number, end: number): boolean {
    let rec: unknown;
    try {
      rec = JSON.parse(decoder.decode(bytes.subarray(start, end)));
    } catch (e) {
      this.error = `not JSON: ${(e as Error).message}`;
      return false;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      this.error = 'not a JSON object';
      return false;
    }
    let key = '[';
    for (let i = 0; i < this.keyPaths.length; i++) {
      const t = scalarText(lookup(rec, this.keyPaths[i]));
      if (t === undefined) {
        this.error = `missing or non-scalar key field "${this.keyFields[i]}"`;
        return false;
      }
      key += i === 0 ? t : ',' + t;
    }
    this.keyText = key + ']';
    const tv = lookup(rec, this.timePath);
    const ts = typeof tv === 'number' ? tv : typeof tv === 'string' && tv.trim() !== '' ? Number(tv) : NaN;
    if (!Number.isFinite(ts)) {
      this.error = tv === undefined ? `missing time field "${this.timeField}"` : `non-numeric time field "${this.timeField}": ${JSON.stringify(tv)}`;
      return false;
    }
    this.ts = ts;
    const id = scalarText(lookup(rec, this.idPath));
    if (id === undefined) {
      this.error = `missing or non-scalar id field "${this.idField}"`;
      return false;
    }
    this.idText = id;
    return true;
  }
}
