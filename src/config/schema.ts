/**
 * The one option schema. It feeds the CLI parser, the defaults, validation, `--help`, the README
 * flag table (tools/gen-readme-flags) and the tests. Keys carry units (`…Ms`, `…Bytes`).
 */
export type Command = 'run' | 'demo' | 'bench' | 'gen' | 'topics' | 'verify' | 'backfill';
export const COMMANDS: Command[] = ['run', 'demo', 'bench', 'gen', 'topics', 'verify', 'backfill'];

export type OptionType = 'string' | 'int' | 'float' | 'duration' | 'bytes' | 'enum' | 'bool' | 'list';

export interface OptionSpec {
  key: string;            // property name in the config object
  flag: string;           // --flag name
  type: OptionType;
  default: unknown;       // already in the parsed type (ms, bytes, string[] …); undefined = unset
  doc: string;            // one line for --help and the README
  values?: readonly string[];  // enum values
  min?: number;           // for numbers (durations in ms, sizes in bytes)
  max?: number;           // for numbers; durations and sizes have a sane bound even without one (see parse.ts)
  commands: readonly Command[];
  /** Per-command defaults that differ from `default`. */
  defaults?: Partial<Record<Command, unknown>>;
  placeholder?: string;
  /** Durations: `off` is accepted and means 0 (the feature is disabled). */
  off?: boolean;
  /** Never shown in `config print` or logs (tokens). */
  secret?: boolean;
}

/**
 * Bound of every duration that has none of its own: far beyond any sane setting, and exact in
 * milliseconds. Durations that become timers are bounded by TIMER_MAX_MS: Node runs a longer
 * timer after 1 ms.
 */
export const DURATION_LIMIT_MS = 3650 * 86_400_000;
const TIMER_MAX_MS = 24 * 86_400_000;

const ENGINE: Command[] = ['run', 'demo', 'bench', 'backfill'];
const GEN: Command[] = ['run', 'demo', 'bench', 'gen'];
const ALL: Command[] = ['run', 'demo', 'bench', 'gen', 'topics', 'verify', 'backfill'];
/** The join's definition: what `verify` recomputes must be read with the same flags as `run`. */
const JOIN: Command[] = ['run', 'demo', 'bench', 'verify', 'backfill'];

