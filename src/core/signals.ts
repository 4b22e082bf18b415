/**
 * Stop signals (SIGTERM, SIGINT) for the whole process, through one listener per signal that is
 * installed once and never removed; the parts that want them (the engine's graceful stop, a group
 * member between engine runs, verify's cleanup) push a handler and pop it when done. The newest
 * handler gets the signal.
 *
 * Why not process.on/off in each part: Node keeps one libuv signal handle per signal while it has
 * listeners. When the last listener goes, the handle is stopped, and a signal that libuv had already
 * caught for it but the event loop had not yet dispatched is dropped, even when a new listener is
 * added in the same tick. A group member handing the signal to a fresh engine run lost a SIGTERM
 * that way and ran on (test/unit/signal-hub.test.ts reproduces it with plain process.on/off).
 *
 * With no handler pushed, a signal ends the process as Node's default would (the listener removes
 * itself and sends the signal again).
 */
export type StopSignal = 'SIGTERM' | 'SIGINT';
export type StopSignalHandler = (sig: StopSignal) => void;

const SIGNALS: readonly StopSignal[] = ['SIGTERM', 'SIGINT'];
const stack: StopSignalHandler[] = [];
let installed = false;

function dispatch(sig: StopSignal): void {
  const top = stack[stack.length - 1];
  if (top) { top(sig); return; }
  // Nobody wants it: behave like a process without listeners.
  for (const s of SIGNALS) process.off(s, dispatch);
  installed = false;
  process.kill(process.pid, sig);
}

/** Take stop signals until the returned function is called (newest handler first). */
export function onStopSignal(handler: StopSignalHandler): () => void {
  if (!installed) {
    installed = true;
    for (const s of SIGNALS) process.on(s, dispatch);
  }
  stack.push(handler);
  let popped = false;
  return () => {
    if (popped) return;
    popped = true;
    const i = stack.lastIndexOf(handler);
    if (i >= 0) stack.splice(i, 1);
  };
}
