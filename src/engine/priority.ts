/**
 * The main thread's scheduling priority against the workers (--router-priority).
 *
 * Why: with fewer workers than cores, the router (inputs, routing, the Kafka client, output) has
 * slack and the workers set the pace, but the scheduler shares a core between whichever threads
 * are runnable: the router, V8's helper threads and other processes took turns with the one
 * worker of a Kafka-to-Kafka run on 2 cores. Five nice steps lower for the main thread, and the
 * worker runs whenever it can: 492–509k → 530–552k events/s (3 interleaved pairs, 4M events).
 * With as many workers as cores the router feeds them all and must not wait: `bench` with 2
 * workers on 2 cores ran ~10 % slower with it lowered, so auto leaves it alone there.
 *
 * Linux applies setpriority(PRIO_PROCESS, tid) to one thread, and the main thread's tid is the
 * pid. Threads take their creator's nice value when they start, so this runs once the workers
 * exist; threads started later by the main thread (libuv's pool) start lowered, which suits them.
 * Lowering one's own priority needs no privilege; a failure leaves it as it was.
 */
import * as os from 'node:os';
import { log } from '../core/log.js';

/** Nice steps below the workers for the main thread when lowered. */
export const ROUTER_NICE_STEPS = 5;

/** How many nice steps to lower the main thread by, for the mode, worker count, cores and platform. */
export function routerNiceSteps(mode: 'auto' | 'lower' | 'normal', workers: number, cores: number, platform: NodeJS.Platform): number {
  if (platform !== 'linux' || mode === 'normal') return 0;
  if (mode === 'lower') return ROUTER_NICE_STEPS;
  return workers < cores ? ROUTER_NICE_STEPS : 0;
}

/** The main thread's nice value before the first lowering (a group member runs the engine again and again). */
let baseNice: number | null = null;

/** Back to the process's own priority before starting workers (threads inherit their creator's). */
export function restoreRouterPriority(): void {
  if (baseNice === null) return;
  try { os.setPriority(process.pid, baseNice); } catch { /* as it was */ }
}

/** Lowers the main thread as routerNiceSteps says (once the workers are started). */
export function applyRouterPriority(mode: 'auto' | 'lower' | 'normal', workers: number): void {
  const steps = routerNiceSteps(mode, workers, os.availableParallelism(), process.platform);
  if (steps === 0 && baseNice === null) return;
  try {
    if (baseNice === null) baseNice = os.getPriority(process.pid);
    const nice = Math.min(19, baseNice + steps);
    os.setPriority(process.pid, nice);
    log.say('debug', `joinery: main thread at nice ${nice}, workers at ${baseNice} (--router-priority ${mode}, ${workers} worker(s), ${os.availableParallelism()} cores)`);
  } catch (e) {
    log.say('debug', `joinery: main thread priority left as it was: ${(e as Error).message}`);
  }
}