export const OPTIONS: readonly OptionSpec[] = [
  // sources and formats
  { key: 'left', flag: 'left', type: 'string', default: undefined, placeholder: 'SRC', commands: ['run', 'verify', 'backfill'], doc: 'left input: file:PATH (NDJSON, FlatBuffers or Parquet), kafka:TOPIC or gen: (built-in generator, impressions); verify: file:PATH or kafka:TOPIC; backfill: file:PATH or kafka:TOPIC' },
  { key: 'right', flag: 'right', type: 'string', default: undefined, placeholder: 'SRC', commands: ['run', 'verify', 'backfill'], doc: 'right input: file:PATH (NDJSON, FlatBuffers or Parquet), kafka:TOPIC or gen: (built-in generator, plays); verify: file:PATH or kafka:TOPIC; backfill: file:PATH or kafka:TOPIC' },
  { key: 'format', flag: 'format', type: 'enum', values: ['json', 'flatbuffers', 'parquet'], default: undefined, placeholder: 'json|flatbuffers|parquet', commands: ['run', 'gen', 'verify', 'backfill'], doc: 'record format: of inputs for run, verify and backfill (default json for files, flatbuffers for Kafka; a file named *.parquet is Parquet; gen: is always FlatBuffers), of what gen writes (default json for files, flatbuffers for Kafka; parquet also follows from a .parquet --left-out)' },
  { key: 'key', flag: 'key', type: 'list', default: ['profileId', 'titleId'], placeholder: 'F1,F2', commands: JOIN, doc: 'join key fields, both sides' },
  { key: 'time', flag: 'time', type: 'string', default: 'ts', placeholder: 'F', commands: JOIN, doc: 'event-time field (epoch milliseconds), both sides' },
  { key: 'id', flag: 'id', type: 'string', default: 'eventId', placeholder: 'F', commands: JOIN, doc: 'event id field used for de-duplication, both sides' },
  { key: 'leftKey', flag: 'left-key', type: 'list', default: undefined, placeholder: 'F1,F2', commands: JOIN, doc: 'key fields of the left side (overrides --key)' },
  { key: 'rightKey', flag: 'right-key', type: 'list', default: undefined, placeholder: 'F1,F2', commands: JOIN, doc: 'key fields of the right side (overrides --key)' },
  { key: 'leftTime', flag: 'left-time', type: 'string', default: undefined, placeholder: 'F', commands: JOIN, doc: 'time field of the left side (overrides --time)' },
  { key: 'rightTime', flag: 'right-time', type: 'string', default: undefined, placeholder: 'F', commands: JOIN, doc: 'time field of the right side (overrides --time)' },
  { key: 'leftId', flag: 'left-id', type: 'string', default: undefined, placeholder: 'F', commands: JOIN, doc: 'id field of the left side (overrides --id)' },
  { key: 'rightId', flag: 'right-id', type: 'string', default: undefined, placeholder: 'F', commands: JOIN, doc: 'id field of the right side (overrides --id)' },
  // join
  { key: 'lowerMs', flag: 'lower', type: 'duration', default: 0, placeholder: 'DUR', commands: JOIN, doc: 'lower bound of right.ts − left.ts (inclusive, may be negative)' },
  { key: 'upperMs', flag: 'upper', type: 'duration', default: 600_000, placeholder: 'DUR', commands: JOIN, doc: 'upper bound of right.ts − left.ts (inclusive)' },
  { key: 'join', flag: 'join', type: 'enum', values: ['inner', 'left', 'right', 'full'], default: 'inner', commands: JOIN, doc: 'join kind: outer kinds also emit unmatched events at expiry' },
  { key: 'maxKeyEntries', flag: 'max-key-entries', type: 'int', min: 0, default: 1_000_000, placeholder: 'N', commands: ENGINE, doc: 'hot-key guard: a key holds at most N buffered events per side; further events of that key and side skip the join and go to --late-out with a reason (counted; pairs they would have made are lost). 0 = no limit' },
  { key: 'maxDelayMs', flag: 'max-delay', type: 'duration', default: 5_000, placeholder: 'DUR', commands: JOIN, doc: 'out-of-orderness allowed per partition: watermark = max event time − max-delay' },
  { key: 'idleTimeoutMs', flag: 'idle-timeout', type: 'duration', min: 1, max: TIMER_MAX_MS, default: 30_000, placeholder: 'DUR', commands: ENGINE, doc: 'a partition silent this long stops holding the watermark back' },
  { key: 'maxDriftMs', flag: 'max-drift', type: 'duration', default: undefined, placeholder: 'DUR', off: true, commands: ENGINE, doc: 'event-time alignment: an input partition more than this far ahead in event time of the slowest live one is paused until it catches up, so inputs of different speeds or backlogs do not fill the join buffer (default max(4 × max-delay, 1m); 0 or off = read inputs at their own speed)' },
  { key: 'maxFutureMs', flag: 'max-future', type: 'duration', default: 86_400_000, placeholder: 'DUR', off: true, commands: ENGINE, doc: 'an event more than this far ahead of its partition\'s event time so far (Kafka and paced gen: also of the wall clock) is dead-lettered with its reason and does not move the watermark; 1000 in a row are taken as a real jump and followed (0 or off = no check)' },
  // engine
  { key: 'workers', flag: 'workers', type: 'int', min: 1, max: 64, default: 2, commands: ENGINE, doc: 'worker threads (1 to 64), each owning a contiguous range of the 4096 key groups. Beside them the main thread reads the inputs and routes: with Kafka in and out on 2 cores it is as busy as a worker, and 1 worker was faster than 2 (README, Kafka against Kafka Streams)' },
  { key: 'ringSizeBytes', flag: 'ring-size', type: 'bytes', min: 65_536, max: 1024 ** 3, default: 16 * 1024 * 1024, placeholder: 'BYTES', commands: [...ENGINE, 'verify'], doc: 'SharedArrayBuffer ring per worker (a power of two from 64k to 1g; suffixes k, m, g). A record larger than a quarter of it (4 MiB with the default) cannot be routed: it is dead-lettered and never joins. verify: the --ring-size of the run it checks, so that it leaves out the same records' },
  { key: 'state', flag: 'state', type: 'enum', values: ['lmdb', 'memory', 'lmdb-btree'], default: 'lmdb', commands: ENGINE, doc: 'join buffer store: lmdb (time buckets off the V8 heap, in memory up to --state-memory, the rest sealed into LMDB, one environment per worker), memory (heap), lmdb-btree (key-ordered LMDB, exact expiry, slower; for comparison)' },
  { key: 'bucketMs', flag: 'bucket', type: 'duration', default: undefined, placeholder: 'DUR', commands: ENGINE, doc: 'event-time bucket of the lmdb store (default (upper − lower)/20 within 1s..30s): larger buckets mean fewer, larger seals and fewer key-index entries, but more recent events held in memory and coarser expiry (a bucket goes up to 2 buckets after its events expire)' },
  { key: 'stateMemoryBytes', flag: 'state-memory', type: 'bytes', min: 0, max: 1024 ** 5, default: undefined, placeholder: 'BYTES', commands: ENGINE, doc: 'memory for the lmdb store\'s time buckets, all workers together (suffixes k, m, g): complete buckets stay in memory, where probes are cheapest, until the workers\' in-memory buckets exceed it; beyond it complete buckets are sealed into LMDB, newest first (they stay longest; the page cache then decides what of them stays in RAM). 0 = seal every bucket once complete (default min(1g, a quarter of the memory the process may use))' },
  { key: 'stateCompression', flag: 'state-compression', type: 'enum', values: ['none', 'lz4', 'auto'], default: 'none', commands: ENGINE, doc: 'LZ4 for the lmdb store\'s sealed buckets: a third fewer bytes on disk and in the page cache, for CPU in every seal and sealed read (~0.8 µs per event when all of the state is sealed) and a slower restore (−35 % events/s). Measured in a 3 GiB memory cgroup: +11 % events/s at 2.45–2.75 GiB buffered, nothing at 3 GiB. lz4 = every sealed bucket; auto = newly sealed buckets once a worker\'s LMDB file passes its share of a quarter of the memory the process may use (physical memory, or a cgroup limit below it); none = never' },
  { key: 'routerPriority', flag: 'router-priority', type: 'enum', values: ['auto', 'lower', 'normal'], default: 'auto', commands: ENGINE, doc: 'scheduling priority of the main thread (inputs, routing, Kafka client, output) against the workers (Linux): lower = 5 nice steps below them, so that when the cores are contended the join goes first; normal = the same. auto = lower when there are fewer workers than cores (the router then has slack, and the workers set the pace: one worker from Kafka to Kafka on 2 cores, +8 % events/s), else normal (with as many workers as cores the router feeds them all and must not wait: bench with 2 workers on 2 cores ran 10 % slower with it lowered)' },
  { key: 'stateDir', flag: 'state-dir', type: 'string', default: './joinery-state', placeholder: 'DIR', commands: ENGINE, doc: 'directory of the LMDB environments (cleared at start until checkpoints exist)' },
  // checkpoints
  { key: 'checkpointDir', flag: 'checkpoint-dir', type: 'string', default: undefined, placeholder: 'DIR', commands: ENGINE, doc: 'take async incremental checkpoints here, and resume from the newest valid one at start (unset = no checkpoints: a restart starts over; bench needs an empty or new directory and deletes nothing)' },
  { key: 'checkpointIntervalMs', flag: 'checkpoint-interval', type: 'duration', min: 1, max: TIMER_MAX_MS, default: 10_000, placeholder: 'DUR', commands: ENGINE, doc: 'time between checkpoints (one is also taken at the end of a bounded run and on SIGTERM/SIGINT)' },
  { key: 'checkpointRetain', flag: 'checkpoint-retain', type: 'int', min: 1, max: 10_000, default: 3, commands: ENGINE, doc: 'checkpoints kept (older ones and the state files only they use are deleted)' },
  { key: 'stopTimeoutMs', flag: 'stop-timeout', type: 'duration', min: 1, max: TIMER_MAX_MS, default: 30_000, placeholder: 'DUR', commands: ENGINE, doc: 'bound of a graceful stop (first SIGTERM/SIGINT; it stops at a cut and checkpoints what the rings hold, without draining them): past it the process exits with E_STOP_TIMEOUT (exit 5) and the next start resumes from the last completed checkpoint' },
  { key: 'delivery', flag: 'delivery', type: 'enum', values: ['exactly-once', 'at-least-once'], default: 'exactly-once', commands: ENGINE, doc: 'with checkpoints: exactly-once holds Kafka output in a transaction until its checkpoint commits (output latency ≈ the interval); at-least-once writes it at once and may repeat output after a crash. File output is always cut back to the checkpoint on restore' },
  // rebuild when checkpoints are gone
  { key: 'rebuildFrom', flag: 'rebuild-from', type: 'string', default: undefined, placeholder: 'TIME', commands: ['run'], doc: 'rebuild the join buffer without a checkpoint: replay the inputs from this event time (ISO-8601 or epoch ms; Kafka: from the first record with a timestamp ≥ TIME) up to the resume position (--resume-at), emitting nothing for them, then continue the output from there without gaps or duplicates. TIME must be at least (upper − lower) + max-delay before the event time at the resume position (see README, Rebuild)' },
  { key: 'resumeAt', flag: 'resume-at', type: 'string', default: undefined, placeholder: 'POSITION', commands: ['run'], doc: 'with --rebuild-from, where the lost run stopped (its output up to there exists): LEFT_BYTE,RIGHT_BYTE = byte offsets of the first unprocessed record of each input file, or a checkpoint manifest file whose state files are gone (its positions, watermark and output length; --out file: is cut to that length). Kafka default: the consumer group\'s committed offsets' },
  // sinks
  { key: 'out', flag: 'out', type: 'string', default: 'stdout', defaults: { demo: 'null', bench: 'null' }, placeholder: 'SINK', commands: ENGINE, doc: 'joined output: file:PATH (NDJSON), stdout or null (count only)' },
  { key: 'lateOut', flag: 'late-out', type: 'string', default: undefined, placeholder: 'SINK', commands: ENGINE, doc: 'late events (behind the watermark): file:PATH, stdout or null; unset = counted only' },
  { key: 'deadLetter', flag: 'dead-letter', type: 'string', default: undefined, placeholder: 'SINK', commands: ENGINE, doc: 'malformed records: file:PATH, stdout or null; unset = counted, first few on stderr' },
  // Kafka
  { key: 'brokers', flag: 'brokers', type: 'string', default: undefined, placeholder: 'HOST:PORT[,…]', commands: ['run', 'gen', 'topics', 'bench', 'verify', 'backfill'], doc: 'Kafka bootstrap servers (needed by any kafka:TOPIC source or sink)' },
  { key: 'group', flag: 'group', type: 'string', default: 'joinery', placeholder: 'ID', commands: ['run', 'backfill'], doc: 'Kafka consumer group of the input topics (backfill: the group whose offsets are set to the cut at the end, for the live job to continue from)' },
  { key: 'from', flag: 'from', type: 'string', default: 'earliest', placeholder: 'earliest|latest|TIME', commands: ['run', 'backfill'], doc: 'where to start when the group has no committed offsets: earliest, latest, or an ISO-8601 time / epoch ms; backfill: start of the event-time range (inclusive; earliest = from the start of the inputs; Kafka: from the first record with a timestamp ≥ TIME)' },
  { key: 'to', flag: 'to', type: 'string', default: undefined, placeholder: 'TIME', commands: ['backfill'], doc: 'end of the backfill\'s event-time range (exclusive; ISO-8601 or epoch ms): each input is read up to its first record at or after TIME (see README, Verify and backfill)' },
  { key: 'exitWhenIdleMs', flag: 'exit-when-idle', type: 'duration', min: 0, max: TIMER_MAX_MS, default: 0, placeholder: 'DUR', commands: ['run'], doc: 'end the run once every assigned Kafka partition has sat at its end this long (0 = run forever)' },
  { key: 'member', flag: 'member', type: 'string', default: undefined, placeholder: 'NAME', commands: ['run'], doc: 'this member\'s name in its consumer group (Kafka input with --checkpoint-dir): its checkpoints go to DIR/members/NAME, which every member must be able to read, and its output transactions use it; distinct per member, stable across restarts [default: the host name]' },
  { key: 'sessionTimeoutMs', flag: 'session-timeout', type: 'duration', min: 0, max: TIMER_MAX_MS, default: 30_000, placeholder: 'DUR', commands: ['run', 'backfill'], doc: 'Kafka consumer session timeout: how long the group waits for a member that vanished (kill -9) before handing its partitions on; a restarted node waits about this long to join (broker minimum 6s)' },
  { key: 'connectTimeoutMs', flag: 'connect-timeout', type: 'duration', min: 0, max: TIMER_MAX_MS, default: 30_000, placeholder: 'DUR', commands: ['run', 'gen', 'topics', 'bench', 'verify', 'backfill'], doc: 'how long to retry an unreachable Kafka broker before giving up' },
  { key: 'outFormat', flag: 'out-format', type: 'enum', values: ['json', 'flatbuffers'], default: undefined, placeholder: 'json|flatbuffers', commands: ['run', 'backfill'], doc: 'format of --out kafka:TOPIC records (default flatbuffers JoinedRecord; files and stdout are always NDJSON)' },
  { key: 'compression', flag: 'compression', type: 'enum', values: ['none', 'gzip'], default: 'none', commands: ['run', 'gen'], doc: 'compression of records produced to Kafka' },
  { key: 'leftTopic', flag: 'left-topic', type: 'string', default: undefined, placeholder: 'TOPIC', commands: ['gen', 'topics'], doc: 'Kafka topic for the left stream (impressions)' },
  { key: 'rightTopic', flag: 'right-topic', type: 'string', default: undefined, placeholder: 'TOPIC', commands: ['gen', 'topics'], doc: 'Kafka topic for the right stream (plays)' },
  { key: 'partitions', flag: 'partitions', type: 'int', min: 1, max: 10_000, default: 3, commands: ['gen'], doc: 'partitions of topics that gen creates' },
  // generator
  { key: 'seed', flag: 'seed', type: 'int', min: 0, default: 42, commands: GEN, doc: 'generator seed: same seed, same events' },
  { key: 'rate', flag: 'rate', type: 'float', min: 0, default: 0, placeholder: 'EV/S', commands: GEN, doc: 'generator pace in events/s across both sides (0 = unlimited)' },
  { key: 'events', flag: 'events', type: 'int', min: 0, default: 0, defaults: { demo: 6_000_000, bench: 2_000_000, gen: 100_000 }, placeholder: 'N', commands: GEN, doc: 'generator stops after N events across both sides (0 = no limit)' },
  { key: 'durationMs', flag: 'duration', type: 'duration', min: 0, max: TIMER_MAX_MS, default: 0, placeholder: 'DUR', commands: GEN, doc: 'generator stops after this much wall time (0 = no limit)' },
  { key: 'genProfiles', flag: 'gen-profiles', type: 'int', min: 1, default: 200_000, commands: GEN, doc: 'generator: distinct members (Zipf-skewed)' },
  { key: 'genTitles', flag: 'gen-titles', type: 'int', min: 1, default: 5_000, commands: GEN, doc: 'generator: distinct titles (Zipf-skewed)' },
  { key: 'genSkew', flag: 'gen-skew', type: 'float', min: 0, default: 0.8, commands: GEN, doc: 'generator: Zipf exponent of members and titles' },
  { key: 'genProfileSkew', flag: 'gen-profile-skew', type: 'float', min: 0, default: undefined, commands: GEN, doc: 'generator: Zipf exponent of members alone (default --gen-skew)' },
  { key: 'genTitleSkew', flag: 'gen-title-skew', type: 'float', min: 0, default: undefined, commands: GEN, doc: 'generator: Zipf exponent of titles alone (default --gen-skew)' },
  { key: 'genPlayProb', flag: 'gen-play-prob', type: 'float', min: 0, default: 0.25, commands: GEN, doc: 'generator: probability that an impression leads to a play' },
  { key: 'genPlayDelayMs', flag: 'gen-play-delay', type: 'duration', default: 120_000, placeholder: 'DUR', commands: GEN, doc: 'generator: mean delay from impression to play (exponential)' },
  { key: 'genOrphanPlays', flag: 'gen-orphan-plays', type: 'float', min: 0, default: 0.05, commands: GEN, doc: 'generator: share of plays with no impression' },
  { key: 'genDisorderMs', flag: 'gen-disorder', type: 'duration', default: 3_000, placeholder: 'DUR', commands: GEN, doc: 'generator: events arrive up to this much out of event-time order' },
  { key: 'genDuplicates', flag: 'gen-duplicates', type: 'float', min: 0, default: 0.01, commands: GEN, doc: 'generator: share of events delivered twice' },
  { key: 'genEventTimeRate', flag: 'gen-event-time-rate', type: 'float', min: 1, default: 2_000, placeholder: 'EV/S', commands: GEN, doc: 'generator: events per second of event time when --rate is 0' },
  // gen command outputs
  { key: 'leftOut', flag: 'left-out', type: 'string', default: undefined, placeholder: 'FILE', commands: ['gen'], doc: 'file for the generated left stream (impressions)' },
  { key: 'rightOut', flag: 'right-out', type: 'string', default: undefined, placeholder: 'FILE', commands: ['gen'], doc: 'file for the generated right stream (plays)' },
  // verify
  { key: 'output', flag: 'output', type: 'string', default: undefined, placeholder: 'SRC', commands: ['verify'], doc: 'the joined output to check: file:PATH (NDJSON as run writes it) or kafka:TOPIC (read read_committed up to its end; JSON or FlatBuffers values)' },
  { key: 'maxMemoryBytes', flag: 'max-memory', type: 'bytes', min: 256 * 1024, max: 1024 ** 4, default: 1024 ** 3, placeholder: 'BYTES', commands: ['verify'], doc: 'memory verify may hold its data in (suffixes k, m, g): inputs and output beyond it are partitioned by key hash into spill files and joined a partition at a time' },
  { key: 'spillDir', flag: 'spill-dir', type: 'string', default: undefined, placeholder: 'DIR', commands: ['verify'], doc: 'where verify writes its spill files (a fresh directory inside it, removed at the end, on errors and on SIGINT/SIGTERM; default: the system temp directory)' },
  { key: 'verifyThreads', flag: 'threads', type: 'int', min: 1, max: 64, default: 2, placeholder: 'N', commands: ['verify'], doc: 'threads that read, partition and join (the main thread reads Kafka sources)' },
  { key: 'examples', flag: 'examples', type: 'int', min: 0, max: 10_000, default: 5, placeholder: 'N', commands: ['verify'], doc: 'examples shown per kind of difference (missing, extra, duplicated)' },
  // benchmark
  { key: 'benchSource', flag: 'source', type: 'enum', values: ['replay', 'gen'], default: 'replay', commands: ['bench'], doc: 'bench input: replay (pre-generated FlatBuffers from memory, measures the engine) or gen (live generator, flat memory)' },
  // running as a node
  { key: 'config', flag: 'config', type: 'string', default: undefined, placeholder: 'FILE', commands: ALL, doc: 'read flags from a JSON or YAML file (keys are flag names, e.g. max-delay: 5s); precedence: flags > JOINERY_* environment > file > defaults' },
  { key: 'http', flag: 'http', type: 'string', default: undefined, placeholder: 'HOST:PORT', commands: ['run', 'demo'], doc: 'serve GET /metrics, /status, /state?key=… and POST /pause, /resume, /checkpoint (a bare PORT binds 127.0.0.1; port 0 = any free port)' },
  { key: 'httpToken', flag: 'http-token', type: 'string', default: undefined, placeholder: 'TOKEN', secret: true, commands: ['run', 'demo'], doc: 'bearer token every HTTP request must carry (Authorization: Bearer TOKEN); required to bind other than loopback; prefer JOINERY_HTTP_TOKEN' },
  { key: 'logLevel', flag: 'log-level', type: 'enum', values: ['error', 'warn', 'info', 'debug'], default: 'info', commands: ALL, doc: 'log events on stderr at or above this level (JSON lines, or human lines when stderr is a terminal)' },
  // reporting
  { key: 'progress', flag: 'progress', type: 'enum', values: ['auto', 'on', 'off'], default: 'auto', commands: [...GEN, 'verify', 'backfill'], doc: 'live progress line on stderr (auto = when stderr is a terminal)' },
  { key: 'json', flag: 'json', type: 'bool', default: false, commands: [...ENGINE, 'verify'], doc: 'print the summary as one JSON object on the last stdout line' },
  { key: 'help', flag: 'help', type: 'bool', default: false, commands: ALL, doc: 'show this help' },
];

