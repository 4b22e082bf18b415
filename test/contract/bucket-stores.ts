/**
 * Bucket stores for contract tests: each in its own directory under one temp root that is removed
 * after the file's tests; `withStore` opens one, runs `fn` and closes it even when `fn` throws.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import { BucketStore, type BucketStoreOptions } from '../../src/state/bucket-store.js';
import type { Buffered, Side } from '../../src/state/store.js';

export function bucketStores(label: string): (options: BucketStoreOptions, fn: (s: BucketStore) => void | Promise<void>) => Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `joinery-${label}-`));
  let dirs = 0;
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  return async (options, fn) => {
    const s = BucketStore.open(path.join(root, `store-${dirs++}`), options);
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** UTF-8 bytes of a key or id. */
export const b = (s: string): Uint8Array => enc.encode(s);

/** A buffered entry as plain data, for deepEqual. */
export interface Snap { side: Side; keyGroup: number; key: string; ts: number; id: string; payload: number[]; joined: boolean }
export const snap = (e: Buffered): Snap => ({
  side: e.side, keyGroup: e.keyGroup, key: dec.decode(e.key), ts: e.ts, id: dec.decode(e.id), payload: [...e.payload], joined: e.joined,
});
