/**
 * Errors with stable codes. A code names the failure for scripts and docs; the message says what to do.
 * Exit codes: 4 = the checkpoint directory cannot be resumed (none usable, or another join's);
 * 2 = usage/config error (bad flag, value or config file), 3 = input/output (or the HTTP
 * endpoint's address) unavailable before work started, or a directory locked by another process;
 * 1 = failure during a run, 5 = the run ended without its last checkpoint: a graceful stop hit
 * --stop-timeout, or the stop or final checkpoint failed (start again: it resumes from the last
 * completed checkpoint). The README's
 * "Errors and exit codes" table lists them; keep it in step.
 */
export type ErrorCode =
  | 'E_USAGE'          // unknown flag, bad value, contradictory flags
  | 'E_INPUT'          // missing input file, unreadable source
  | 'E_OUTPUT'         // output / state dir not writable
  | 'E_WORKER'         // a worker thread failed
  | 'E_STATE'          // state store failure
  | 'E_CHECKPOINT'     // no usable checkpoint to resume from, or one of another join
  | 'E_CONFIG'         // config file unreadable or invalid (--config FILE)
  | 'E_HTTP'           // the HTTP endpoint (--http) cannot listen on its address
  | 'E_LOCKED'         // the state or checkpoint directory is in use by another joinery process
  | 'E_STOP_TIMEOUT'   // a graceful stop did not finish within --stop-timeout
  | 'E_FINAL_CHECKPOINT' // the run's last checkpoint (at a stop or at the end of input) failed
  | 'E_KAFKA_PATCH'    // a kafkajs patch a mode depends on is not installed (group member without the re-join hook)
  | 'E_GROUP_EVICTED'  // a group member was evicted from its consumer group: its uncommitted work is discarded (handled by the member)
  | 'E_INTERNAL';

export const EXIT_CODES: Record<ErrorCode, number> = {
  E_USAGE: 2,
  E_INPUT: 3,
  E_OUTPUT: 3,
  E_WORKER: 1,
  E_STATE: 1,
  E_CHECKPOINT: 4,
  E_CONFIG: 2,
  E_HTTP: 3,
  E_LOCKED: 3,
  E_STOP_TIMEOUT: 5,
  E_FINAL_CHECKPOINT: 5,
  E_KAFKA_PATCH: 3,
  E_GROUP_EVICTED: 1,
  E_INTERNAL: 1,
};

export class JoineryError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'JoineryError';
  }
  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
  /** Plain form that survives postMessage between threads. */
  toWire(): { code: ErrorCode; message: string; stack?: string } {
    return { code: this.code, message: this.message, stack: this.stack };
  }
  static fromWire(w: { code: ErrorCode; message: string; stack?: string }): JoineryError {
    const e = new JoineryError(w.code, w.message);
    if (w.stack) e.stack = w.stack;
    return e;
  }
}

export function usageError(message: string): JoineryError {
  return new JoineryError('E_USAGE', message);
}
