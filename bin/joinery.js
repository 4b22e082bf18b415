#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled TypeScript (npm's `prepare` builds dist/ on `npm ci`).
import('../dist/src/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; },
);
