import { hostname } from 'node:os';
import type { Decision } from './decision.ts';
import { safeStderrWrite, type LineSink } from './logger.ts';

export interface DecisionLog {
  write(decision: Decision, durationUs: number): void;
  /** Writes out what is buffered (on shutdown). */
  flush(): void;
  /** Lines dropped so far because the reader was too slow or gone (`gate_decision_log_dropped_total`). */
  readonly dropped: number;
}

export interface DecisionLogOptions {
  /** Most bytes waiting for the reader (GATE_LOG_BUFFER_BYTES); past it lines are dropped and counted. */
  maxBufferBytes?: number;
  /** Where the "lines dropped" warning goes (default: a JSON line on stderr). */
  warn?: (msg: string, fields: Record<string, unknown>) => void;
  /** Called with the number of lines dropped, as they are dropped (`gate_decision_log_dropped_total`). */
  onDrop?: (lines: number) => void;
}

/** GATE_LOG_BUFFER_BYTES's default. */
export const DEFAULT_LOG_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * One JSON line per decision (CONTRACT §7). The Decision value never holds
 * credentials; paths are redacted where they carry a secret (invite links).
 *
 * The default sink is stdout, written once per event-loop turn (a write per line
 * was a syscall per request, about a tenth of the gateway's CPU under load), and
 * bounded: a stalled reader costs at most `maxBufferBytes` of memory, and a closed
 * stdout only drops lines.
 */
export function createDecisionLog(sink?: LineSink, options: DecisionLogOptions = {}): DecisionLog {
  const out: LineSink & Partial<BatchedSink> = sink ?? batchedStdout(undefined, options);
  return {
    write(d, durationUs) {
      out(decisionLine(d, durationUs, isoNow()));
    },
    flush() {
      out.flush?.();
    },
    get dropped() {
      return out.dropped ?? 0;
    },
  };
}

/** A string or null as JSON (every value that may carry caller-chosen bytes goes through here). */
const str = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

/**
 * One decision as its JSON line, built by template: the same bytes as JSON.stringify of
 * the object with these keys in this order (a test holds them equal), in about half the
 * time. Only values the gateway makes itself (a UUID, codes from fixed lists, numbers)
 * are written as they are; everything else is JSON-escaped.
 */
export function decisionLine(d: Decision, durationUs: number, time: string): string {
  return (
    `{"time":"${time}","decision_id":"${d.decision_id}","request_id":${str(d.request_id)},"principal":${str(d.principal)}` +
    `,"method":${str(d.method)},"path":${str(d.path)},"route":${str(d.route)},"action":${str(d.action)}` +
    `,"target_role":${str(d.target_role)},"workspace":${str(d.workspace)},"project":${str(d.project)}` +
    `,"roles":${JSON.stringify(d.roles)},"result":"${d.result}","code":"${d.code}","status":${d.status}` +
    `,"policy_revision":${str(d.policy_revision)},"mode":"${d.mode}","trace_id":${str(d.trace_id)}` +
    `,"duration_us":${durationUs},"upstream_us":${d.upstream_us ?? 'null'}}`
  );
}

let isoMs = -1;
let isoText = '';
/** `new Date().toISOString()`, computed at most once per millisecond. */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

export type BatchedSink = LineSink & {
  flush(): void;
  /** Lines dropped (buffer full or the stream gone). */
  readonly dropped: number;
};

/** The part of a writable stream the sink needs (process.stdout in production). */
export interface SinkStream {
  write(chunk: string): boolean;
  readonly writableLength: number;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** The warning about dropped lines goes out at most this often. */
export const DROP_WARNING_INTERVAL_MS = 10_000;

/**
 * Lines written to a stream together at the end of the current event-loop turn.
 *
 * Bounded: the bytes queued here plus the bytes the stream still holds for its reader
 * (`writableLength`: stdout to a pipe is asynchronous, and a stalled reader makes
 * Node queue without limit) never pass `maxBufferBytes`; a line that would is dropped
 * and counted, and a warning goes to stderr at most once every 10 s. A stream that
 * fails (EPIPE: the reader closed it) is written no more: every later line is
 * dropped, and serving goes on.
 */
export function batchedStdout(stream?: SinkStream, options: DecisionLogOptions & { now?: () => number } = {}): BatchedSink {
  const target: SinkStream = stream ?? (process.stdout as unknown as SinkStream);
  const max = options.maxBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES;
  const warn = options.warn ?? stderrWarning;
  const now = options.now ?? Date.now;
  let pending: string[] = [];
  let pendingBytes = 0;
  let scheduled = false;
  let closed = false;
  let dropped = 0;
  let droppedSinceWarning = 0;
  let lastWarning = -Infinity;

  target.on('error', (err) => {
    if (closed) return;
    closed = true;
    dropped += pending.length;
    droppedSinceWarning += pending.length;
    if (pending.length > 0) options.onDrop?.(pending.length);
    pending = [];
    pendingBytes = 0;
    warn('decision log stream closed; decision lines are dropped from now on', {
      error: (err as NodeJS.ErrnoException).code ?? err.message,
    });
    lastWarning = now();
  });

  const drop = () => {
    dropped++;
    options.onDrop?.(1);
    droppedSinceWarning++;
    const t = now();
    if (t - lastWarning >= DROP_WARNING_INTERVAL_MS) {
      warn('decision log reader too slow; lines dropped', {
        dropped: droppedSinceWarning,
        dropped_total: dropped,
        buffer_bytes: max,
        reason: closed ? 'stream closed' : 'buffer full',
      });
      droppedSinceWarning = 0;
      lastWarning = t;
    }
  };

  const flush = () => {
    scheduled = false;
    if (pending.length === 0 || closed) return;
    const lines = pending;
    pending = [];
    pendingBytes = 0;
    try {
      // Whole-line chunks of at most PIPE_BUF: workers sharing stdout never interleave mid-line.
      for (const chunk of lineChunks(lines)) target.write(chunk);
    } catch (err) {
      // A destroyed stream may throw instead of emitting: the same as an error event.
      closed = true;
      warn('decision log stream closed; decision lines are dropped from now on', { error: (err as Error).message });
    }
  };
  const sink = ((line: string) => {
    // Bytes, roughly: a line is mostly ASCII, and the bound is about memory, not exact framing.
    const size = line.length + 1;
    if (closed || pendingBytes + target.writableLength + size > max) return drop();
    pending.push(line);
    pendingBytes += size;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }) as BatchedSink;
  sink.flush = flush;
  Object.defineProperty(sink, 'dropped', { get: () => dropped });
  return sink;
}

/** A warn line on stderr in the operational log's (pino's) format; never throws (stderr may be closed too). */
function stderrWarning(msg: string, fields: Record<string, unknown>): void {
  safeStderrWrite(JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, hostname: hostname(), ...fields, msg }) + '\n');
}

/**
 * Whole lines joined into chunks of at most `max` bytes (a longer line is a chunk of its
 * own). A write to a pipe of at most PIPE_BUF (4096 bytes on Linux) is atomic, so the
 * decision lines of several workers sharing one stdout never interleave mid-line.
 */
export function lineChunks(lines: readonly string[], max = 4096): string[] {
  const chunks: string[] = [];
  let current = '';
  let bytes = 0;
  for (const line of lines) {
    const piece = line + '\n';
    const size = Buffer.byteLength(piece);
    if (current !== '' && bytes + size > max) {
      chunks.push(current);
      current = '';
      bytes = 0;
    }
    current += piece;
    bytes += size;
  }
  if (current !== '') chunks.push(current);
  return chunks;
}
