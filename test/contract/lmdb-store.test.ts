import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LmdbStore } from '../../src/state/lmdb-store.js';
import { openStore } from '../../src/state/index.js';
import { fnv1a, storeContract } from './store.contract.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-lmdb-contract-'));
let n = 0;
const freshDir = () => path.join(root, `store-${n++}`);
after(() => fs.rmSync(root, { recursive: true, force: true }));

storeContract('lmdb', () => LmdbStore.open(freshDir()));
// A 16-slot probe filter: nearly every key collides, so the contract also checks that filter
// collisions never hide entries (they may only cost a useless range read).
storeContract('lmdb with a 4-bit probe filter', () => LmdbStore.open(freshDir(), { filterBits: 4 }));
storeContract('lmdb via openStore', () => openStore('lmdb', freshDir()));

const b = (s: string) => new TextEncoder().encode(s);

describe('LmdbStore specifics', () => {
  test('inserting and expiring everything in one batch commits (the MDB_WRITEMAP freelist abort)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-lmdb-wm-'));
    try {
      const s = LmdbStore.open(dir);
      const b = (x: string) => Buffer.from(x);
      for (let round = 0; round < 3; round++) {
        s.batch(() => {
          for (let i = 0; i < 50; i++) s.insert((i & 1) as 0 | 1, i % 7, i * 2654435761 >>> 0, b(`[${i % 5}]`), 1000 + i, b(`"e${round}-${i}"`), b('{}'), false, 2000);
          s.probe(0, 5, 123, b('[1]'), 0, 5000, () => false);
          assert.equal(s.expire(Infinity), 50);
        });
        assert.equal(s.count(), 0);
      }
      await s.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('open creates a missing directory (and parents)', async () => {
    const dir = path.join(freshDir(), 'a', 'b');
    const s = LmdbStore.open(dir);
    try {
      assert.ok(fs.statSync(dir).isDirectory());
    } finally {
      await s.close();
    }
  });

  test('openStore("lmdb") without a directory is an E_STATE error', () => {
    assert.throws(() => openStore('lmdb'), { code: 'E_STATE' });
  });

  test('contents, count, bytes and the probe filter survive close and reopen', async () => {
    const dir = freshDir();
    const s1 = LmdbStore.open(dir);
    s1.batch(() => {
      for (let i = 0; i < 100; i++) {
        const key = b(`k${i % 10}`);
        s1.insert((i % 2) as 0 | 1, i % 3, fnv1a(key), key, i, b(`id${i}`), b(`payload${i}`), i % 4 === 0, 1000 + i);
      }
    });
    const count = s1.count();
    const bytes = s1.bytes();
    await s1.close();
    const s2 = LmdbStore.open(dir);
    try {
      assert.equal(s2.count(), count);
      assert.equal(s2.bytes(), bytes);
      const key = b('k3');
      const seen: number[] = [];
      s2.batch(() => s2.probe(1, 0, fnv1a(key), key, 0, 1000, (e) => { seen.push(e.ts); }));
      assert.deepEqual(seen, [3, 33, 63, 93].filter((i) => i % 3 === 0));
      assert.equal(s2.batch(() => s2.insert(1, 0, fnv1a(key), key, 3, b('id3'), b('x'), false, 5)), false, 'still a duplicate');
      assert.equal(s2.batch(() => s2.expire(Infinity)), 100);
      assert.equal(s2.count(), 0);
      assert.equal(s2.bytes(), 0);
    } finally {
      await s2.close();
    }
  });

  test('a batch that throws is rolled back, counters and expiry bookkeeping included', async () => {
    const s = LmdbStore.open(freshDir());
    try {
      const key = b('k');
      s.batch(() => s.insert(0, 0, fnv1a(key), key, 1, b('a'), b('p'), false, 10));
      const bytes = s.bytes();
      // Abort after an expire inside the batch...
      assert.throws(() => s.batch(() => {
        s.insert(0, 0, fnv1a(key), key, 2, b('b'), b('p'), false, 10);
        s.expire(Infinity);
        throw new Error('boom');
      }), /boom/);
      // ...and abort with inserts whose expiry is not yet written anywhere.
      assert.throws(() => s.batch(() => {
        s.insert(1, 0, fnv1a(key), key, 3, b('c'), b('p'), false, 10);
        s.insert(0, 0, fnv1a(key), key, 4, b('d'), b('p'), false, 10);
        throw new Error('boom');
      }), /boom/);
      assert.equal(s.count(), 1);
      assert.equal(s.bytes(), bytes);
      const seen: string[] = [];
      s.batch(() => s.probe(0, 0, fnv1a(key), key, 0, 10, (e) => { seen.push(new TextDecoder().decode(e.id)); }));
      assert.deepEqual(seen, ['a']);
      assert.deepEqual(s.batch(() => s.probe(1, 0, fnv1a(key), key, 0, 10, () => { throw new Error('nothing on side 1'); })), undefined);
      const expired: string[] = [];
      assert.equal(s.batch(() => s.expire(Infinity, (e) => { expired.push(new TextDecoder().decode(e.id)); })), 1);
      assert.deepEqual(expired, ['a']);
      assert.equal(s.count(), 0);
      assert.equal(s.bytes(), 0);
    } finally {
      await s.close();
    }
  });

  test('after reopen, new entries with the same expiry as old ones do not replace their expiry records', async () => {
    const dir = freshDir();
    const key = b('k');
    const s1 = LmdbStore.open(dir);
    s1.batch(() => s1.insert(0, 0, fnv1a(key), key, 1, b('old'), b('p'), false, 100));
    await s1.close();
    const s2 = LmdbStore.open(dir);
    try {
      s2.batch(() => s2.insert(0, 0, fnv1a(key), key, 2, b('new'), b('p'), false, 100));
      assert.equal(s2.count(), 2);
      const expired: string[] = [];
      assert.equal(s2.batch(() => s2.expire(101, (e) => { expired.push(new TextDecoder().decode(e.id)); })), 2);
      assert.deepEqual(expired.sort(), ['new', 'old']);
      assert.equal(s2.count(), 0);
      const left: number[] = [];
      s2.batch(() => s2.probe(0, 0, fnv1a(key), key, -Infinity, Infinity, (e) => { left.push(e.ts); }));
      assert.deepEqual(left, []);
    } finally {
      await s2.close();
    }
  });

  test('operations after close fail with E_STATE', async () => {
    const s = LmdbStore.open(freshDir());
    await s.close();
    await s.close(); // idempotent
    assert.throws(() => s.batch(() => 1), { code: 'E_STATE' });
  });

  test('an over-long key is an E_STATE error, not a crash', async () => {
    const s = LmdbStore.open(freshDir());
    try {
      const key = new Uint8Array(3000);
      assert.throws(() => s.batch(() => s.insert(0, 0, 1, key, 1, b('i'), b('p'), false, 2)), { code: 'E_STATE' });
      assert.equal(s.count(), 0);
    } finally {
      await s.close();
    }
  });
});
