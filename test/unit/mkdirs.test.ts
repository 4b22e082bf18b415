import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mkdirs } from '../../src/core/mkdirs.js';

test('mkdirs creates the missing parents and returns the first directory made, undefined when it existed', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mkdirs-'));
  try {
    const deep = path.join(root, 'a', 'b', 'c');
    assert.equal(mkdirs(deep), path.join(root, 'a'));
    assert.ok(fs.statSync(deep).isDirectory());
    assert.equal(mkdirs(deep), undefined);
    assert.equal(mkdirs(path.join(root, 'a', 'b', 'd')), path.join(root, 'a', 'b', 'd'));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('mkdirs refuses a path through a file (ENOTDIR), leaving nothing behind', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mkdirs-'));
  try {
    fs.writeFileSync(path.join(root, 'f'), 'x');
    assert.throws(() => mkdirs(path.join(root, 'f', 'sub', 'dir')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR');
    assert.deepEqual(fs.readdirSync(root), ['f']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// Node 20's mkdirSync(dir, { recursive: true }) loops forever here (mkdir gives ENOENT under an existing /proc).
test('mkdirs under /proc fails at once instead of spinning', { skip: !fs.existsSync('/proc/self') && 'no /proc on this system' }, () => {
  const t0 = Date.now();
  assert.throws(() => mkdirs('/proc/joinery-no-such/dir'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  assert.ok(Date.now() - t0 < 1000);
});
