#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled TypeScript (npm's `prepare` builds dist/ on `npm ci`).
// The work is over once main settles: if a stuck thread (say a worker blocked in native code
// after a failure) keeps the process alive, leave anyway after a grace period.
const leave = () => { setTimeout(() => process.exit(), 3000).unref(); };
import('../dist/src/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; leave(); },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; leave(); },
);
