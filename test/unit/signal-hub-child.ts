/**
 * Child of signal-hub.test.ts (signals go to a whole process, so each case runs in its own).
 * Prints one line per handled signal ("A SIGTERM"), then "done". MODE:
 * - handover: a signal caught while handler A is pushed, with A popped and B pushed before the
 *   event loop dispatches it (what a group member does when it starts an engine run).
 * - newest: A and B pushed: B gets the first signal; once B is popped, A gets the second.
 * - none: A pushed and popped, then a signal: the process ends by it (Node's default).
 */
import { onStopSignal } from '../../src/core/signals.js';

const mode = process.argv[2];
const say = (who: string) => (sig: string) => { process.stdout.write(`${who} ${sig}\n`); };
const spin = (ms: number) => { const t = Date.now(); while (Date.now() - t < ms) { /* the signal arrives meanwhile */ } };
const finish = () => setTimeout(() => { process.stdout.write('done\n'); process.exit(0); }, 300);

if (mode === 'handover') {
  const popA = onStopSignal(say('A'));
  setTimeout(() => {
    process.kill(process.pid, 'SIGTERM');
    spin(50);
    popA();
    onStopSignal(say('B'));
    finish();
  }, 20);
} else if (mode === 'newest') {
  onStopSignal(say('A'));
  const popB = onStopSignal(say('B'));
  setTimeout(() => {
    process.kill(process.pid, 'SIGINT');
    setTimeout(() => { popB(); process.kill(process.pid, 'SIGTERM'); finish(); }, 50);
  }, 20);
} else if (mode === 'none') {
  onStopSignal(say('A'))();
  setTimeout(() => { process.kill(process.pid, 'SIGTERM'); finish(); }, 20);
}