export type JoinKind = 'inner' | 'left' | 'right' | 'full';

export interface Config {
  command: Command;
  left?: string; right?: string;
  /** 'parquet' too (the enum's third value), for file inputs and gen only: parse.ts refuses it for Kafka, so Kafka code sees json or flatbuffers. */
  format?: 'json' | 'flatbuffers';
  brokers?: string; group: string; member?: string; from: string; to?: string; exitWhenIdleMs: number; connectTimeoutMs: number; sessionTimeoutMs: number;
  outFormat?: 'json' | 'flatbuffers'; compression: 'none' | 'gzip'; leftTopic?: string; rightTopic?: string; partitions: number;
  key: string[]; time: string; id: string;
  leftKey?: string[]; rightKey?: string[]; leftTime?: string; rightTime?: string; leftId?: string; rightId?: string;
  lowerMs: number; upperMs: number; join: JoinKind; maxDelayMs: number; maxKeyEntries: number; idleTimeoutMs: number; maxDriftMs?: number; maxFutureMs: number;
  workers: number; ringSizeBytes: number; stopTimeoutMs: number; state: 'lmdb' | 'memory' | 'lmdb-btree'; bucketMs?: number; stateMemoryBytes?: number; stateCompression: 'auto' | 'lz4' | 'none'; routerPriority: 'auto' | 'lower' | 'normal'; stateDir: string;
  out: string; lateOut?: string; deadLetter?: string;
  rebuildFrom?: string; resumeAt?: string;
  checkpointDir?: string; checkpointIntervalMs: number; checkpointRetain: number; delivery: 'exactly-once' | 'at-least-once';
  seed: number; rate: number; events: number; durationMs: number;
  genProfiles: number; genTitles: number; genSkew: number; genProfileSkew?: number; genTitleSkew?: number; genPlayProb: number; genPlayDelayMs: number;
  genOrphanPlays: number; genDisorderMs: number; genDuplicates: number; genEventTimeRate: number;
  leftOut?: string; rightOut?: string;
  output?: string; examples: number; maxMemoryBytes: number; spillDir?: string; verifyThreads: number;
  benchSource: 'replay' | 'gen';
  progress: 'auto' | 'on' | 'off'; json: boolean; help: boolean;
  config?: string; http?: string; httpToken?: string; logLevel: 'error' | 'warn' | 'info' | 'debug';
}

/** Environment variable of an option: JOINERY_ + flag in upper snake case (--max-delay → JOINERY_MAX_DELAY). */
export function envName(o: OptionSpec): string {
  return 'JOINERY_' + o.flag.toUpperCase().replace(/-/g, '_');
}

export const KEY_GROUPS = 4096;
