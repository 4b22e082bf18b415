/** Main's side of the workers' output: stdout, or a record sink (Kafka), gated per checkpoint when transactional. */
import type { Router } from '../router/router.js';
import { decodeRecordChunk } from '../sink/ndjson.js';
import type { RecordSink } from '../sink/sink.js';
import { OutputGate } from '../sink/output-gate.js';

export class WorkerOutput {
  private awaitingOutput = false;
  private outputFailure: Error | null = null;
  // Transactional output: a chunk a worker sent after its barrier b (tag b) belongs to the
  // transaction after checkpoint b, so it waits until checkpoint b has committed (or failed,
  // leaving the transaction open for the next one). FIFO per worker keeps tags exact.
  private readonly ackedEpoch: number[];
  private readonly gate: OutputGate<Uint8Array>;

  constructor(
    private readonly outRecords: RecordSink | null,
    private readonly transactional: boolean,
    workers: number,
    restoredId: number,
    private readonly router: Router,
    private readonly fail: (e: Error) => void,
  ) {
    this.ackedEpoch = new Array(workers).fill(restoredId);
    this.gate = new OutputGate(restoredId, (chunk) => this.writeRecords(chunk));
  }

  /** An output chunk from worker `w`. */
  onChunk(w: number, chunk: Uint8Array): void {
    if (!this.outRecords) process.stdout.write(chunk);
    else if (!this.transactional) this.writeRecords(chunk);
    else this.gate.offer(this.ackedEpoch[w], chunk);
  }

  /** Worker `w` answered barrier `id`: its later chunks belong after checkpoint `id`. */
  onBarrier(w: number, id: number): void {
    this.ackedEpoch[w] = id;
  }

  /** Checkpoint `id` committed (or was overtaken): the output after it may be written. */
  open(id: number): void {
    this.gate.release(id);
  }

  private outputFailed(e: Error): void {
    if (!this.outputFailure) { this.outputFailure = e; this.fail(e); }
  }

  // A full output sink (a slow broker) holds routing until it drains, or its buffer would grow
  // without bound. Chunks already on their way are still written (the workers cannot be made to
  // wait), so it overshoots its mark by at most what the rings held. The hold is the gate's
  // output hold, not a pause (POST /resume does not lift it): checkpoint barriers still pass it,
  // so checkpoints and their transaction commits, which the sink may need to drain, go on.
  private writeRecords(chunk: Uint8Array): void {
    const outRecords = this.outRecords!;
    try {
      let full = false;
      // the workers' chunks are transferred to this thread and not used after this: handed over whole
      if (outRecords.writeChunk) full = !outRecords.writeChunk(chunk);
      else decodeRecordChunk(chunk, (k, v) => { if (!outRecords.write(k, v)) full = true; });
      if (full && !this.awaitingOutput) {
        this.awaitingOutput = true;
        this.router.gate.holdForOutput(outRecords.ready().then(() => { this.awaitingOutput = false; }, (e) => { this.awaitingOutput = false; this.outputFailed(e as Error); }));
      }
    } catch (e) { this.outputFailed(e as Error); }
  }
}
