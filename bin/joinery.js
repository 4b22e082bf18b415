#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled TypeScript (npm's `prepare` builds dist/ on `npm ci`).
// The work is over once main settles: if a stuck thread (say a worker blocked in native code
// after a failure) keeps the process alive, leave anyway after a grace period.
// Half V8's default cumulative inlining budget (920 bytes of bytecode per optimized function): a run
// recompiles its hot functions several times while their type feedback settles, and those TurboFan
// compiles were ~65 % of the CPU outside the router and worker threads (~0.5 µs per event of a 2M-event
// bench). Measured: that share −0.13 to −0.15 µs per event, the threads' own CPU unchanged
// (docs/architecture.md §5, "Main thread and other"). Flags are per process: worker threads inherit it.
import { setFlagsFromString } from 'node:v8';
setFlagsFromString('--max-inlined-bytecode-size-cumulative=460');
const leave = () => { setTimeout(() => process.exit(), 3000).unref(); };
import('../dist/src/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; leave(); },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; leave(); },
);
